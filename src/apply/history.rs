//! The generations a host keeps (`provision history`), and going back to one of them
//! (`provision rollback`): the files each later generation replaced come back, newest first, the
//! services return to the run state they had, the steps whose input was restored run again, and the
//! health checks confirm the result. The rollback is itself a generation.

use super::execute::run_script;
use super::{as_root, connect, render_opts, Context, HostError, HostOutcome};
use crate::health::{self, Patience};
use crate::host_state::{self, Generation};
use crate::render::Renderer;
use crate::script::{self, Runner};
use crate::spec::Host;
use std::time::Instant;

/// Every generation recorded on the host, oldest first.
pub fn history(ctx: &Context, host: &Host) -> Result<Vec<Generation>, HostError> {
    let mut t = connect(ctx, host)?;
    read_history(ctx, host, t.as_mut())
}

fn read_history(
    ctx: &Context,
    host: &Host,
    t: &mut dyn crate::transport::Transport,
) -> Result<Vec<Generation>, HostError> {
    let probe = host_state::history_probe();
    ctx.reporter.command(&host.name, &probe);
    let out = t
        .exec(&as_root(ctx, host, "sh -s"), probe.as_bytes())
        .map_err(|e| HostError::Connect(e.to_string()))?;
    if out.status != 0 {
        return Err(HostError::Facts(format!(
            "reading the generations failed (exit {}): {}",
            out.status,
            out.text().trim()
        )));
    }
    Ok(host_state::read_history(&out.text()))
}

/// Which generations a rollback to `to` undoes (newest first): every one after it; without `to`,
/// the newest one alone.
pub fn to_undo(history: &[Generation], to: Option<&str>) -> Result<Vec<String>, HostError> {
    let Some(newest) = history.last() else {
        return Err(HostError::Refused(
            "provision has recorded no generation on this host: nothing to roll back".into(),
        ));
    };
    let undo: Vec<&Generation> = match to {
        None => vec![newest],
        Some(target) => {
            let Some(pos) = history.iter().position(|g| g.id == target) else {
                let ids: Vec<&str> = history.iter().map(|g| g.id.as_str()).collect();
                return Err(HostError::Refused(format!(
                    "--to {target}: no such generation on this host; allowed: {}",
                    ids.join(", ")
                )));
            };
            if pos + 1 == history.len() {
                return Err(HostError::Refused(format!(
                    "--to {target}: it is already the newest generation: nothing to roll back"
                )));
            }
            history[pos + 1..].iter().rev().collect()
        }
    };
    // Newest first: the first one that cannot be undone is as far back as a rollback reaches.
    if let Some(pos) = undo.iter().position(|g| !g.restorable) {
        let g = &undo[pos].id;
        let why = format!(
            "it has no backups left (only the {} newest generations keep theirs, and one whose undo \
             would put back an application release that was pruned loses them)",
            host_state::KEEP
        );
        return Err(HostError::Refused(if pos == 0 {
            format!("cannot undo generation {g}: {why}: nothing can be rolled back; nothing was changed")
        } else {
            format!(
                "cannot roll back past generation {g}: {why}; the oldest generation this host can \
                 roll back to is {g}; nothing was changed"
            )
        }));
    }
    Ok(undo.iter().map(|g| g.id.clone()).collect())
}

/// Rolls a host back to a generation (or undoes its newest one), then runs the health checks.
pub fn rollback_host(ctx: &Context, host: &Host, to: Option<&str>) -> HostOutcome {
    let start = Instant::now();
    let mut outcome = HostOutcome::new(&host.name);
    if let Err(e) = roll_back(ctx, host, to, &mut outcome) {
        outcome.error = Some(e);
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    ctx.reporter.finish(
        &host.name,
        outcome.error.is_none(),
        &outcome.summary(" rolled back"),
    );
    outcome
}

/// Undoes the generations after `to` (or the newest one), checks the host, and records the result
/// in the rollback's own generation.
fn roll_back(
    ctx: &Context,
    host: &Host,
    to: Option<&str>,
    outcome: &mut HostOutcome,
) -> Result<(), HostError> {
    let mut t = connect(ctx, host)?;
    let hist = read_history(ctx, host, t.as_mut())?;
    let undo = to_undo(&hist, to)?;
    let current = hist.last().map(|g| g.id.clone()).unwrap_or_default();
    outcome.notes.extend(steps_not_undone(&hist, &undo));
    let runner = Runner {
        who: &ctx.opts.who,
        lock_wait: ctx.opts.lock_wait,
    };
    let why = match to {
        Some(target) => format!("rollback to {target}"),
        None => format!("rollback of {current}"),
    };
    let s = script::rollback_script(&current, &undo, &why, &runner);
    let r = run_script(ctx, host, t.as_mut(), &s)?.into_result(&host.name)?;
    let generation = r.generation.unwrap_or_default();
    outcome.generation = Some(generation.clone());
    outcome.applied = true;
    let failed = match check(ctx, host, t.as_mut()) {
        Ok(ok) => {
            outcome.checks.extend(ok);
            None
        }
        Err(e) => Some(e.0),
    };
    let (status, attention) = match &failed {
        None => ("checked", None),
        Some(f) => (
            "check-failed",
            Some(format!(
                "rollback {generation} left health checks failing: {f}"
            )),
        ),
    };
    let m = script::mark_script(
        &generation,
        status,
        attention.as_deref(),
        &Runner {
            who: &ctx.opts.who,
            lock_wait: 60,
        },
    );
    run_script(ctx, host, t.as_mut(), &m)?.into_result(&host.name)?;
    outcome.stats = t.stats();
    match failed {
        None => Ok(()),
        Some(f) => Err(HostError::Check(format!(
            "rolled back ({}), but the health checks fail: {f}",
            undo.join(", ")
        ))),
    }
}

/// What undoing `undo` leaves as it is: the steps those generations ran (database changes).
fn steps_not_undone(hist: &[Generation], undo: &[String]) -> Vec<String> {
    let mut notes = Vec::new();
    for g in undo {
        if let Some(gen) = hist.iter().find(|x| &x.id == g) {
            if gen.ran.iter().any(|r| r.starts_with("run ")) {
                notes.push(format!(
                    "{g} ran {}: database changes are not undone; the restored bootstrap runs again, which sets the earlier passwords back",
                    gen.ran.iter().filter(|r| r.starts_with("run ")).cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    notes
}

/// The host's health checks after a rollback. They do not depend on the release; the inventory's
/// or the current stable will do.
fn check(
    ctx: &Context,
    host: &Host,
    t: &mut dyn crate::transport::Transport,
) -> Result<Vec<String>, health::CheckFailed> {
    let opts = render_opts(ctx);
    let release = crate::render::release_of(host, crate::release::CURRENT_STABLE);
    let checks = Renderer::new(ctx.registry, ctx.spec, ctx.templates, &opts)
        .host(host, release, &crate::render::Unknown)
        .map(|d| d.checks)
        .unwrap_or_default();
    ctx.reporter.phase(&host.name, "check");
    let patience = Patience::after_change(ctx.opts.check_patience);
    let hosts = super::checks::Hosts::new(ctx, Some((&host.name, t)));
    health::run_all(&checks, patience, &hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(id: &str, restorable: bool) -> Generation {
        Generation {
            id: id.into(),
            restorable,
            ..Generation::default()
        }
    }

    #[test]
    fn without_to_only_the_newest_is_undone() {
        let h = [gen("G1", true), gen("G2", true)];
        assert_eq!(to_undo(&h, None).unwrap(), ["G2"]);
    }

    #[test]
    fn to_an_older_generation_undoes_every_later_one_newest_first() {
        let h = [
            gen("G1", false),
            gen("G2", true),
            gen("G3", true),
            gen("G4", true),
        ];
        assert_eq!(to_undo(&h, Some("G2")).unwrap(), ["G4", "G3"]);
    }

    #[test]
    fn unknown_newest_and_pruned_targets_are_refused() {
        let h = [gen("G1", false), gen("G2", true)];
        assert!(to_undo(&h, Some("G9"))
            .unwrap_err()
            .message()
            .contains("allowed: G1, G2"));
        assert!(to_undo(&h, Some("G2"))
            .unwrap_err()
            .message()
            .contains("already the newest"));
        let h = [gen("G1", true), gen("G2", false), gen("G3", true)];
        let e = to_undo(&h, Some("G1")).unwrap_err();
        assert!(e.message().contains("no backups left"), "{e}");
        assert!(to_undo(&[], None).is_err());
    }

    /// Generations lose their backups oldest first (pruned generations, then those whose release
    /// was pruned): the refusal names the oldest one a rollback can still go back to.
    #[test]
    fn a_rollback_past_its_reach_is_refused_naming_the_oldest_reachable_generation() {
        let h = [
            gen("G1", false),
            gen("G2", false),
            gen("G3", false),
            gen("G4", true),
            gen("G5", true),
        ];
        let e = to_undo(&h, Some("G1")).unwrap_err();
        assert!(matches!(e, HostError::Refused(_)), "{e}");
        assert!(
            e.message()
                .contains("the oldest generation this host can roll back to is G3"),
            "{e}"
        );
        assert_eq!(to_undo(&h, Some("G3")).unwrap(), ["G5", "G4"]);
        let h = [gen("G1", true), gen("G2", false)];
        let e = to_undo(&h, None).unwrap_err();
        assert!(e.message().contains("nothing can be rolled back"), "{e}");
    }
}
