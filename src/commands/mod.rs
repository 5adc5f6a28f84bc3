//! The edge: resolves the command line into work, runs it, and reports through `ui`. With `main`,
//! the only place that uses `anyhow`; the typed errors of the phases pass through it to `exit`.

mod apply;
mod backup;
mod hosts;
mod init;
mod promote;
mod render;
mod sites;

use crate::cli::{Cli, Command, Common, HostArgs};
use crate::component::Registry;
use crate::render::templates::Templates;
use crate::secret::Redactor;
use crate::spec::{self, Host, Spec, SystemSources};
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let registry = Registry::standard();
    match cli.command {
        Command::Validate(c) => render::validate(&registry, &c),
        Command::Render(r) => render::render(&registry, &r),
        Command::Plan(a) => hosts::plan(&registry, &a),
        Command::Apply(a) => apply::apply(&registry, &a),
        Command::Check(c) => hosts::check(&registry, &c),
        Command::History(h) => hosts::history(&registry, &h),
        Command::Rollback(r) => hosts::rollback(&registry, &r),
        Command::Promote(p) => promote::promote(&registry, &p),
        Command::Backup(b) => backup::backup(&registry, &b),
        Command::Restore(r) => backup::restore(&registry, &r),
        Command::DeleteSite(d) => sites::delete_site(&registry, &d),
        Command::Init(a) => init::init(&a),
        Command::Completions(a) => init::completions(&a),
        Command::Man => init::man(),
    }
}

fn load(c: &Common) -> Result<(Spec, Templates)> {
    let spec = spec::load(&c.inventory, &SystemSources)?;
    for w in &spec.warnings {
        crate::ui::error(&format!("warning: {w}"));
    }
    let templates = Templates::load(c.templates.as_deref())?;
    Ok((spec, templates))
}

/// The redactor for every secret of the inventory (see `Secrets`).
pub fn redactor(spec: &Spec) -> Redactor {
    spec.secrets.redactor()
}

/// `--host` names that are not in the inventory are a usage error naming the allowed ones.
fn check_host_names(spec: &Spec, names: &[String], inventory: &std::path::Path) -> Result<()> {
    for name in names {
        if spec.host(name).is_none() {
            let all: Vec<&str> = spec.hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(crate::exit::Usage(format!(
                "--host {name}: no such host in {}; allowed: {}",
                inventory.display(),
                all.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// The hosts the command line selected, in inventory order.
fn selected<'a>(spec: &'a Spec, a: &HostArgs) -> Result<Vec<&'a Host>> {
    check_host_names(spec, &a.hosts, &a.common.inventory)?;
    let hosts: Vec<&Host> = spec
        .hosts
        .iter()
        .filter(|h| a.hosts.is_empty() || a.hosts.contains(&h.name))
        .collect();
    if a.local && hosts.len() != 1 {
        bail!(crate::exit::Usage(format!(
            "--local applies to this machine: select exactly one host with --host (the inventory has {})",
            spec.hosts.len()
        )));
    }
    Ok(hosts)
}

/// `user@machine pid N`: who holds a host's lock, and who made a generation.
fn who() -> String {
    format!(
        "{}@{} pid {}",
        std::env::var("USER").unwrap_or_else(|_| "?".into()),
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id()
    )
}
