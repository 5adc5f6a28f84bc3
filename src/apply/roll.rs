//! Rolling apply: hosts that other hosts front (web hosts behind load balancers) change a batch at a
//! time, each taken out of service first. For each batch: every fronting host closes the gate to
//! each host of the batch that has something to change (drain, wait until its requests are
//! answered), the batch is applied and checked, then the gates open again for the hosts that
//! passed; a host that failed stays fenced off (left out of the pool) and the roll stops there: the
//! hosts not yet changed keep serving as they were.

use super::{as_root, execute, not_run, Context, HostError, HostOutcome, Prepared};
use crate::component::Gate;
use crate::release::CURRENT_STABLE;
use crate::render::{RenderOptions, Renderer};
use crate::transport::TransportError;

/// Why a gate script on a fronting host failed: the roll stops there. `what` is what the gate
/// was to do (`drained web1`).
#[derive(Debug)]
pub enum GateError {
    /// The script could not be run on `host`.
    Transport {
        host: String,
        what: String,
        error: TransportError,
    },
    /// It ran and exited with `status`; `output` is what it said.
    Failed {
        host: String,
        what: String,
        status: i32,
        output: String,
    },
}

impl std::fmt::Display for GateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GateError::Transport { host, what, error } => write!(f, "{host}: {what}: {error}"),
            GateError::Failed {
                host,
                what,
                status,
                output,
            } => write!(f, "{host}: {what} failed (exit {status}): {output}"),
        }
    }
}

impl std::error::Error for GateError {}

/// A host whose components front others, with the gates it holds for them.
struct Front<'p> {
    host: &'p mut Prepared,
    /// (target host, gate).
    gates: Vec<(String, Gate)>,
}

/// The gates `fronts` hold for the hosts of `tier`.
fn fronts<'p>(ctx: &Context, fronts: &'p mut [Prepared], tier: &[Prepared]) -> Vec<Front<'p>> {
    let opts = RenderOptions {
        reveal_secrets: false,
        today: ctx.opts.today,
    };
    let renderer = Renderer::new(ctx.registry, ctx.spec, ctx.templates, &opts);
    let mut out = Vec::new();
    for p in fronts.iter_mut() {
        // A fronting host whose services do not all run yet (a first apply) sends no traffic to
        // hold back: the tier goes at once.
        let live = p
            .desired
            .services
            .iter()
            .all(|s| p.facts.services.get(&s.name).copied().unwrap_or(false));
        if !live {
            continue;
        }
        let release = p.desired.release.unwrap_or(CURRENT_STABLE);
        let gates: Vec<(String, Gate)> = renderer.with_cx(&p.host, release, |cx| {
            tier.iter()
                .flat_map(|t| {
                    ctx.registry
                        .for_host(ctx.spec, &p.host)
                        .into_iter()
                        .filter_map(|c| c.gate(cx, &t.host))
                        .map(|g| (t.host.name.clone(), g))
                        .collect::<Vec<_>>()
                })
                .collect()
        });
        if !gates.is_empty() {
            out.push(Front { host: p, gates });
        }
    }
    out
}

/// Runs one gate script on a fronting host; a failure is said, and stops the roll.
fn gate(
    ctx: &Context,
    f: &mut Front,
    target: &str,
    which: fn(&Gate) -> &str,
    what: &str,
) -> Result<(), GateError> {
    for (t, g) in f.gates.iter().filter(|(t, _)| t == target) {
        run_gate(ctx, f.host, which(g), &format!("{what} {t}"))?;
    }
    Ok(())
}

/// Runs a gate script as root on the fronting host `p`; `what` is said when it is done.
fn run_gate(ctx: &Context, p: &mut Prepared, script: &str, what: &str) -> Result<(), GateError> {
    let name = p.host.name.clone();
    ctx.reporter.command(&name, script);
    let out = p
        .transport
        .exec(&as_root(ctx, &p.host, "sh -s"), script.as_bytes())
        .map_err(|error| GateError::Transport {
            host: name.clone(),
            what: what.to_string(),
            error,
        })?;
    if out.status != 0 {
        return Err(GateError::Failed {
            host: name,
            what: what.to_string(),
            status: out.status,
            output: out.text().trim().to_string(),
        });
    }
    ctx.reporter.note(&name, what);
    Ok(())
}

/// Takes the hosts the inventory no longer names out of the fronting hosts' service, before any
/// host changes: the same run stops serving them elsewhere (the database's grants and ruleset),
/// and requests they still held would then fail. An error stops the run with nothing changed.
pub fn let_go(ctx: &Context, ready: &mut [Prepared]) -> Result<(), GateError> {
    for p in ready.iter_mut() {
        for l in std::mem::take(&mut p.leaving) {
            let what = format!(
                "took {} out of service (drained): the inventory no longer names it",
                l.target
            );
            run_gate(ctx, p, &l.close, &what)?;
        }
    }
    Ok(())
}

/// Applies a tier whose hosts other hosts (in `rest`) front, `batch` hosts at a time; returns the
/// outcomes, the hosts after a failed one skipped.
pub fn roll(
    ctx: &Context,
    tier: Vec<Prepared>,
    rest: &mut [Prepared],
    batch: usize,
    forks: usize,
) -> Vec<HostOutcome> {
    let mut fronts = fronts(ctx, rest, &tier);
    // Nobody fronts these hosts: all at once.
    let batch = if fronts.is_empty() { tier.len() } else { batch };
    let mut outcomes = Vec::new();
    let mut stopped: Option<String> = None;
    let mut todo = tier.into_iter().peekable();
    while todo.peek().is_some() {
        let group: Vec<Prepared> = todo.by_ref().take(batch.max(1)).collect();
        if let Some(why) = &stopped {
            for p in group {
                let e = HostError::Skipped(format!("the roll stopped: {why}"));
                outcomes.push(not_run(ctx, p, e));
            }
            continue;
        }
        let closed = match close(ctx, &mut fronts, &group) {
            Ok(closed) => closed,
            Err(why) => {
                for p in group {
                    let e = HostError::Refused(format!(
                        "not changed: it could not be taken out of service first: {why}"
                    ));
                    outcomes.push(not_run(ctx, p, e));
                }
                stopped = Some(why);
                continue;
            }
        };
        let results = execute_all(ctx, group, forks);
        stopped = reopen(ctx, &mut fronts, &results, &closed);
        outcomes.extend(results);
    }
    outcomes
}

/// Takes the hosts of `group` that change out of the fronting hosts' service; the hosts closed,
/// or why one could not be (what was closed is then put back: nothing changes).
fn close(ctx: &Context, fronts: &mut [Front], group: &[Prepared]) -> Result<Vec<String>, String> {
    let changing = group.iter().filter(|p| !p.plan.is_empty());
    let mut closed = Vec::new();
    let mut failed = None;
    for t in changing.map(|p| &p.host.name) {
        for f in fronts.iter_mut() {
            if let Err(e) = gate(ctx, f, t, |g| &g.close, "drained") {
                failed = Some(e.to_string());
            }
        }
        closed.push(t.clone());
    }
    let Some(why) = failed else {
        return Ok(closed);
    };
    for t in &closed {
        for f in fronts.iter_mut() {
            let _ = gate(ctx, f, t, |g| &g.open, "put back");
        }
    }
    Err(why)
}

/// Executes the hosts of `group`, `forks` at a time.
fn execute_all(ctx: &Context, group: Vec<Prepared>, forks: usize) -> Vec<HostOutcome> {
    let names: Vec<String> = group.iter().map(|p| p.host.name.clone()).collect();
    crate::pool::run(group, forks, &|p| execute(ctx, p), &|i| {
        let mut o = HostOutcome::new(&names[i]);
        o.error = Some(HostError::Apply(
            "provision's worker for this host panicked (a bug)".into(),
        ));
        o
    })
}

/// Puts the `closed` hosts that changed back into service, and keeps the ones that failed out;
/// why the roll stops, if it does (a failed host, or a gate that failed).
fn reopen(
    ctx: &Context,
    fronts: &mut [Front],
    results: &[HostOutcome],
    closed: &[String],
) -> Option<String> {
    let mut stopped = None;
    for o in results.iter().filter(|o| closed.contains(&o.host)) {
        let (which, what): (fn(&Gate) -> &str, &str) = if o.error.is_none() {
            (|g| &g.open, "put back")
        } else {
            (|g| &g.fence, "kept out of service")
        };
        for f in fronts.iter_mut() {
            if let Err(e) = gate(ctx, f, &o.host, which, what) {
                stopped.get_or_insert(e.to_string());
            }
        }
        if let Some(e) = &o.error {
            stopped.get_or_insert(format!(
                "{} failed ({}); the hosts after it keep serving unchanged",
                o.host,
                e.phase()
            ));
        }
    }
    stopped
}
