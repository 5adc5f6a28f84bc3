//! The commands that reach hosts: `plan`, `apply`, `check`, `history`, `rollback`.

use super::{check_host_names, load, redactor, selected, who};
use crate::apply::{self, Context, HostError, HostOutcome, RunOptions};
use crate::cli::{CheckArgs, HistoryArgs, HostArgs, PlanArgs, RollbackArgs};
use crate::component::{zone, Registry};
use crate::desired::HealthCheck;
use crate::exit::{self, Usage};
use crate::health::{self, Patience};
use crate::plan::saved::SavedPlan;
use crate::plan::Plan;
use crate::render::templates::Templates;
use crate::render::{RenderOptions, Renderer};
use crate::secret::Redactor;
use crate::spec::{Host, Spec};
use crate::transport::HostKeyPolicy;
use crate::ui;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

pub(super) fn run_options(a: &HostArgs, lock_wait: u64) -> RunOptions {
    RunOptions {
        host_keys: if a.trust_new_hosts {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        local: a.local,
        today: zone::today(),
        check_patience: std::time::Duration::from_secs(30),
        lock_wait,
        who: who(),
        ssh_reuse: a.ssh_reuse,
        only: a.hosts.clone(),
    }
}

/// Everything a run over hosts needs, loaded once.
pub(super) struct Loaded {
    pub(super) spec: Spec,
    pub(super) templates: Templates,
    pub(super) redactor: Redactor,
}

pub(super) fn loaded(a: &HostArgs) -> Result<Loaded> {
    let (spec, templates) = load(&a.common)?;
    firewall_lets_us_in(&spec)?;
    let redactor = redactor(&spec);
    Ok(Loaded {
        spec,
        templates,
        redactor,
    })
}

/// With `[firewall]`, every host this machine reaches directly must let it in over SSH: the
/// address it connects from (the kernel's route to the host: no packet is sent) has to be in
/// `admin_sources`, or the ruleset would cut provision off. Through jump hosts the source is the
/// last jump host, which this machine cannot tell; the revert on the host covers those.
fn firewall_lets_us_in(spec: &Spec) -> Result<()> {
    let Some(fw) = &spec.firewall else {
        return Ok(());
    };
    let mut errors = Vec::new();
    for h in &spec.hosts {
        let config = crate::transport::route::config_for(&h.ssh).ok().flatten();
        let direct = crate::transport::route::route(&h.ssh, config.as_ref())
            .is_ok_and(|hops| hops.len() == 1);
        let Ok(addr) = h.ssh.address.parse::<std::net::IpAddr>() else {
            continue;
        };
        if !direct {
            continue;
        }
        let unspecified = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let source = std::net::UdpSocket::bind(unspecified)
            .and_then(|s| s.connect((addr, h.ssh.port)).map(|()| s))
            .and_then(|s| s.local_addr());
        if let Ok(source) = source {
            if let Some(e) = fw.cuts_off(&h.name, &h.ssh.address, source.ip()) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(crate::error::SpecErrors(errors).into())
    }
}

pub(super) fn context<'a>(
    registry: &'a Registry,
    l: &'a Loaded,
    opts: RunOptions,
    progress: &'a ui::Progress,
) -> Context<'a> {
    Context {
        registry,
        spec: &l.spec,
        templates: &l.templates,
        redactor: &l.redactor,
        opts,
        reporter: progress,
    }
}

/// Runs `f` on every host, `forks` at a time; results in the hosts' order. A worker that panics
/// is a failed host (`on_panic`), never a lost one.
pub(super) fn parallel<'h, T: Send>(
    hosts: &[&'h Host],
    forks: u16,
    f: &(dyn Fn(&'h Host) -> T + Sync),
    on_panic: &(dyn Fn(&Host) -> T + Sync),
) -> Vec<T> {
    crate::pool::run(hosts.to_vec(), usize::from(forks), f, &|i| {
        on_panic(hosts[i])
    })
}

/// The outcome of a host whose worker panicked.
pub(super) fn panicked(host: &str) -> HostOutcome {
    let mut o = HostOutcome::new(host);
    o.error = Some(worker_panicked());
    o
}

fn worker_panicked() -> HostError {
    HostError::Apply(
        "provision's worker for this host panicked (a bug): the host's state is unknown; run plan"
            .into(),
    )
}

pub fn plan(registry: &Registry, a: &PlanArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = selected(&l.spec, &a.hosts)?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, a.hosts.json, a.hosts.verbose);
    let ctx = context(registry, &l, run_options(&a.hosts, 0), &progress);
    let outcomes = parallel(
        &hosts,
        a.hosts.forks,
        &|h| apply::plan_host(&ctx, h),
        &|h| panicked(&h.name),
    );
    let plan = Plan {
        hosts: outcomes.iter().filter_map(|o| o.plan.clone()).collect(),
    };
    let failed = exit::for_outcomes(&outcomes);
    if let Some(file) = &a.out {
        if failed.is_some() {
            ui::error(&format!(
                "{}: not written: some hosts could not be planned",
                file.display()
            ));
        } else {
            let created = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            SavedPlan::new(
                &a.hosts.common.inventory.to_string_lossy(),
                created,
                &plan.hosts,
                &l.redactor,
            )
            .write_private(file)
            .with_context(|| format!("writing the plan to {}", file.display()))?;
        }
    }
    if a.hosts.json {
        let errors: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.error.as_ref().map(|e| (o.host.clone(), e.clone())))
            .collect();
        let doc = serde_json::json!({
            "plan": plan,
            "errors": errors,
            "stats": outcomes.iter().map(|o| (o.host.clone(), o.stats)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&l.redactor.redact_json(doc))?
        );
    } else {
        ui::print_plan(&plan, outcomes.iter().filter(|o| o.error.is_some()).count());
        if let (Some(file), None) = (&a.out, failed) {
            ui::line(&format!(
                "Saved the plan to {}: `provision apply -i {} --plan {}` executes exactly it.",
                file.display(),
                a.hosts.common.inventory.display(),
                file.display()
            ));
        }
    }
    print_errors(&outcomes);
    Ok(failed.unwrap_or(if plan.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::CHANGES)
    }))
}

pub(super) fn print_errors(outcomes: &[HostOutcome]) {
    for o in outcomes {
        if let Some(e) = &o.error {
            ui::error(&format!("error: {}: {e}", o.host));
        }
    }
}

pub fn check(registry: &Registry, c: &CheckArgs) -> Result<ExitCode> {
    let (spec, templates) = load(&c.common)?;
    check_host_names(&spec, &c.hosts, &c.common.inventory)?;
    let opts = RenderOptions {
        reveal_secrets: false,
        today: zone::today(),
    };
    let renderer = Renderer::new(registry, &spec, &templates, &opts);
    // The checks do not depend on the release.
    let hosts = renderer.all(
        &|h| crate::render::release_of(h, crate::release::CURRENT_STABLE),
        &|_| Box::new(crate::render::Unknown),
    )?;
    let patience = Patience::once(std::time::Duration::from_secs(c.patience));
    let redactor = redactor(&spec);
    let progress = ui::Progress::new(&[], true, false);
    let ctx = Context {
        registry,
        spec: &spec,
        templates: &templates,
        redactor: &redactor,
        opts: RunOptions {
            host_keys: HostKeyPolicy::Strict,
            local: false,
            today: zone::today(),
            check_patience: std::time::Duration::from_secs(c.patience),
            lock_wait: 0,
            who: who(),
            ssh_reuse: None,
            only: Vec::new(),
        },
        reporter: &progress,
    };
    // The checks a host runs (the database reached from each web host) need SSH.
    let remote = apply::checks::Hosts::new(&ctx, None);
    let mut failed = 0;
    for d in hosts
        .iter()
        .filter(|d| c.hosts.is_empty() || c.hosts.contains(&d.host))
    {
        for check in &d.checks {
            if c.no_ssh && matches!(check, HealthCheck::Remote { .. }) {
                continue;
            }
            match health::run(check, patience, &remote) {
                Ok(ok) => ui::line(&format!("{}: ok: {ok}", d.host)),
                Err(e) => {
                    failed += 1;
                    ui::line(&format!("{}: FAILED: {}", d.host, e.0));
                }
            }
        }
    }
    if !c.no_ssh {
        failed += reports(&ctx, &renderer, c);
    }
    if failed > 0 {
        ui::error(&format!("error: {failed} check(s) failed"));
        return Ok(ExitCode::from(exit::FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// What the components whose services report on themselves (load balancers' backends, the
/// floating address, replication) say, read over SSH from their hosts; the number that are not ok.
fn reports(ctx: &Context, renderer: &Renderer, c: &CheckArgs) -> usize {
    let (registry, spec) = (ctx.registry, ctx.spec);
    let mut failed = 0;
    for h in spec
        .hosts
        .iter()
        .filter(|h| c.hosts.is_empty() || c.hosts.contains(&h.name))
    {
        let components = registry.for_host(spec, h);
        let release = crate::render::release_of(h, crate::release::CURRENT_STABLE);
        // Only hosts that have something to say are contacted.
        let says = renderer.with_cx(h, release, |cx| {
            components
                .iter()
                .any(|comp| !comp.report(cx, &[]).is_empty())
        });
        if !says {
            continue;
        }
        match apply::prepare(ctx, h) {
            Err((e, _)) => {
                failed += 1;
                ui::line(&format!("{}: FAILED: {e}", h.name));
            }
            Ok(p) => {
                let release = p.desired.release.unwrap_or(release);
                renderer.with_cx(h, release, |cx| {
                    for comp in &components {
                        let lines = p
                            .facts
                            .components
                            .get(comp.name())
                            .cloned()
                            .unwrap_or_default();
                        for r in comp.report(cx, &lines) {
                            if r.ok {
                                ui::line(&format!("{}: ok: {}: {}", h.name, comp.name(), r.text));
                            } else {
                                failed += 1;
                                ui::line(&format!(
                                    "{}: FAILED: {}: {}",
                                    h.name,
                                    comp.name(),
                                    r.text
                                ));
                            }
                        }
                    }
                });
            }
        }
    }
    failed
}

fn one_or_more_hosts<'a>(spec: &'a Spec, a: &HostArgs, what: &str) -> Result<Vec<&'a Host>> {
    if a.hosts.is_empty() {
        let all: Vec<&str> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Usage(format!(
            "{what} needs --host H (one of: {})",
            all.join(", ")
        ))
        .into());
    }
    selected(spec, a)
}

pub fn history(registry: &Registry, a: &HistoryArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = one_or_more_hosts(&l.spec, &a.hosts, "history")?;
    let progress = ui::Progress::new(&[], true, a.hosts.verbose);
    let ctx = context(registry, &l, run_options(&a.hosts, 0), &progress);
    let mut failed = Vec::new();
    let mut all = serde_json::Map::new();
    // Read from every host at once (up to --forks), printed in the inventory's order.
    let results = crate::pool::run(
        hosts.clone(),
        usize::from(a.hosts.forks),
        &|h| apply::history(&ctx, h),
        &|_| Err(worker_panicked()),
    );
    for (h, result) in hosts.iter().zip(results) {
        match result {
            Ok(gens) => {
                if a.hosts.json {
                    all.insert(h.name.clone(), serde_json::to_value(&gens)?);
                } else {
                    ui::print_history(&h.name, &gens);
                }
            }
            Err(e) => {
                let mut o = HostOutcome::new(&h.name);
                o.error = Some(e);
                failed.push(o);
            }
        }
    }
    if a.hosts.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    print_errors(&failed);
    Ok(exit::for_outcomes(&failed).unwrap_or(ExitCode::SUCCESS))
}

pub fn rollback(registry: &Registry, a: &RollbackArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = one_or_more_hosts(&l.spec, &a.hosts, "rollback")?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, a.hosts.json, a.hosts.verbose);
    let ctx = context(
        registry,
        &l,
        run_options(&a.hosts, a.lock_timeout),
        &progress,
    );
    let outcomes: Vec<HostOutcome> = hosts
        .iter()
        .map(|h| apply::rollback_host(&ctx, h, a.to.as_deref()))
        .collect();
    report(a.hosts.json, &l, &outcomes, ui::print_rollback)
}

/// The outcomes as JSON (secrets masked) or for people, the errors, and the exit status.
pub(super) fn report(
    json: bool,
    l: &Loaded,
    outcomes: &[HostOutcome],
    print: fn(&[HostOutcome]),
) -> Result<ExitCode> {
    if json {
        let doc = serde_json::json!({ "hosts": outcomes });
        println!(
            "{}",
            serde_json::to_string_pretty(&l.redactor.redact_json(doc))?
        );
    } else {
        print(outcomes);
    }
    print_errors(outcomes);
    Ok(exit::for_outcomes(outcomes).unwrap_or(ExitCode::SUCCESS))
}
