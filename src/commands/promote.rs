//! `promote`: a planned switchover of the database primary to one of its replicas (the steps and
//! why they are safe: `component::switchover`). Nothing is changed until every database server has
//! answered and the edited inventory is valid; up to the replicas' catch-up, a failure puts the
//! primary back as it was.

use super::check_host_names;
use super::hosts::{context, loaded, run_options};
use crate::apply::{self, HostError};
use crate::cli::{ApplyArgs, HostArgs, PromoteArgs};
use crate::component::switchover::{self, ServerState};
use crate::component::Registry;
use crate::exit::{self, Usage};
use crate::spec::{Host, Role, SystemSources};
use crate::transport::Transport;
use crate::ui;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

/// A failed step: what the user is told, with the step's host.
struct Failed(String);

impl From<(&Host, HostError)> for Failed {
    fn from((h, e): (&Host, HostError)) -> Failed {
        Failed(format!("{}: {e}", h.name))
    }
}

pub fn promote(registry: &Registry, a: &PromoteArgs) -> Result<ExitCode> {
    let host_args = HostArgs {
        common: a.common.clone(),
        hosts: Vec::new(),
        json: false,
        trust_new_hosts: a.trust_new_hosts,
        local: false,
        verbose: a.verbose,
        forks: 32,
        ssh_reuse: None,
    };
    let l = loaded(&host_args)?;
    let spec = &l.spec;
    check_host_names(spec, std::slice::from_ref(&a.host), &a.common.inventory)?;
    let replicas: Vec<&Host> = spec.hosts_with(Role::DbReplica).collect();
    let Some(chosen) = replicas.iter().find(|h| h.name == a.host) else {
        let names: Vec<&str> = replicas.iter().map(|h| h.name.as_str()).collect();
        return Err(Usage(format!(
            "--host {}: not a database replica in {}; allowed: {}",
            a.host,
            a.common.inventory.display(),
            if names.is_empty() {
                "none (the inventory has no \"db-replica\" host)".into()
            } else {
                names.join(", ")
            }
        ))
        .into());
    };
    // The edited inventory is made and validated before any host is touched.
    let text = std::fs::read_to_string(&a.common.inventory)
        .with_context(|| format!("reading {}", a.common.inventory.display()))?;
    let edited =
        crate::spec::edit::swap_primary(&text, &a.common.inventory, &a.host, &SystemSources)?;
    let primary = spec.db_primary();
    let mut servers: Vec<&Host> = vec![primary];
    servers.extend(replicas.iter().copied());

    let names: Vec<String> = servers.iter().map(|h| h.name.clone()).collect();
    let progress = ui::Progress::new(&names, false, a.verbose);
    let ctx = context(registry, &l, run_options(&host_args, 60), &progress);
    // Written beside the inventory first: a directory that cannot take it fails here, not after
    // the switchover.
    let staged = stage(&a.common.inventory, &edited)?;
    let switched = switch(&ctx, primary, chosen, &replicas, a.catch_up);
    drop(progress);
    if let Err(Failed(why)) = switched {
        let _ = std::fs::remove_file(&staged);
        ui::error(&format!("error: {why}"));
        return Ok(ExitCode::from(exit::FAILED));
    }
    std::fs::rename(&staged, &a.common.inventory).with_context(|| {
        format!(
            "{} is the primary now, but the inventory could not be replaced with {}: swap the roles of {} and {} in {} by hand, then apply",
            chosen.name,
            staged.display(),
            chosen.name,
            primary.name,
            a.common.inventory.display()
        )
    })?;
    ui::line(&format!(
        "{}: the roles are swapped: {} is \"db\", {} is \"db-replica\"; applying it",
        a.common.inventory.display(),
        chosen.name,
        primary.name
    ));
    let code = super::apply::apply(
        registry,
        &ApplyArgs {
            hosts: host_args,
            plan: None,
            lock_timeout: 60,
            batch: 1,
        },
    )?;
    if code != ExitCode::SUCCESS {
        ui::error(&format!(
            "error: {} is the primary and the inventory says so, but the apply that points the others at it failed: run `provision apply -i {}` again",
            chosen.name,
            a.common.inventory.display()
        ));
    }
    Ok(code)
}

/// The switchover on the live servers (steps 1-4).
fn switch(
    ctx: &apply::Context,
    primary: &Host,
    chosen: &Host,
    replicas: &[&Host],
    catch_up: u64,
) -> Result<(), Failed> {
    let mut conns: Vec<(&Host, Box<dyn Transport>)> = Vec::new();
    for h in std::iter::once(&primary).chain(replicas) {
        let t = apply::connect(ctx, h).map_err(|e| Failed::from((*h, e)))?;
        conns.push((h, t));
    }
    let run = |conn: &mut (&Host, Box<dyn Transport>), command: String, why: &str| {
        let (h, t) = conn;
        apply::run_commands(ctx, h, t.as_mut(), &[(command, why.to_string())])
            .map(|lines| ServerState::parse(&lines))
            .map_err(|e| Failed::from((*h, e)))
    };
    // Every server first: nothing changes unless all of them can take part.
    let address = primary.internal_address().to_string();
    for conn in conns.iter_mut().skip(1) {
        let state = run(
            conn,
            switchover::state_command(ctx.spec),
            "the database server does not answer",
        )?;
        let promoted = conn.0.name == chosen.name;
        if let Some(why) = state.unfit_replica(&address, promoted) {
            return Err(Failed(format!(
                "{}: cannot take part in the switchover: {why}; nothing was changed",
                conn.0.name
            )));
        }
    }
    // 1. The primary read-only, and where its binary log stands.
    let frozen = run(
        &mut conns[0],
        switchover::freeze_command(),
        "could not make the primary read-only; nothing was changed",
    )?;
    if !(switchover::is_gtid_list(&frozen.binlog_pos)
        && switchover::is_gtid_list(&frozen.binlog_state))
    {
        let _ = run(&mut conns[0], switchover::thaw_command(), "");
        return Err(Failed(format!(
            "{}: an unexpected binary log position ({:?}, {:?}); it is writable again, nothing else was changed",
            primary.name, frozen.binlog_pos, frozen.binlog_state
        )));
    }
    ui::line(&format!(
        "{}: read-only; its binary log stands at {}",
        primary.name,
        show(&frozen.binlog_pos)
    ));
    // 2. Every replica replays up to there.
    for i in 1..conns.len() {
        let name = conns[i].0.name.clone();
        let waited = run(
            &mut conns[i],
            switchover::catch_up_command(&frozen.binlog_pos, catch_up),
            "waiting for the replica to catch up failed",
        );
        let caught_up = matches!(&waited, Ok(s) if s.waited == Some(0));
        if !caught_up {
            let thawed = run(
                &mut conns[0],
                switchover::thaw_command(),
                "could not make the primary writable again",
            );
            let why = match waited {
                Err(Failed(e)) => e,
                Ok(_) => format!("{name}: did not catch up within {catch_up} s"),
            };
            return Err(Failed(match thawed {
                Ok(_) => format!(
                    "{why}; {} is writable again, nothing else was changed",
                    primary.name
                ),
                Err(Failed(e)) => format!("{why}; and then {e}: it is still read-only"),
            }));
        }
        ui::line(&format!("{name}: caught up"));
    }
    // 3. The chosen replica becomes the primary. From here on the switchover goes forward.
    let at = conns
        .iter()
        .position(|(h, _)| h.name == chosen.name)
        .expect("the chosen replica is connected");
    run(
        &mut conns[at],
        switchover::promote_command(&frozen.binlog_state),
        "could not promote the replica",
    )
    .map_err(|Failed(e)| {
        Failed(format!(
            "{e}; {} is still read-only and nothing else was changed: look at {} (SHOW SLAVE STATUS), then promote again",
            primary.name, chosen.name
        ))
    })?;
    ui::line(&format!(
        "{}: promoted: writable, following nobody",
        chosen.name
    ));
    // 4. The old primary will follow it from its own last transaction.
    run(
        &mut conns[0],
        switchover::demote_command(ctx.spec, &frozen.binlog_pos),
        "could not record the position the old primary follows from",
    )?;
    ui::line(&format!(
        "{}: stays read-only; it will follow {} from {}",
        primary.name,
        chosen.name,
        show(&frozen.binlog_pos)
    ));
    Ok(())
}

fn show(pos: &str) -> &str {
    if pos.is_empty() {
        "its beginning (no transaction yet)"
    } else {
        pos
    }
}

/// The edited inventory beside the original (same directory, so the rename that replaces it is
/// atomic), with its mode.
fn stage(path: &std::path::Path, text: &str) -> Result<std::path::PathBuf> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(std::path::Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.promoted"));
    std::fs::write(&tmp, text).with_context(|| {
        format!(
            "writing {} (the inventory is edited by promote); nothing was changed",
            tmp.display()
        )
    })?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    Ok(tmp)
}
