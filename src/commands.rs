//! The edge: resolves the command line into work, runs it, and reports through `ui`. The only place
//! besides `main` that uses `anyhow`.

use crate::apply::{self, HostOutcome, RunOptions};
use crate::cli::{CheckArgs, Cli, Command, Common, HostArgs, RenderArgs};
use crate::desired::Desired;
use crate::plan::Plan;
use crate::render::{self, RenderOptions};
use crate::secret::Redactor;
use crate::spec::Host;
use crate::spec::{self, Spec, SystemSources};
use crate::templates::Templates;
use crate::transport::HostKeyPolicy;
use crate::{local_check, manifest, tree, ui, zone};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate(c) => validate(&c),
        Command::Render(r) => render_cmd(&r),
        Command::Plan(a) => plan_cmd(&a),
        Command::Apply(a) => apply_cmd(&a),
        Command::Check(c) => check_cmd(&c),
    }
}

fn load(c: &Common) -> Result<(Spec, Templates)> {
    let spec = spec::load(&c.inventory, &SystemSources)?;
    let templates = Templates::load(c.templates.as_deref())?;
    Ok((spec, templates))
}

/// Every host rendered with secrets masked and no earlier zone: for checks that write nothing.
fn render_masked(spec: &Spec, templates: &Templates) -> Result<Vec<Desired>> {
    let opts = RenderOptions {
        reveal_secrets: false,
        today: zone::today(),
    };
    Ok(render::render(spec, templates, &opts, &|_| None)?)
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
    render_masked(&spec, &templates)?;
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

/// The hosts the command line selected, in inventory order.
fn selected<'a>(spec: &'a Spec, a: &HostArgs) -> Result<Vec<&'a Host>> {
    for name in &a.hosts {
        if spec.host(name).is_none() {
            let all: Vec<&str> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
            bail!(
                "--host {name}: no such host in {}; allowed: {}",
                a.common.inventory.display(),
                all.join(", ")
            );
        }
    }
    let hosts: Vec<&Host> = spec
        .hosts
        .iter()
        .filter(|h| a.hosts.is_empty() || a.hosts.contains(&h.name))
        .collect();
    if a.local && hosts.len() != 1 {
        bail!("--local applies to this machine: select exactly one host with --host (the inventory has {})", spec.hosts.len());
    }
    Ok(hosts)
}

fn run_options(a: &HostArgs) -> RunOptions {
    RunOptions {
        host_keys: if a.trust_new_hosts {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        local: a.local,
        today: zone::today(),
        check_patience: std::time::Duration::from_secs(30),
    }
}

/// Runs `f` for every selected host, group by group (databases, web tier, load balancer), hosts of a
/// group in parallel; the outcomes come back in inventory order.
fn for_hosts(
    spec: &Spec,
    hosts: &[&Host],
    ordered: bool,
    f: &(dyn Fn(&Host) -> HostOutcome + Sync),
) -> Vec<HostOutcome> {
    let groups: Vec<Vec<&Host>> = if ordered {
        apply::groups(spec)
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .filter(|h| hosts.iter().any(|x| x.name == h.name))
                    .collect()
            })
            .collect()
    } else {
        vec![hosts.to_vec()]
    };
    let mut outcomes: Vec<HostOutcome> = Vec::new();
    for group in groups {
        let failed_before = outcomes.iter().any(|o| o.error.is_some());
        if failed_before {
            // A later tier on top of a failed one would only fail its health checks.
            for h in group {
                let mut skipped = HostOutcome::new(&h.name);
                skipped.error = Some(format!("{}: skipped: a host it depends on failed", h.name));
                outcomes.push(skipped);
            }
            continue;
        }
        std::thread::scope(|s| {
            let handles: Vec<_> = group.iter().map(|h| s.spawn(move || f(h))).collect();
            for handle in handles {
                if let Ok(o) = handle.join() {
                    outcomes.push(o);
                }
            }
        });
    }
    outcomes.sort_by_key(|o| spec.hosts.iter().position(|h| h.name == o.host));
    outcomes
}

/// Loads the inventory, runs `job` on every selected host with a progress display, and returns the
/// outcomes with the redactor for printing them.
fn run_on_hosts(
    a: &HostArgs,
    ordered: bool,
    job: fn(&apply::Context, &Host) -> HostOutcome,
) -> Result<(Redactor, Vec<HostOutcome>)> {
    let (spec, templates) = load(&a.common)?;
    let redactor = redactor(&spec);
    let hosts = selected(&spec, a)?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, a.json, a.verbose);
    let ctx = apply::Context {
        spec: &spec,
        templates: &templates,
        redactor: &redactor,
        opts: run_options(a),
        reporter: &progress,
    };
    let outcomes = for_hosts(&spec, &hosts, ordered, &|h| job(&ctx, h));
    Ok((redactor, outcomes))
}

fn plan_cmd(a: &HostArgs) -> Result<ExitCode> {
    let (redactor, outcomes) = run_on_hosts(a, false, apply::plan_host)?;
    let errors: Vec<&String> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    let plan = Plan {
        hosts: outcomes.iter().filter_map(|o| o.plan.clone()).collect(),
    };
    if a.json {
        let doc = serde_json::json!({ "plan": plan, "errors": errors, "stats": outcomes.iter().map(|o| (o.host.clone(), o.stats)).collect::<std::collections::BTreeMap<_, _>>() });
        println!("{}", redactor.redact(&serde_json::to_string_pretty(&doc)?));
    } else {
        ui::print_plan(&plan, errors.len());
    }
    if !errors.is_empty() {
        for e in &errors {
            ui::error(&format!("error: {e}"));
        }
        return Ok(ExitCode::from(1));
    }
    Ok(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn apply_cmd(a: &HostArgs) -> Result<ExitCode> {
    let (redactor, outcomes) = run_on_hosts(a, true, apply::apply_host)?;
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if a.json {
        println!(
            "{}",
            redactor.redact(&serde_json::to_string_pretty(
                &serde_json::json!({ "hosts": outcomes })
            )?)
        );
    } else {
        for o in &outcomes {
            match (&o.error, &o.plan) {
                (Some(e), _) => ui::error(&format!("error: {e}")),
                (None, Some(p)) if p.is_empty() => {
                    ui::line(&format!("{}: no changes ({:.2} s)", o.host, o.seconds))
                }
                (None, Some(p)) => {
                    ui::line(&format!(
                        "{}: applied {} change(s) in {:.1} s",
                        o.host,
                        p.change_count(),
                        o.seconds
                    ));
                    for c in &o.checks {
                        ui::line(&format!("{}:   check ok: {c}", o.host));
                    }
                }
                (None, None) => {}
            }
        }
        let changed: usize = outcomes
            .iter()
            .filter_map(|o| o.plan.as_ref())
            .map(|p| p.change_count())
            .sum();
        if failed == 0 {
            ui::line(&if changed == 0 {
                "Apply: no changes.".to_string()
            } else {
                format!("Apply: {changed} change(s) applied.")
            });
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check_cmd(c: &CheckArgs) -> Result<ExitCode> {
    let (spec, templates) = load(&c.common)?;
    for name in &c.hosts {
        if spec.host(name).is_none() {
            bail!(
                "--host {name}: no such host in {}",
                c.common.inventory.display()
            );
        }
    }
    let hosts = render_masked(&spec, &templates)?;
    let patience = std::time::Duration::from_secs(c.patience);
    let mut failed = 0;
    for d in hosts
        .iter()
        .filter(|d| c.hosts.is_empty() || c.hosts.contains(&d.host))
    {
        for check in &d.checks {
            match crate::health::run(check, patience) {
                Ok(ok) => ui::line(&format!("{}: ok: {ok}", d.host)),
                Err(e) => {
                    failed += 1;
                    ui::line(&format!("{}: FAILED: {}", d.host, e.0));
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(ExitCode::SUCCESS)
}
