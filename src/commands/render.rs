//! `validate` and `render`: work on the inventory alone, no host contacted.

use super::{load, redactor};
use crate::cli::{Common, RenderArgs};
use crate::component::{zone, Registry};
use crate::desired::Desired;
use crate::exit::Usage;
use crate::release::{Release, CURRENT_STABLE};
use crate::render::{
    local_check, manifest, release_of, tree, EarlierRender, Now, RenderOptions, Renderer, Unknown,
};
use crate::secret::Redactor;
use crate::spec::Host;
use crate::ui;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

const MANIFEST: &str = "manifest.json";

pub fn validate(registry: &Registry, c: &Common) -> Result<ExitCode> {
    let (spec, templates) = load(c)?;
    // Rendering proves the templates accept this inventory too; nothing is written.
    let opts = RenderOptions {
        reveal_secrets: false,
        today: zone::today(),
    };
    Renderer::new(registry, &spec, &templates, &opts)
        .all(&|h| release_of(h, CURRENT_STABLE), &|_| Box::new(Unknown))?;
    let sites: Vec<String> = spec
        .sites
        .iter()
        .map(|s| format!("{} (stack {})", s.domain, s.stack.name()))
        .collect();
    ui::line(&format!(
        "{}: valid: site{} {}, {} host(s)",
        c.inventory.display(),
        if sites.len() == 1 { "" } else { "s" },
        sites.join(", "),
        spec.hosts.len()
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn render(registry: &Registry, r: &RenderArgs) -> Result<ExitCode> {
    let (spec, templates) = load(&r.common)?;
    let out = &r.out;
    prepare_out_dir(out)?;
    // Paths whose content depends on what is there now (the zone serial) read the earlier render.
    let previous = |h: &Host| -> Box<dyn Now> { Box::new(EarlierRender(out.join(&h.name))) };
    let opts = RenderOptions {
        reveal_secrets: r.reveal_secrets,
        today: zone::today(),
    };
    let forced = forced_release(r)?;
    let release = |h: &Host| forced.unwrap_or_else(|| release_of(h, CURRENT_STABLE));
    let hosts = Renderer::new(registry, &spec, &templates, &opts).all(&release, &previous)?;
    write_render(r, &hosts)?;
    if r.check {
        // This machine's tools check configs for its own release (php-fpm8.4 is not here when it
        // runs Debian 12): hosts of another release are checked as rendered for this one, and the
        // output says so. Apply checks every config on its host, with the host's own tools.
        let local = this_machine_release();
        let check_release = |h: &Host| local.unwrap_or_else(|| release(h));
        say_checked_as(&hosts, local);
        // Check the real bytes (secrets included), so escaping is proven by the tools; show only
        // redacted tool output.
        let opts = RenderOptions {
            reveal_secrets: true,
            today: opts.today,
        };
        let redactor = redactor(&spec);
        let real = Renderer::new(registry, &spec, &templates, &opts)
            .all(&check_release, &previous)
            .map_err(|e| e.redacted(&redactor))?;
        return check(&real, &redactor);
    }
    Ok(ExitCode::SUCCESS)
}

/// The release `--release` names, for every host.
fn forced_release(r: &RenderArgs) -> Result<Option<Release>> {
    let Some(name) = &r.release else {
        return Ok(None);
    };
    let release = Release::parse(name).map_err(|allowed| {
        Usage(format!(
            "--release {name}: not a release provision knows; allowed: {allowed}"
        ))
    })?;
    Ok(Some(release))
}

/// Each host's tree under `--out` (an earlier render of it replaced) and the manifest, and a line
/// for each.
fn write_render(r: &RenderArgs, hosts: &[Desired]) -> Result<()> {
    let out = &r.out;
    for d in hosts {
        let dir = out.join(&d.host);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the earlier render {}", dir.display()))?;
        }
        tree::materialize(d, &dir, tree::Into::Fresh)
            .with_context(|| format!("writing {}", dir.display()))?;
    }
    let inventory_name = r.common.inventory.to_string_lossy();
    let m = manifest::manifest(&inventory_name, r.reveal_secrets, hosts);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join(MANIFEST))?);
    serde_json::to_writer_pretty(&mut w, &m)?;
    std::io::Write::write_all(&mut w, b"\n")?;
    std::io::Write::flush(&mut w)?;
    for d in hosts {
        ui::line(&format!(
            "{} ({}): {} paths, {} packages, {} validators -> {}",
            d.host,
            d.release.map(|r| r.describe()).unwrap_or_default(),
            d.paths.len(),
            d.packages.len(),
            d.validators.len(),
            out.join(&d.host).display()
        ));
    }
    ui::line(&format!("manifest: {}", out.join(MANIFEST).display()));
    Ok(())
}

/// Says which hosts are checked as rendered for this machine's release (`here`), not their own.
fn say_checked_as(hosts: &[Desired], here: Option<Release>) {
    for d in hosts {
        if let (Some(target), Some(here)) = (d.release, here) {
            if target != here {
                ui::line(&format!(
                    "{}: rendered for {}, checked as rendered for {}, this machine's release: the tools here are {}'s",
                    d.host,
                    target.describe(),
                    here.describe(),
                    here.codename
                ));
            }
        }
    }
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
        return Err(crate::exit::Invalid(format!(
            "{failed} validator(s) rejected the rendered configs"
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The release of the machine provision runs on, when it is one provision knows.
fn this_machine_release() -> Option<Release> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    Release::find(&field("ID")?, &field("VERSION_ID")?)
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
            return Err(Usage(format!(
                "--out {}: the directory exists and is not an earlier render (no {MANIFEST}); refusing to write into it",
                out.display()
            ))
            .into());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(())
}
