//! The switchover on the live servers (steps 1-4 of `component::switchover`), every server's host
//! lock held throughout: each step's failure says what it left, and up to the replicas' catch-up
//! puts the primary back as it was.

use crate::apply::{self, HostError};
use crate::component::switchover::{self, ServerState};
use crate::spec::Host;
use crate::transport::Transport;
use crate::ui;

/// A failed step: what the user is told, with the step's host.
pub(super) struct Failed(pub(super) String);

impl From<(&Host, HostError)> for Failed {
    fn from((h, e): (&Host, HostError)) -> Failed {
        Failed(format!("{}: {e}", h.name))
    }
}

/// A database server and the connection the switchover's steps run on.
type Conn<'h> = (&'h Host, Box<dyn Transport>);

/// How the switchover ended, when the chosen replica became the primary.
pub(super) enum Switched {
    Done,
    /// Step 4 failed: the old primary is read-only and was not told where to follow from (why).
    OldPrimaryNotDemoted(String),
}

/// The switchover on the live servers (steps 1-4), every server's host lock held throughout.
pub(super) fn switch(
    ctx: &apply::Context,
    primary: &Host,
    chosen: &Host,
    replicas: &[&Host],
    catch_up: u64,
) -> Result<Switched, Failed> {
    let mut conns: Vec<Conn> = Vec::new();
    for h in std::iter::once(&primary).chain(replicas) {
        let t = apply::connect(ctx, h).map_err(|e| Failed::from((*h, e)))?;
        conns.push((h, t));
    }
    let token = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let lock = Lock::new(&token, catch_up);
    std::thread::scope(|s| {
        let holders: Vec<_> = conns
            .iter()
            .map(|(h, _)| {
                let h: &Host = h;
                let command = lock.hold();
                s.spawn(move || -> Result<(), Failed> {
                    let why = "could not hold the host lock for the switchover".to_string();
                    let mut t = apply::connect(ctx, h).map_err(|e| Failed::from((h, e)))?;
                    apply::run_commands(ctx, h, t.as_mut(), &[(command, why)])
                        .map(|_| ())
                        .map_err(|e| Failed::from((h, e)))
                })
            })
            .collect();
        let result = lock
            .wait_held(ctx, &mut conns, &holders)
            .map(|()| steps(ctx, &mut conns, chosen, catch_up));
        for conn in conns.iter_mut() {
            let _ = on(ctx, conn, lock.release_command(), "");
        }
        let ended: Vec<Result<(), Failed>> = holders
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failed("a lock holder panicked (a bug)".into())))
            })
            .collect();
        let i = match result {
            Ok(switched) => return switched,
            Err(i) => i,
        };
        let why = match &ended[i] {
            Err(Failed(e)) => e.clone(),
            Ok(()) => format!(
                "{}: its host lock was not taken within {} s",
                conns[i].0.name,
                ctx.opts.lock_wait + 30
            ),
        };
        Err(Failed(format!("{why}; nothing was changed")))
    })
}

/// The host locks the switchover holds (see `switchover::hold_command`).
struct Lock {
    held: String,
    release: String,
    /// At most: the replicas' catch-up and a margin for the other steps.
    secs: u64,
}

impl Lock {
    fn new(token: &str, catch_up: u64) -> Lock {
        let base = format!("{}/promote-{token}", crate::host_state::RUNS);
        Lock {
            held: format!("{base}.held"),
            release: format!("{base}.release"),
            secs: catch_up + 300,
        }
    }

    fn hold(&self) -> String {
        switchover::hold_command(&self.held, &self.release, self.secs)
    }

    fn release_command(&self) -> String {
        format!("touch {}", crate::quote::shell_word(&self.release))
    }

    /// Waits until every server's lock is held: the index of the first whose holder ended (it
    /// says why) or did not get it in time.
    fn wait_held(
        &self,
        ctx: &apply::Context,
        conns: &mut [Conn],
        holders: &[std::thread::ScopedJoinHandle<'_, Result<(), Failed>>],
    ) -> Result<(), usize> {
        let test = format!("test -f {}", crate::quote::shell_word(&self.held));
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_secs(ctx.opts.lock_wait + 30);
        for (i, (conn, holder)) in conns.iter_mut().zip(holders).enumerate() {
            loop {
                let held = conn
                    .1
                    .exec(&apply::as_root(ctx, conn.0, &test), b"")
                    .is_ok_and(|o| o.status == 0);
                if held {
                    break;
                }
                if holder.is_finished() || std::time::Instant::now() > deadline {
                    return Err(i);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        Ok(())
    }
}

/// Runs a step's command on a server whose lock the switchover holds; its answer read.
fn on(
    ctx: &apply::Context,
    conn: &mut Conn,
    command: String,
    why: &str,
) -> Result<ServerState, Failed> {
    let (h, t) = conn;
    ctx.reporter.command(&h.name, &command);
    let out = t
        .exec(&apply::as_root(ctx, h, &command), b"")
        .map_err(|e| {
            Failed(format!(
                "{}: {why}: {}",
                h.name,
                ctx.redactor.redact(&e.to_string())
            ))
        })?;
    let text = ctx.redactor.redact(&out.text());
    if out.status != 0 {
        return Err(Failed(format!("{}: {why}: {}", h.name, text.trim())));
    }
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    Ok(ServerState::parse(&lines))
}

/// Steps 1-4 (`conns[0]` is the primary); each failure says what it left.
fn steps(
    ctx: &apply::Context,
    conns: &mut [Conn],
    chosen: &Host,
    catch_up: u64,
) -> Result<Switched, Failed> {
    let address = conns[0].0.internal_address().to_string();
    // Every server first: nothing changes unless all of them can take part.
    for conn in conns.iter_mut().skip(1) {
        let state = on(
            ctx,
            conn,
            switchover::state_command(ctx.spec),
            "the database server does not answer; nothing was changed",
        )?;
        if let Some(why) = state.unfit_replica(&address, conn.0.name == chosen.name) {
            return Err(Failed(format!(
                "{}: cannot take part in the switchover: {why}; nothing was changed",
                conn.0.name
            )));
        }
    }
    let frozen = freeze(ctx, conns)?;
    catch_up_all(ctx, conns, &frozen.binlog_pos, catch_up)?;
    promote_chosen(ctx, conns, chosen, &frozen.binlog_state)?;
    // 4. The old primary will follow it from its own last transaction.
    let (primary, new) = (conns[0].0.name.clone(), chosen.name.clone());
    if let Err(Failed(why)) = on(
        ctx,
        &mut conns[0],
        switchover::demote_command(&frozen.binlog_pos),
        "could not record the position the old primary follows from",
    ) {
        return Ok(Switched::OldPrimaryNotDemoted(why));
    }
    ui::line(&format!(
        "{primary}: stays read-only; it will follow {new} from {}",
        show(&frozen.binlog_pos)
    ));
    Ok(Switched::Done)
}

/// Makes the primary writable again after a step that changed nothing else failed; `why` and
/// what became of the primary.
fn thaw(ctx: &apply::Context, conns: &mut [Conn], why: String) -> Failed {
    let name = conns[0].0.name.clone();
    match on(ctx, &mut conns[0], switchover::thaw_command(), "") {
        Ok(_) => Failed(format!("{why}; {name} is writable again")),
        Err(Failed(e)) => Failed(format!(
            "{why}; and making it writable again failed ({e}): {name} may still be read-only (SET GLOBAL read_only = OFF on it)"
        )),
    }
}

/// Step 1: the primary read-only, and where its binary log stands.
fn freeze(ctx: &apply::Context, conns: &mut [Conn]) -> Result<ServerState, Failed> {
    let name = conns[0].0.name.clone();
    let frozen = match on(
        ctx,
        &mut conns[0],
        switchover::freeze_command(),
        "could not make the primary read-only",
    ) {
        Ok(f) => f,
        Err(Failed(e)) => return Err(thaw(ctx, conns, format!("{e}; nothing else was changed"))),
    };
    if !(switchover::is_gtid_list(&frozen.binlog_pos)
        && switchover::is_gtid_list(&frozen.binlog_state))
    {
        return Err(thaw(
            ctx,
            conns,
            format!(
                "{name}: an unexpected binary log position ({:?}, {:?}); nothing else was changed",
                frozen.binlog_pos, frozen.binlog_state
            ),
        ));
    }
    ui::line(&format!(
        "{name}: read-only; its binary log stands at {}",
        show(&frozen.binlog_pos)
    ));
    Ok(frozen)
}

/// Step 2: every replica replays up to where the primary stands.
fn catch_up_all(
    ctx: &apply::Context,
    conns: &mut [Conn],
    pos: &str,
    catch_up: u64,
) -> Result<(), Failed> {
    for i in 1..conns.len() {
        let name = conns[i].0.name.clone();
        let waited = on(
            ctx,
            &mut conns[i],
            switchover::catch_up_command(pos, catch_up),
            "waiting for the replica to catch up failed",
        );
        match waited {
            Ok(s) if s.waited == Some(0) => ui::line(&format!("{name}: caught up")),
            Ok(_) => {
                let why = format!(
                    "{name}: did not catch up within {catch_up} s; nothing else was changed"
                );
                return Err(thaw(ctx, conns, why));
            }
            Err(Failed(e)) => {
                return Err(thaw(ctx, conns, format!("{e}; nothing else was changed")))
            }
        }
    }
    Ok(())
}

/// Step 3: the chosen replica becomes the primary; from here on the switchover goes forward.
/// When the step fails, the replica says what it became: writable (the step went through:
/// forward), or still read-only (the primary is made writable again).
fn promote_chosen(
    ctx: &apply::Context,
    conns: &mut [Conn],
    chosen: &Host,
    state: &str,
) -> Result<(), Failed> {
    let at = conns
        .iter()
        .position(|(h, _)| h.name == chosen.name)
        .expect("the chosen replica is connected");
    let primary = conns[0].0.name.clone();
    let failed = match on(
        ctx,
        &mut conns[at],
        switchover::promote_command(state),
        "could not promote the replica",
    ) {
        Ok(_) => None,
        Err(Failed(e)) => Some(e),
    };
    let now = on(ctx, &mut conns[at], switchover::state_command(ctx.spec), "");
    match (failed, now) {
        (None, _) | (Some(_), Ok(ServerState { read_only: false, .. })) => {
            ui::line(&format!("{}: promoted: writable, following nobody", chosen.name));
            Ok(())
        }
        (Some(e), Ok(s)) => {
            let follows = match &s.replica.primary {
                Some(p) if s.replica.io_running == "Yes" && s.replica.sql_running == "Yes" => format!("still follows {p}"),
                _ => format!("no longer follows {primary} (the next apply sets it up again)"),
            };
            Err(thaw(ctx, conns, format!("{e}; {} is read-only and {follows}", chosen.name)))
        }
        (Some(e), Err(Failed(now))) => Err(Failed(format!(
            "{e}; and then {now}: whether {} became writable is unknown, so {primary} stays read-only: look at {} (SELECT @@read_only; SHOW SLAVE STATUS) before anything else",
            chosen.name, chosen.name
        ))),
    }
}

fn show(pos: &str) -> &str {
    if pos.is_empty() {
        "its beginning (no transaction yet)"
    } else {
        pos
    }
}
