//! `apply`: every selected host planned first (read-only), a saved plan compared with the fresh
//! one, then the hosts changed tier by tier (a tier after what it depends on), hosts of a tier in
//! parallel.

use super::hosts::{context, loaded, panicked, parallel, report, run_options, Loaded};
use super::selected;
use crate::apply::{self, HostError, HostOutcome, Prepared};
use crate::cli::ApplyArgs;
use crate::component::Registry;
use crate::exit::Usage;
use crate::plan::saved::{self, SavedPlan};
use crate::spec::Host;
use crate::ui;
use anyhow::{Context as _, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn apply(registry: &Registry, a: &ApplyArgs) -> Result<ExitCode> {
    let l = loaded(&a.hosts)?;
    let hosts = selected(&l.spec, &a.hosts)?;
    let saved = match &a.plan {
        Some(file) => Some(read_saved(file, &hosts)?),
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
    let (mut ready, mut outcomes) = prepare_all(&ctx, &hosts, a.hosts.forks);
    if let Some(saved) = &saved {
        let refused = refuse_mismatches(&mut ready, saved);
        if !refused.is_empty() || !outcomes.is_empty() {
            for p in ready {
                let e = refused
                    .iter()
                    .find(|(h, _)| h == &p.host.name)
                    .map(|(_, e)| e.clone())
                    .unwrap_or(HostError::Skipped(
                        "not applied: the saved plan does not match every host".into(),
                    ));
                outcomes.push(apply::not_run(&ctx, p, e));
            }
            return finish_apply(a, &l, outcomes);
        }
    }
    if let Err(why) = apply::let_go(&ctx, &mut ready) {
        for p in ready {
            let e = HostError::Refused(format!(
                "not changed: a host the inventory no longer names could not be taken out of service first: {why}"
            ));
            outcomes.push(apply::not_run(&ctx, p, e));
        }
        return finish_apply(a, &l, outcomes);
    }
    let tiers = registry.tiers(&l.spec, &hosts);
    apply_tiers(&ctx, &tiers, ready, &mut outcomes, a);
    outcomes.sort_by_key(|o| l.spec.hosts.iter().position(|h| h.name == o.host));
    finish_apply(a, &l, outcomes)
}

/// The saved plan in `file`, which must cover the hosts this run selects.
fn read_saved(file: &Path, hosts: &[&Host]) -> Result<SavedPlan> {
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
    Ok(p)
}

/// Every host planned, in parallel: those ready to apply, and the outcomes of those that could
/// not be planned.
fn prepare_all(
    ctx: &apply::Context,
    hosts: &[&Host],
    forks: u16,
) -> (Vec<Prepared>, Vec<HostOutcome>) {
    let prepared: Vec<Result<Prepared, Box<HostOutcome>>> = parallel(
        hosts,
        forks,
        &|h| {
            apply::prepare(ctx, h).map_err(|(e, stats)| {
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
    (ready, outcomes)
}

/// The prepared hosts changed tier by tier (`tiers` in dependency order), their outcomes added to
/// `outcomes` (which holds those of the hosts that could not be planned).
fn apply_tiers(
    ctx: &apply::Context,
    tiers: &[Vec<&Host>],
    mut ready: Vec<Prepared>,
    outcomes: &mut Vec<HostOutcome>,
    a: &ApplyArgs,
) {
    let tier_of = |name: &str| tiers.iter().position(|t| t.iter().any(|h| h.name == name));
    for (i, tier) in tiers.iter().enumerate() {
        // Only a failed host of an earlier tier (one this tier comes after) stops it: a host of
        // the same tier that could not be planned does not stop the others.
        let failed_before = outcomes
            .iter()
            .any(|o| o.error.is_some() && tier_of(&o.host).is_some_and(|t| t < i));
        let mut group: Vec<Prepared> = Vec::new();
        for h in tier {
            if let Some(i) = ready.iter().position(|p| p.host.name == h.name) {
                group.push(ready.remove(i));
            }
        }
        if failed_before {
            // A later tier on top of a failed one would only fail its health checks.
            for p in group {
                let e = HostError::Skipped("a host it depends on failed".into());
                outcomes.push(apply::not_run(ctx, p, e));
            }
            continue;
        }
        // Hosts the remaining ones front (web hosts behind load balancers) roll, a batch at a time.
        let results = apply::roll(
            ctx,
            group,
            &mut ready,
            usize::from(a.batch),
            usize::from(a.hosts.forks),
        );
        outcomes.extend(results);
    }
}

/// Hosts whose fresh plan differs from the saved one, with what differs.
fn refuse_mismatches(ready: &mut [Prepared], saved: &SavedPlan) -> Vec<(String, HostError)> {
    let mut refused = Vec::new();
    for p in ready.iter_mut() {
        let Some(s) = saved.host(&p.host.name) else {
            continue;
        };
        // Kept for the comparison again after a wait for the host's lock (see `execute`).
        p.saved = Some(s.commitments.clone());
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
    report(a.hosts.json, l, &outcomes, ui::print_apply)
}
