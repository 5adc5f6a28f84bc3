//! `promote`: a planned switchover of the database primary to one of its replicas (the steps and
//! why they are safe: `component::switchover`). Nothing is changed until every database server has
//! answered and the edited inventory is valid; up to the replicas' catch-up, a failure puts the
//! primary back as it was.

use super::check_host_names;
use super::hosts::{context, loaded, run_options};
use crate::cli::{ApplyArgs, HostArgs, PromoteArgs};
use crate::component::Registry;
use crate::exit::{self, Usage};
use crate::spec::{Host, Role, SystemSources};
use crate::ui;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

mod switch;

use switch::{switch, Failed, Switched};

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
    let chosen = chosen_replica(&replicas, a)?;
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
    match switched {
        Err(Failed(why)) => {
            let _ = std::fs::remove_file(&staged);
            ui::error(&format!("error: {why}; the inventory is unchanged"));
            return Ok(ExitCode::from(exit::FAILED));
        }
        // The chosen replica is the primary: the inventory must say so, and the web hosts be
        // pointed at it (they cannot write until then), whatever became of the old primary.
        Ok(Switched::OldPrimaryNotDemoted(why)) => ui::error(&format!(
            "error: {why}; {} is the primary (writable), {} stays read-only and follows nobody: the apply below seeds it again from {} (a replica with no finished seed)",
            chosen.name, primary.name, chosen.name
        )),
        Ok(Switched::Done) => {}
    }
    adopt(registry, host_args, a, &staged, chosen, primary)
}

/// The replica `--host` names.
fn chosen_replica<'h>(replicas: &[&'h Host], a: &PromoteArgs) -> Result<&'h Host> {
    if let Some(chosen) = replicas.iter().find(|h| h.name == a.host) {
        return Ok(chosen);
    }
    let names: Vec<&str> = replicas.iter().map(|h| h.name.as_str()).collect();
    Err(Usage(format!(
        "--host {}: not a database replica in {}; allowed: {}",
        a.host,
        a.common.inventory.display(),
        if names.is_empty() {
            "none (the inventory has no \"db-replica\" host)".into()
        } else {
            names.join(", ")
        }
    ))
    .into())
}

/// After the switchover: the edited inventory (`staged`) replaces the original and is applied, so
/// the others follow the new primary and the web hosts write to it.
fn adopt(
    registry: &Registry,
    host_args: HostArgs,
    a: &PromoteArgs,
    staged: &std::path::Path,
    chosen: &Host,
    primary: &Host,
) -> Result<ExitCode> {
    std::fs::rename(staged, &a.common.inventory).with_context(|| {
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
