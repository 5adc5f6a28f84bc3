//! Executing a prepared plan on its host: the apply script (detached on the host, its events
//! followed here), the health checks from this machine, the rollback when they fail, and the record
//! of what became of the generation.

use super::checks::Hosts;
use super::confirm::confirm_new_connection;
use super::{as_root, Context, HostError, HostOutcome, Prepared};
use crate::health::{self, CheckFailed, Patience};
use crate::script::protocol::{self, Event};
use crate::script::{self, Runner};
use crate::spec::Host;
use crate::transport::Transport;

/// What one script run reported.
#[derive(Debug, Default)]
pub struct RunResult {
    pub generation: Option<String>,
    pub done: bool,
    pub fail: Option<String>,
    pub busy: Option<String>,
    pub stale: Option<String>,
    /// Tool output and anything else the script printed, redacted.
    pub output: Vec<String>,
    pub status: i32,
    /// The token of the guard the run armed (it put live what can lock the operator out).
    pub guard: Option<String>,
}

impl RunResult {
    /// The run's failure as an error, or `Ok` when it finished.
    pub fn into_result(self, host: &str) -> Result<RunResult, HostError> {
        if let Some(who) = &self.busy {
            return Err(HostError::Refused(format!(
                "another apply holds the lock on this host ({}); refusing to run concurrently (wait for it, or pass --lock-timeout SECS)",
                who.trim()
            )));
        }
        if let Some(why) = &self.stale {
            return Err(HostError::Refused(why.clone()));
        }
        if let Some(why) = &self.fail {
            let mut msg = why.clone();
            if !self.output.is_empty() {
                msg.push_str(":\n    ");
                msg.push_str(&self.output.join("\n    "));
            }
            return Err(HostError::Apply(msg));
        }
        if !self.done {
            return Err(HostError::Apply(format!(
                "{host}: the script on the host stopped without finishing (exit {}); run plan to see the host's state{}",
                self.status,
                if self.output.is_empty() {
                    String::new()
                } else {
                    format!(":\n    {}", self.output.join("\n    "))
                }
            )));
        }
        Ok(self)
    }
}

/// Runs a script on the host through the detached runner, following its events.
pub fn run_script(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    script: &str,
) -> Result<RunResult, HostError> {
    let name = &host.name;
    ctx.reporter
        .command(name, &ctx.redactor.redact(&script::for_display(script)));
    let mut r = RunResult::default();
    let out = t
        .exec_lines(
            &as_root(ctx, host, &script::runner()),
            script.as_bytes(),
            &mut |raw| {
                let line = ctx.redactor.redact(raw);
                match protocol::parse(&line) {
                    Some(Event::Phase(p)) => ctx.reporter.phase(name, p.as_str()),
                    Some(Event::Generation(g)) => r.generation = Some(g),
                    Some(Event::Out(o)) => r.output.push(o),
                    Some(Event::Did(d)) => ctx.reporter.note(name, &d),
                    Some(Event::Note(n)) => ctx.reporter.note(name, &n),
                    Some(Event::Fail(f)) => r.fail = Some(f),
                    Some(Event::Busy(b)) => r.busy = Some(b),
                    Some(Event::Stale(s)) => r.stale = Some(s),
                    Some(Event::Guard(g)) => r.guard = Some(g),
                    Some(Event::Done) => r.done = true,
                    None if !line.trim().is_empty() => r.output.push(line),
                    None => {}
                }
            },
        )
        .map_err(|e| HostError::Connect(ctx.redactor.redact(&e.to_string())))?;
    r.status = out.status;
    Ok(r)
}

fn runner<'a>(ctx: &'a Context<'a>, lock_wait: u64) -> Runner<'a> {
    Runner {
        who: &ctx.opts.who,
        lock_wait,
    }
}

/// Every check of the host's plan, each until it has settled, all at once (they are independent:
/// the site's page, the DNS answer, the database reached from each web host); the first failing
/// one in order is the round's failure.
fn run_checks(ctx: &Context, p: &mut Prepared) -> Result<Vec<String>, CheckFailed> {
    let patience = Patience::after_change(ctx.opts.check_patience);
    let hosts = Hosts::new(ctx, Some((&p.host.name, p.transport.as_mut())));
    health::run_all(&p.plan.checks, patience, &hosts)
}

/// Records what became of a generation (the lock is waited for: it is only ever held briefly).
fn mark(
    ctx: &Context,
    p: &mut Prepared,
    generation: &str,
    status: &str,
    attention: Option<&str>,
) -> Result<(), HostError> {
    let s = script::mark_script(generation, status, attention, &runner(ctx, 60));
    run_script(ctx, &p.host, p.transport.as_mut(), &s)?
        .into_result(&p.host.name)
        .map(|_| ())
}

/// Executes a host's plan; a host whose plan is empty is left alone.
pub fn execute(ctx: &Context, mut p: Prepared) -> HostOutcome {
    let mut outcome = HostOutcome::new(&p.host.name);
    let settled = settle(ctx, &mut p);
    outcome.plan = Some(p.plan.clone());
    let result = settled.and_then(|()| run(ctx, &mut p, &mut outcome, 0));
    if let Err(e) = result {
        outcome.error = Some(e);
    }
    outcome.stats = p.transport.stats();
    outcome.seconds = p.started.elapsed().as_secs_f64();
    ctx.reporter.finish(
        &p.host.name,
        outcome.error.is_none(),
        &outcome.summary(" applied"),
    );
    outcome
}

/// A plan made while another run held the host's lock saw the host half-way through that run: most
/// often the detached script of an apply whose controller was killed or cut off, still installing
/// or swapping. Once that run ends the script would refuse such a plan as stale, and the user would
/// have to plan again by hand. So the lock is waited for first (as long as --lock-timeout allows;
/// refused at once without it, as before), and the host is planned again from what the other run
/// made of it.
fn settle(ctx: &Context, p: &mut Prepared) -> Result<(), HostError> {
    let Some(holder) = p.facts.state.locked_by.clone() else {
        return Ok(());
    };
    let name = p.host.name.clone();
    if ctx.opts.lock_wait > 0 {
        ctx.reporter.note(
            &name,
            &format!(
                "another run holds the lock ({holder}); waiting for it (up to {} s), then planning again",
                ctx.opts.lock_wait
            ),
        );
    }
    let s = script::wait_script(&runner(ctx, ctx.opts.lock_wait));
    run_script(ctx, &p.host, p.transport.as_mut(), &s)?.into_result(&name)?;
    replan(ctx, p)
}

/// Plans the host again from what another run made of it. A saved plan must still be exactly what
/// runs: it is compared with the new plan, and a difference refuses the apply.
fn replan(ctx: &Context, p: &mut Prepared) -> Result<(), HostError> {
    let host = p.host.clone();
    let started = p.started;
    let saved = p.saved.take();
    *p = super::prepare(ctx, &host).map_err(|(e, _)| e)?;
    p.started = started;
    if let Some(saved) = saved {
        let diffs =
            crate::plan::saved::differences(&saved, &crate::plan::saved::commitments(&p.plan));
        if !diffs.is_empty() {
            return Err(HostError::Refused(format!(
                "the saved plan does not match this host any more (another run changed it while this one waited for its lock), nothing was changed: {}",
                diffs.join("; ")
            )));
        }
        // Kept: a later plan of this run must match it too.
        p.saved = Some(saved);
    }
    Ok(())
}

/// How often an apply that waited for the lock plans again when another run changed the host
/// meanwhile (each time, some other run took the lock first and finished).
const REPLANS: u32 = 3;

/// Applies the plan (planned again when the host changed under it, up to `REPLANS` times), then
/// checks the generation it made, or the host's newest one when only that needed attention.
fn run(
    ctx: &Context,
    p: &mut Prepared,
    outcome: &mut HostOutcome,
    replans: u32,
) -> Result<(), HostError> {
    if p.plan.is_empty() {
        return Ok(());
    }
    confirm_earlier_guard(ctx, p)?;
    let has_work =
        !(p.plan.install.is_empty() && p.plan.changes.is_empty() && p.plan.steps.is_empty());
    if has_work {
        if let Applied::PlanAgain(why) = apply(ctx, p, outcome, replans)? {
            ctx.reporter.note(&p.host.name, &why);
            replan(ctx, p)?;
            outcome.plan = Some(p.plan.clone());
            return run(ctx, p, outcome, replans + 1);
        }
    }
    check(ctx, p, outcome)
}

/// An earlier run's guarded generation that nothing confirmed (its controller was stopped):
/// confirmed first, by a new connection, or its guard would undo it under this run's changes.
fn confirm_earlier_guard(ctx: &Context, p: &Prepared) -> Result<(), HostError> {
    let Some(token) = &p.facts.state.guard else {
        return Ok(());
    };
    let gen = token.split('.').next().unwrap_or_default();
    let what = format!("generation {gen}, which an earlier run left unconfirmed,");
    confirm_new_connection(ctx, &p.host, &what, token)
        .map_err(|why| HostError::Refused(format!("{why}; nothing was changed")))
}

/// What became of the apply script's run.
enum Applied {
    /// It ran to its end, and what it put live under a guard is confirmed.
    Done,
    /// Nothing ran: the host is to be planned again, for the reason said.
    PlanAgain(String),
}

/// Runs the apply script; what it put live under a guard is confirmed by a new connection, or
/// undone at once.
fn apply(
    ctx: &Context,
    p: &mut Prepared,
    outcome: &mut HostOutcome,
    replans: u32,
) -> Result<Applied, HostError> {
    let name = p.host.name.clone();
    let s = script::apply_script(&p.plan, &p.desired, &runner(ctx, ctx.opts.lock_wait));
    let opened = p.transport.stats().channels;
    let r = match run_script(ctx, &p.host, p.transport.as_mut(), &s) {
        // The connection made for the plan died while this host waited for its turn (other
        // hosts' applies before it, with --forks; a network that drops idle connections), and
        // no channel opened on it: nothing ran on the host. A new connection, and the host
        // planned again from fresh facts (a saved plan must still match), then the apply.
        Err(HostError::Connect(e))
            if p.transport.stats().channels == opened && replans < REPLANS =>
        {
            return Ok(Applied::PlanAgain(format!(
                "the connection was lost before the apply started ({e}); connecting and planning again"
            )));
        }
        r => r?,
    };
    // Stale: another run took the lock between this one's facts and its script (two applies
    // started together, or one whose lock the probe could not see yet) and finished while the
    // script waited. With --lock-timeout the user asked to wait for it and then converge, so
    // the host is planned again (nothing was changed by this run); without it, refused.
    if r.stale.is_some() && ctx.opts.lock_wait > 0 && replans < REPLANS {
        return Ok(Applied::PlanAgain(
            "another run changed the host while this one waited for its lock; planning again"
                .into(),
        ));
    }
    outcome.generation = r.generation.clone();
    let guard = r.guard.clone();
    r.into_result(&name)?;
    outcome.applied = true;
    let what = p
        .desired
        .guarded_by(p.plan.steps.iter().map(|st| &st.handler))
        .join(" and ");
    let unconfirmed =
        guard.and_then(|token| confirm_new_connection(ctx, &p.host, &what, &token).err());
    // A ruleset or sshd settings that cut new connections: the generation is undone at once
    // through this connection (its conntrack entry and sshd process still let it through), as
    // after failed checks.
    if let (Some(why), Some(generation)) = (unconfirmed, outcome.generation.clone()) {
        return Err(roll_back_after_failed_checks(
            ctx,
            p,
            outcome,
            &generation,
            &why.to_string(),
        ));
    }
    Ok(Applied::Done)
}

/// Runs the health checks of the generation this run made (or, on a host that only needed
/// attention, the newest one) and records the result; a fresh generation that fails them is
/// rolled back.
fn check(ctx: &Context, p: &mut Prepared, outcome: &mut HostOutcome) -> Result<(), HostError> {
    let Some(generation) = outcome.generation.clone().or(p.plan.generation.clone()) else {
        return Ok(());
    };
    ctx.reporter.phase(&p.host.name, "check");
    match run_checks(ctx, p) {
        Ok(oks) => {
            outcome.checks = oks;
            mark(ctx, p, &generation, "checked", None)
        }
        Err(failed) if outcome.generation.is_some() => Err(roll_back_after_failed_checks(
            ctx,
            p,
            outcome,
            &generation,
            &failed.0,
        )),
        Err(failed) => {
            let why = format!("health checks fail: {failed}");
            mark(ctx, p, &generation, "check-failed", Some(&why))?;
            Err(HostError::Check(format!(
                "health check failed: {failed}; nothing to roll back (this run changed nothing)"
            )))
        }
    }
}

/// The checks of a fresh generation failed: undo it, check again, and keep the host marked so the
/// next plan shows what happened.
fn roll_back_after_failed_checks(
    ctx: &Context,
    p: &mut Prepared,
    outcome: &mut HostOutcome,
    generation: &str,
    failed: &str,
) -> HostError {
    let name = p.host.name.clone();
    ctx.reporter.phase(&name, "rollback");
    let s = script::rollback_script(
        generation,
        &[generation.to_string()],
        &format!("health checks of {generation} failed"),
        &runner(ctx, 60),
    );
    let rolled =
        run_script(ctx, &p.host, p.transport.as_mut(), &s).and_then(|r| r.into_result(&name));
    outcome.applied = false;
    let r = match rolled {
        Ok(r) => r,
        // The connection is gone (most likely why the checks failed too): the host is unreachable
        // (exit 3), not known to be broken. Whether the rollback script reached it or not, the
        // host stays marked as not confirmed (by this apply or by the rollback), so the next apply
        // checks it again.
        Err(HostError::Connect(e)) => {
            return HostError::Connect(format!(
                "health check failed: {failed}; the connection to the host was lost as well, so its rollback may not have run: {e}; \
                 the host stays marked as not confirmed and the next apply checks it again"
            ))
        }
        Err(e) => {
            return HostError::Check(format!(
                "health check failed: {failed}; ROLLBACK FAILED: {}; the host needs a look",
                e.message()
            ))
        }
    };
    let rollback_gen = r.generation.unwrap_or_default();
    ctx.reporter.phase(&name, "check");
    let (status, state) = match run_checks(ctx, p) {
        Ok(_) => (
            "checked",
            "the previous files were restored, the services restarted, and the health checks pass again".to_string(),
        ),
        Err(still) => (
            "check-failed",
            format!("the previous files were restored and the services restarted, but checks still fail: {still}"),
        ),
    };
    let attention = format!(
        "apply {generation} failed its health checks ({failed}) and was rolled back by {rollback_gen}"
    );
    let marked = mark(ctx, p, &rollback_gen, status, Some(&attention));
    let mut msg = format!("health check failed: {failed}; {state}");
    if let Err(e) = marked {
        msg.push_str(&format!(
            "; recording it on the host failed: {}",
            e.message()
        ));
    }
    HostError::Check(msg)
}
