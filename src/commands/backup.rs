//! `backup` and `restore`: the database dump of `[backup]` on demand, and loading one back. Both
//! run the dump script the apply installed on the database hosts (`component::backup`).

use super::hosts::{context, loaded, run_options, Loaded};
use crate::apply::{self, as_root, Context, HostError};
use crate::cli::{BackupArgs, Common, HostArgs, RestoreArgs};
use crate::component::backup::{DIR, SCRIPT};
use crate::component::Registry;
use crate::exit::{self, Usage};
use crate::quote::shell_word;
use crate::spec::Host;
use crate::ui;
use anyhow::Result;
use std::process::ExitCode;

fn host_args(common: &Common, trust_new_hosts: bool, verbose: bool) -> HostArgs {
    HostArgs {
        common: common.clone(),
        hosts: Vec::new(),
        json: false,
        trust_new_hosts,
        local: false,
        verbose,
        forks: 1,
        ssh_reuse: None,
    }
}

/// The inventory, which must ask for backups (the script is installed by the apply).
fn with_backup(a: &HostArgs) -> Result<Loaded> {
    let l = loaded(a)?;
    if l.spec.backup.is_none() {
        return Err(Usage(format!(
            "{}: no [backup] table; allowed: an inventory with [backup] (keep_days, time), applied once, which installs the dump script",
            a.common.inventory.display()
        ))
        .into());
    }
    Ok(l)
}

/// Runs `command` as root on `host` over a connection of its own; its output, or why not.
fn run(ctx: &Context, host: &Host, command: &str, stdin: &[u8]) -> Result<String, HostError> {
    let mut t = apply::connect(ctx, host)?;
    let out = t
        .exec(&as_root(ctx, host, command), stdin)
        .map_err(|e| HostError::Connect(e.to_string()))?;
    let text = ctx.redactor.redact(&out.text());
    if out.status != 0 {
        return Err(HostError::Apply(format!(
            "{} exited {}: {}",
            command.split_whitespace().next().unwrap_or(command),
            out.status,
            text.trim()
        )));
    }
    Ok(text)
}

/// The dump script's run on `host`: the paths of the dumps it made (one per site's database).
fn dump(ctx: &Context, host: &Host, label: &str) -> Result<String, HostError> {
    let out = run(ctx, host, &format!("{SCRIPT} {label}"), b"")?;
    let made: Vec<&str> = out.lines().filter(|l| l.starts_with(DIR)).collect();
    if made.is_empty() {
        return Err(HostError::Apply(format!(
            "{SCRIPT} printed no dump: {}",
            out.trim()
        )));
    }
    Ok(made.join(" "))
}

fn failed(host: &Host, e: HostError) -> ExitCode {
    ui::error(&format!("error: {}: {e}", host.name));
    ExitCode::from(match e {
        HostError::Connect(_) => exit::UNREACHABLE,
        _ => exit::FAILED,
    })
}

pub fn backup(registry: &Registry, a: &BackupArgs) -> Result<ExitCode> {
    let h = host_args(&a.common, a.trust_new_hosts, a.verbose);
    let l = with_backup(&h)?;
    let host = l.spec.backup_host();
    let progress = ui::Progress::new(std::slice::from_ref(&host.name), false, a.verbose);
    let ctx = context(registry, &l, run_options(&h, 0), &progress);
    let made = dump(&ctx, host, "manual");
    drop(progress);
    match made {
        Ok(path) => {
            ui::line(&format!("{}: {path}", host.name));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failed(host, e)),
    }
}

/// A dump file the backup host keeps: a plain name under the backups directory.
fn dump_path(from: &str) -> Result<String> {
    let name = from.strip_prefix(&format!("{DIR}/")).unwrap_or(from);
    let ok = name.ends_with(".sql.gz")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(Usage(format!(
            "--from {from}: not a dump of the backup host; allowed: a file of {DIR} as `provision backup` prints it, like {DIR}/foobar-nightly-20261123T031500Z.sql.gz"
        ))
        .into());
    }
    Ok(format!("{DIR}/{name}"))
}

pub fn restore(registry: &Registry, a: &RestoreArgs) -> Result<ExitCode> {
    let from = dump_path(&a.from)?;
    let h = host_args(&a.common, a.trust_new_hosts, a.verbose);
    let l = with_backup(&h)?;
    let spec = &l.spec;
    let source = spec.backup_host();
    let primary = spec.db_primary();
    let mut names = vec![primary.name.clone()];
    if source.name != primary.name {
        names.insert(0, source.name.clone());
    }
    let progress = ui::Progress::new(&names, false, a.verbose);
    let ctx = context(registry, &l, run_options(&h, 0), &progress);
    // The dump is read whole and checked on the primary before anything is loaded: a file that is
    // not a complete gzip stream changes nothing.
    let read = run(
        &ctx,
        source,
        &format!("base64 -w0 < {}", shell_word(&from)),
        b"",
    );
    let data = match read {
        Ok(text) => {
            use base64::Engine;
            match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                Ok(d) => d,
                Err(_) => {
                    drop(progress);
                    return Ok(failed(
                        source,
                        HostError::Apply(format!("{from} could not be read")),
                    ));
                }
            }
        }
        Err(e) => {
            drop(progress);
            return Ok(failed(source, e));
        }
    };
    let steps = (|| {
        let kept = dump(&ctx, primary, "before-restore")?;
        ctx.reporter.note(
            &primary.name,
            &format!("the database as it was is kept in {kept}"),
        );
        let load = "f=$(mktemp) && trap 'rm -f \"$f\"' EXIT && cat > \"$f\" && gzip -t \"$f\" && gzip -dc \"$f\" | mariadb";
        run(&ctx, primary, load, &data)?;
        Ok::<String, HostError>(kept)
    })();
    drop(progress);
    match steps {
        Ok(kept) => {
            // A dump's name starts with its database's (`<db>-<label>-<time>.sql.gz`).
            let db = from
                .rsplit('/')
                .next()
                .and_then(|f| f.split('-').next())
                .unwrap_or("the database");
            ui::line(&format!(
                "{}: restored {db} from {}:{from}; the databases before it: {kept}",
                primary.name, source.name
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failed(primary, e)),
    }
}
