//! The edge: resolves the command line into work, runs it, and reports through `ui`. The only place
//! besides `main` that uses `anyhow`.

use crate::cli::{Cli, Command, Common, RenderArgs};
use crate::desired::Desired;
use crate::render::{self, RenderOptions};
use crate::secret::Redactor;
use crate::spec::{self, Spec, SystemSources};
use crate::templates::Templates;
use crate::{local_check, manifest, tree, ui, zone};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate(c) => validate(&c),
        Command::Render(r) => render_cmd(&r),
    }
}

fn load(c: &Common) -> Result<(Spec, Templates)> {
    let spec = spec::load(&c.inventory, &SystemSources)?;
    let templates = Templates::load(c.templates.as_deref())?;
    Ok((spec, templates))
}

pub fn redactor(spec: &Spec) -> Redactor {
    let mut secrets = vec![("database.password", &spec.database.password)];
    if let Some(r) = &spec.database.replication {
        secrets.push(("database.replication_password", &r.password));
    }
    Redactor::new(&secrets)
}

fn validate(c: &Common) -> Result<ExitCode> {
    let (spec, templates) = load(c)?;
    // Rendering proves the templates accept this inventory too; nothing is written.
    render::render(
        &spec,
        &templates,
        &RenderOptions {
            reveal_secrets: false,
            today: zone::today(),
        },
        &|_| None,
    )?;
    ui::line(&format!(
        "{}: valid: site {} (stack {}), {} host(s)",
        c.inventory.display(),
        spec.site.domain,
        spec.site.stack.name(),
        spec.hosts.len()
    ));
    Ok(ExitCode::SUCCESS)
}

const MANIFEST: &str = "manifest.json";

fn render_cmd(r: &RenderArgs) -> Result<ExitCode> {
    let (spec, templates) = load(&r.common)?;
    let out = &r.out;
    prepare_out_dir(out)?;
    let zone_rel = render::zone_file(&spec);
    let previous_zone =
        |host: &str| std::fs::read_to_string(tree::under(&out.join(host), &zone_rel)).ok();
    let opts = RenderOptions {
        reveal_secrets: r.reveal_secrets,
        today: zone::today(),
    };
    let hosts = render::render(&spec, &templates, &opts, &previous_zone)?;
    for d in &hosts {
        let dir = out.join(&d.host);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the earlier render {}", dir.display()))?;
        }
        tree::materialize(d, &dir, tree::Into::Fresh)
            .with_context(|| format!("writing {}", dir.display()))?;
    }
    let inventory_name = r.common.inventory.to_string_lossy();
    let m = manifest::manifest(&inventory_name, r.reveal_secrets, &hosts);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join(MANIFEST))?);
    serde_json::to_writer_pretty(&mut w, &m)?;
    std::io::Write::write_all(&mut w, b"\n")?;
    std::io::Write::flush(&mut w)?;
    for d in &hosts {
        ui::line(&format!(
            "{}: {} paths, {} packages, {} validators -> {}",
            d.host,
            d.paths.len(),
            d.packages.len(),
            d.validators.len(),
            out.join(&d.host).display()
        ));
    }
    ui::line(&format!("manifest: {}", out.join(MANIFEST).display()));
    if r.check {
        // Check the real bytes (secrets included), so escaping is proven by the tools; show only
        // redacted tool output.
        let real = if r.reveal_secrets {
            hosts
        } else {
            render::render(
                &spec,
                &templates,
                &RenderOptions {
                    reveal_secrets: true,
                    today: opts.today,
                },
                &previous_zone,
            )?
        };
        return check(&real, &redactor(&spec));
    }
    Ok(ExitCode::SUCCESS)
}

fn check(hosts: &[Desired], redactor: &Redactor) -> Result<ExitCode> {
    let mut failed = 0;
    for d in hosts {
        let stage = tempfile::Builder::new()
            .prefix("provision-check-")
            .tempdir()?;
        let outcomes = local_check::check_host(d, stage.path())
            .with_context(|| format!("{}: staging for validation", d.host))?;
        for o in outcomes {
            if o.ok {
                ui::line(&format!("{}: {}: ok", d.host, o.validator));
            } else {
                failed += 1;
                ui::line(&format!(
                    "{}: {}: FAILED\n{}",
                    d.host,
                    o.validator,
                    redactor.redact(o.output.trim_end())
                ));
            }
        }
    }
    if failed > 0 {
        bail!("{failed} validator(s) failed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The output directory must be new, empty, or an earlier render (it has a manifest): never a
/// directory of the user's that happens to be named the same.
fn prepare_out_dir(out: &Path) -> Result<()> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("reading {}", out.display()))?
            .next()
            .is_none();
        if !empty && !out.join(MANIFEST).is_file() {
            bail!(
                "--out {}: the directory exists and is not an earlier render (no {MANIFEST}); refusing to write into it",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(())
}
