//! The commands that reach hosts: `plan`, `apply`, `check`, `history`, `rollback`.

use super::{check_host_names, load, redactor, selected, who};
use crate::apply::{self, Context, HostError, HostOutcome, Prepared, RunOptions};
use crate::cli::{ApplyArgs, CheckArgs, HistoryArgs, HostArgs, PlanArgs, RollbackArgs};
use crate::component::{zone, Registry};
use crate::exit::{self, Usage};
use crate::health::{self, Patience};
use crate::plan::saved::{self, SavedPlan};
use crate::plan::Plan;
use crate::render::templates::Templates;
use crate::render::{RenderOptions, Renderer};
use crate::secret::Redactor;
use crate::spec::{Host, Spec};
use crate::transport::HostKeyPolicy;
use crate::ui;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

fn run_options(a: &HostArgs, lock_wait: u64) -> RunOptions {
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
    }
}

/// Everything a run over hosts needs, loaded once.
struct Loaded {
    spec: Spec,
    templates: Templates,
    redactor: Redactor,
}

fn loaded(a: &HostArgs) -> Result<Loaded> {
    let (spec, templates) = load(&a.common)?;
    let redactor = redactor(&spec);
    Ok(Loaded {
        spec,
        templates,
        redactor,
    })
}

fn context<'a>(
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

/// Runs `f` on every host at once; results in the hosts' order. A worker that panics is a failed
/// host (`on_panic`), never a lost one.
fn parallel<'h, T: Send>(
    hosts: &[&'h Host],
    f: &(dyn Fn(&'h Host) -> T + Sync),
    on_panic: &dyn Fn(&Host) -> T,
) -> Vec<T> {
    std::thread::scope(|s| {
        let handles: Vec<_> = hosts.iter().map(|h| s.spawn(move || f(h))).collect();
        handles
            .into_iter()
            .zip(hosts)
            .map(|(handle, h)| handle.join().unwrap_or_else(|_| on_panic(h)))
            .collect()
    })
}

/// The outcome of a host whose worker panicked.
fn panicked(host: &str) -> HostOutcome {
    let mut o = HostOutcome::new(host);
    o.error = Some(HostError::Apply(
        "provision's worker for this host panicked (a bug): the host's state is unknown; run plan"
            .into(),
    ));
    o
}

pub fn plan(registry: &Registry, a: &PlanArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = selected(&l.spec, &a.hosts)?;
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, a.hosts.json, a.hosts.verbose);
    let ctx = context(registry, &l, run_options(&a.hosts, 0), &progress);
    let outcomes = parallel(&hosts, &|h| apply::plan_host(&ctx, h), &|h| {
        panicked(&h.name)
    });
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
            let text = SavedPlan::new(
                &a.hosts.common.inventory.to_string_lossy(),
                created,
                &plan.hosts,
            )
            .to_json();
            std::fs::write(file, l.redactor.redact(&text))
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
            l.redactor.redact(&serde_json::to_string_pretty(&doc)?)
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

fn print_errors(outcomes: &[HostOutcome]) {
    for o in outcomes {
        if let Some(e) = &o.error {
            ui::error(&format!("error: {}: {e}", o.host));
        }
    }
}

pub fn apply(registry: &Registry, a: &ApplyArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = selected(&l.spec, &a.hosts)?;
    let saved = match &a.plan {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the plan {}", file.display()))?;
            let p = SavedPlan::from_json(&text, &file.to_string_lossy())?;
            let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            let planned: Vec<&str> = p.hosts.iter().map(|h| h.host.as_str()).collect();
            if names != planned {
                return Err(Usage(format!(
                    "{}: the plan covers the host(s) {} but this run selects {}; select the same hosts with --host, or make a new plan",
                    file.display(),
                    planned.join(", "),
                    names.join(", ")
                ))
                .into());
            }
            Some(p)
        }
        None => None,
    };
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, a.hosts.json, a.hosts.verbose);
    let ctx = context(
        registry,
        &l,
        run_options(&a.hosts, a.lock_timeout),
        &progress,
    );

    // Every host planned first (read-only); nothing runs until all are known.
    let prepared: Vec<Result<Prepared, Box<HostOutcome>>> = parallel(
        &hosts,
        &|h| {
            apply::prepare(&ctx, h).map_err(|(e, stats)| {
                let mut o = HostOutcome::new(&h.name);
                o.error = Some(e);
                o.stats = stats;
                ctx.reporter.finish(&h.name, false, &o.summary(""));
                Box::new(o)
            })
        },
        &|h| Err(Box::new(panicked(&h.name))),
    );
    let mut outcomes: Vec<HostOutcome> = Vec::new();
    let mut ready: Vec<Prepared> = Vec::new();
    for p in prepared {
        match p {
            Ok(p) => ready.push(p),
            Err(o) => outcomes.push(*o),
        }
    }
    if let Some(saved) = &saved {
        let refused = refuse_mismatches(&mut ready, saved);
        if !refused.is_empty() || !outcomes.is_empty() {
            for p in ready {
                let mut o = HostOutcome::new(&p.host.name);
                o.plan = Some(p.plan);
                o.error = refused
                    .iter()
                    .find(|(h, _)| h == &o.host)
                    .map(|(_, e)| e.clone())
                    .or(Some(HostError::Skipped(
                        "not applied: the saved plan does not match every host".into(),
                    )));
                ctx.reporter.finish(&o.host, false, &o.summary(""));
                outcomes.push(o);
            }
            return finish_apply(a, &l, outcomes);
        }
    }
    for tier in registry.tiers(&l.spec, &hosts) {
        let failed_before = outcomes.iter().any(|o| o.error.is_some());
        let mut group: Vec<Prepared> = Vec::new();
        for h in tier {
            if let Some(i) = ready.iter().position(|p| p.host.name == h.name) {
                group.push(ready.remove(i));
            }
        }
        if failed_before {
            // A later tier on top of a failed one would only fail its health checks.
            for p in group {
                let mut o = HostOutcome::new(&p.host.name);
                o.plan = Some(p.plan);
                o.error = Some(HostError::Skipped("a host it depends on failed".into()));
                ctx.reporter.finish(&o.host, false, &o.summary(""));
                outcomes.push(o);
            }
            continue;
        }
        let results: Vec<HostOutcome> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .into_iter()
                .map(|p| {
                    let name = p.host.name.clone();
                    let ctx = &ctx;
                    (name, s.spawn(move || apply::execute(ctx, p)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(name, h)| h.join().unwrap_or_else(|_| panicked(&name)))
                .collect()
        });
        outcomes.extend(results);
    }
    outcomes.sort_by_key(|o| l.spec.hosts.iter().position(|h| h.name == o.host));
    finish_apply(a, &l, outcomes)
}

/// Hosts whose fresh plan differs from the saved one, with what differs.
fn refuse_mismatches(ready: &mut [Prepared], saved: &SavedPlan) -> Vec<(String, HostError)> {
    let mut refused = Vec::new();
    for p in ready.iter() {
        let Some(s) = saved.host(&p.host.name) else {
            continue;
        };
        let diffs = saved::differences(&s.commitments, &saved::commitments(&p.plan));
        if !diffs.is_empty() {
            refused.push((
                p.host.name.clone(),
                HostError::Refused(format!(
                    "the saved plan does not match this host any more, nothing was changed: {}",
                    diffs.join("; ")
                )),
            ));
        }
    }
    refused
}

fn finish_apply(a: &ApplyArgs, l: &Loaded, outcomes: Vec<HostOutcome>) -> Result<ExitCode> {
    if a.hosts.json {
        println!(
            "{}",
            l.redactor.redact(&serde_json::to_string_pretty(
                &serde_json::json!({ "hosts": outcomes })
            )?)
        );
    } else {
        ui::print_apply(&outcomes);
    }
    print_errors(&outcomes);
    Ok(exit::for_outcomes(&outcomes).unwrap_or(ExitCode::SUCCESS))
}

pub fn check(registry: &Registry, c: &CheckArgs) -> Result<ExitCode> {
    let (spec, templates) = load(&c.common)?;
    check_host_names(&spec, &c.hosts, &c.common.inventory)?;
    let opts = RenderOptions {
        reveal_secrets: false,
        today: zone::today(),
    };
    // The checks do not depend on the release.
    let hosts = Renderer::new(registry, &spec, &templates, &opts).all(
        &|h| crate::render::release_of(h, crate::release::CURRENT_STABLE),
        &|_, _| None,
    )?;
    let patience = Patience::once(std::time::Duration::from_secs(c.patience));
    let mut failed = 0;
    for d in hosts
        .iter()
        .filter(|d| c.hosts.is_empty() || c.hosts.contains(&d.host))
    {
        for check in &d.checks {
            match health::run(check, patience) {
                Ok(ok) => ui::line(&format!("{}: ok: {ok}", d.host)),
                Err(e) => {
                    failed += 1;
                    ui::line(&format!("{}: FAILED: {}", d.host, e.0));
                }
            }
        }
    }
    if failed > 0 {
        ui::error(&format!("error: {failed} check(s) failed"));
        return Ok(ExitCode::from(exit::FAILED));
    }
    Ok(ExitCode::SUCCESS)
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
    for h in hosts {
        match apply::history(&ctx, h) {
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
    if a.hosts.json {
        println!(
            "{}",
            l.redactor.redact(&serde_json::to_string_pretty(
                &serde_json::json!({ "hosts": outcomes })
            )?)
        );
    } else {
        ui::print_rollback(&outcomes);
    }
    print_errors(&outcomes);
    Ok(exit::for_outcomes(&outcomes).unwrap_or(ExitCode::SUCCESS))
}
