//! The program an apply runs for a plan, as calls of `apply.sh`'s functions, phase by phase: check
//! the host is as planned, packages, accounts, stage, validate, swap, handlers, record.

use super::paths::{expect, stage_path, swap_path};
use super::{protocol, script_with, Runner, LIBRARY, PROGRAM};
use crate::desired::{Action, Desired, Handler, ManagedPath, PathState, Service, Target};
use crate::host_state;
use crate::plan::{HostPlan, ReleaseChange};
use crate::quote::shell_word as q;
use crate::tree::{Kind, Tree};
use std::fmt::Write;

/// What an apply script does for a plan: lock, check the host is as planned, packages, accounts,
/// stage, validate, swap, handlers, record.
pub fn apply_script(plan: &HostPlan, d: &Desired, runner: &Runner) -> String {
    let mut s = String::new();
    check_as_planned(&mut s, plan);
    install_packages(&mut s, plan);
    make_accounts(&mut s, plan);
    let summary = q(&summary(plan));
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let releases = new_releases(plan, &mut payloads);
    if !plan.changes.is_empty() {
        let staged = stage(&mut s, plan, d, &releases);
        validate(&mut s, plan, &releases);
        pending(&mut s, plan);
        swap(&mut s, plan, &staged, &releases, &summary);
    } else if !plan.steps.is_empty() {
        pending(&mut s, plan);
    }
    if !plan.steps.is_empty() {
        run_handlers(&mut s, plan, d, &summary, &mut payloads);
    }
    let _ = writeln!(s, "finish {}", host_state::KEEP);
    script_with(runner, &s, &payloads)
}

/// The host's newest generation and every changed path are still what the plan saw.
fn check_as_planned(s: &mut String, plan: &HostPlan) {
    let _ = writeln!(
        s,
        "expect_current {}",
        q(plan.generation.as_deref().unwrap_or(""))
    );
    s.push_str("ev_phase check\n");
    for c in &plan.changes {
        s.push_str(&expect(&c.path, &c.before));
    }
}

fn install_packages(s: &mut String, plan: &HostPlan) {
    if plan.install.is_empty() {
        return;
    }
    let pkgs: Vec<String> = plan.install.iter().map(|p| q(p)).collect();
    let update = if plan.update_package_lists.is_some() {
        "update"
    } else {
        "no-update"
    };
    let _ = writeln!(
        s,
        "ev_phase packages\ninstall_packages {update} {}",
        pkgs.join(" ")
    );
}

fn make_accounts(s: &mut String, plan: &HostPlan) {
    for (i, a) in plan.accounts.iter().enumerate() {
        if i == 0 {
            s.push_str("ev_phase accounts\n");
        }
        let _ = writeln!(
            s,
            "account {} {} {}",
            q(&a.name),
            q(&a.home),
            q(&a.account().gecos())
        );
    }
}

/// A new release of the plan and where its data blocks start among the script's payloads.
struct NewRelease<'p> {
    /// Its marker, the path the plan changes.
    path: &'p str,
    tree: &'p Tree,
    change: &'p ReleaseChange,
    /// Its first block's number: the manifest; then the archive, the paths to remove, the sums.
    first: usize,
}

impl NewRelease<'_> {
    /// The file the host reads block `first + n` into.
    fn block(&self, n: usize) -> String {
        format!("\"$RUN.p{}\"", self.first + n)
    }
}

/// The plan's new releases, their data blocks added to `payloads`.
fn new_releases<'p>(plan: &'p HostPlan, payloads: &mut Vec<Vec<u8>>) -> Vec<NewRelease<'p>> {
    let mut releases = Vec::new();
    for c in &plan.changes {
        if let (PathState::Tree(t), Some(r)) = (&c.desired.state, &c.release) {
            releases.push(NewRelease {
                path: &c.path,
                tree: t,
                change: r,
                first: payloads.len(),
            });
            payloads.extend(release_blocks(t, r));
        }
    }
    releases
}

/// A new release's four data blocks: manifest, archive, paths to remove, sums of the files sent.
fn release_blocks(t: &Tree, r: &ReleaseChange) -> [Vec<u8>; 4] {
    let removed: String = r.delta.remove.iter().map(|p| format!("{p}\n")).collect();
    [
        t.manifest().as_bytes().to_vec(),
        // Writing a tar into memory fails only on entries `tree` already refuses; an empty
        // archive would fail the build on the host, before anything goes live.
        t.archive(&r.delta.send).unwrap_or_default(),
        removed.into_bytes(),
        sums_of_sent(t, r).into_bytes(),
    ]
}

/// `sha256sum -c` lines of the files sent: what the host checks once they are unpacked (the files
/// linked from the live release were checked when it was built).
fn sums_of_sent(t: &Tree, r: &ReleaseChange) -> String {
    r.delta
        .send
        .iter()
        .map(|&i| &t.entries[i])
        .filter_map(|e| match &e.kind {
            Kind::File { sha, .. } => Some(format!("{sha}  {}\n", e.path)),
            Kind::Link(_) => None,
        })
        .collect()
}

/// Lays the new configuration out in the stage, beside the live one, and builds the new releases
/// beside the live ones; the staged paths, whose positions number their staged files.
fn stage<'p>(
    s: &mut String,
    plan: &'p HostPlan,
    d: &'p Desired,
    releases: &[NewRelease],
) -> Vec<&'p ManagedPath> {
    s.push_str("ev_phase stage\nstage_begin\n");
    let mut dirs: Vec<&String> = plan.validators.iter().flat_map(|v| &v.stage).collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        let _ = writeln!(s, "stage_copy {}", q(dir));
    }
    s.push_str("stage_relink\n");
    let staged = paths_to_stage(plan, d, &dirs);
    for (i, p) in staged.iter().enumerate() {
        stage_path(s, p, i);
    }
    for r in releases {
        let _ = writeln!(
            s,
            "release_build {} {} {} {} {} {} {}",
            q(&r.tree.base),
            q(&r.tree.id),
            q(r.change.from.as_deref().unwrap_or("")),
            r.block(0),
            r.block(1),
            r.block(2),
            r.block(3)
        );
    }
    staged
}

/// Every changed path, and every path a whole-tree validator reads (so it sees the whole new
/// config) that the stage does not hold yet: an unchanged path inside a directory copied from the
/// live tree is there already, as it is live, which is as desired. Adding one site to a host of
/// fifty then stages that site's files, not every vhost and pool again.
fn paths_to_stage<'p>(
    plan: &'p HostPlan,
    d: &'p Desired,
    copied: &[&String],
) -> Vec<&'p ManagedPath> {
    let whole: Vec<&str> = plan
        .validators
        .iter()
        .filter(|v| !v.per_file)
        .map(|v| v.name.as_str())
        .collect();
    let in_stage = |path: &str| {
        copied.iter().any(|dir| {
            path.strip_prefix(dir.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let changes: std::collections::HashSet<&str> =
        plan.changes.iter().map(|c| c.path.as_str()).collect();
    let changed = |path: &str| changes.contains(path);
    let mut staged: Vec<&ManagedPath> = d
        .paths
        .iter()
        .filter(|p| p.validator.as_deref().is_some_and(|v| whole.contains(&v)))
        .filter(|p| changed(&p.path) || !in_stage(&p.path))
        .collect();
    for c in &plan.changes {
        if !staged.iter().any(|p| p.path == c.path) {
            staged.push(&c.desired);
        }
    }
    staged
}

/// The new releases' files checked, then each validator on the stage: once, or once per changed file
/// it reads.
fn validate(s: &mut String, plan: &HostPlan, releases: &[NewRelease]) {
    s.push_str("ev_phase validate\n");
    for r in releases {
        if let Some(c) = &r.tree.check {
            let _ = writeln!(
                s,
                "release_check {} {} {} {} {} {} {}",
                q(&r.tree.base),
                q(&r.tree.id),
                r.block(3),
                q(&c.files_ending),
                q(&c.files),
                q(&c.tool),
                q(&c.command)
            );
        }
    }
    let root = "\"$R\"";
    for v in &plan.validators {
        if v.per_file {
            for c in plan.changes.iter().filter(|c| {
                c.desired.validator.as_deref() == Some(v.name.as_str())
                    && matches!(c.desired.state, PathState::File { .. })
            }) {
                let cmd = v.command_in(root, Some(&c.path));
                let _ = writeln!(s, "validate {} {}", q(&v.name), q(&cmd));
            }
        } else {
            let cmd = v.command_in(root, None);
            let _ = writeln!(s, "validate {} {}", q(&v.name), q(&cmd));
        }
    }
}

/// Puts every changed path live, in the plan's order, then prunes the releases kept.
fn swap(
    s: &mut String,
    plan: &HostPlan,
    staged: &[&ManagedPath],
    releases: &[NewRelease],
    summary: &str,
) {
    let _ = writeln!(s, "ev_phase swap\nchanging apply {summary}");
    for c in &plan.changes {
        if let Some(r) = releases.iter().find(|r| r.path == c.path) {
            let _ = writeln!(
                s,
                "release_commit {} {} {} {}",
                q(&r.tree.base),
                q(&r.tree.id),
                r.block(0),
                q(r.tree.release_command.as_deref().unwrap_or(""))
            );
            continue;
        }
        let idx = staged.iter().position(|p| p.path == c.path).unwrap_or(0);
        s.push_str(&swap_path(&c.desired, idx));
    }
    for r in releases {
        let _ = writeln!(s, "release_prune {} {}", q(&r.tree.base), r.tree.keep);
    }
}

/// Runs the plan's handlers in order, the guard armed first when one of them needs it.
fn run_handlers(
    s: &mut String,
    plan: &HostPlan,
    d: &Desired,
    summary: &str,
    payloads: &mut Vec<Vec<u8>>,
) {
    let _ = writeln!(s, "ev_phase reload\nchanging apply {summary}");
    // Armed before the first handler: what can lock the operator out goes live only guarded.
    if !d
        .guarded_by(plan.steps.iter().map(|st| &st.handler))
        .is_empty()
    {
        let _ = writeln!(
            s,
            "guard_arm {} \"$RUN.p{}\"",
            host_state::GUARD_SECS,
            payloads.len()
        );
        payloads.push(guard_program().into_bytes());
    }
    for st in &plan.steps {
        if let Target::Service(name) = &st.handler.target {
            let _ = writeln!(
                s,
                "remember_service {}{}",
                q(name),
                pid_args(d.service(name))
            );
        }
    }
    for st in &plan.steps {
        s.push_str(&handler(&st.handler, d));
    }
}

/// The call that runs one handler: a step's command, or a service's action.
fn handler(h: &Handler, d: &Desired) -> String {
    let line = q(&h.line());
    match (&h.target, h.action) {
        (Target::Step(name), _) => {
            let cmd = d.step(name).map(|x| x.command.as_str()).unwrap_or("false");
            format!("handler {line} run {} {}\n", q(name), q(cmd))
        }
        (Target::Service(name), action) => {
            // A service is started, never run (a step's action).
            let verb = match action {
                Action::Run => Action::Start,
                other => other,
            }
            .verb();
            let service = d.service(name);
            let plain = service
                .and_then(|x| x.plain_reload.as_deref())
                .filter(|_| action == Action::Reload);
            match (plain, pid_args(service)) {
                (Some(cmd), pid) => format!("handler {line} {verb} {} {}{pid}\n", q(name), q(cmd)),
                (None, pid) if pid.is_empty() => format!("handler {line} {verb} {}\n", q(name)),
                (None, pid) => format!("handler {line} {verb} {} ''{pid}\n", q(name)),
            }
        }
    }
}

/// ` PIDFILE PROCESS` of a service that has them: how `apply.sh` tells, without systemd, that it
/// stopped or runs (see `Service::pidfile`); empty otherwise.
fn pid_args(service: Option<&Service>) -> String {
    service
        .and_then(|x| x.pidfile.as_ref())
        .map(|(file, process)| format!(" {} {}", q(file), q(process)))
        .unwrap_or_default()
}

/// The guard a guarded generation leaves behind on the host (`apply.sh`'s `guard_arm` starts it
/// detached, with its run's path prefix, the apply's pid, its token and its seconds): the library
/// and one call. It holds no secret: file contents travel only in the apply script.
pub(super) fn guard_program() -> String {
    format!(
        "#!/bin/sh\n{}{LIBRARY}\n{PROGRAM}\nRUN=$1\nWHO=\"guard of $3\"\nguard_watch \"$2\" \"$3\" \"$4\" {}\n",
        protocol::shell_functions(),
        host_state::KEEP
    )
}

/// Handlers to do are recorded before anything goes live: a run cut off after this point has them
/// done by the next one.
fn pending(s: &mut String, plan: &HostPlan) {
    let lines: String = plan
        .steps
        .iter()
        .map(|st| st.handler.line() + "\n")
        .collect();
    let _ = writeln!(s, "printf '%s' {} > \"$P/pending\"", q(&lines));
}

/// One line for the generation record.
pub fn summary(plan: &HostPlan) -> String {
    let mut parts = Vec::new();
    if !plan.install.is_empty() {
        parts.push(format!("{} package(s)", plan.install.len()));
    }
    if !plan.accounts.is_empty() {
        parts.push(format!("{} account(s)", plan.accounts.len()));
    }
    if !plan.changes.is_empty() {
        parts.push(format!("{} path(s)", plan.changes.len()));
    }
    if !plan.steps.is_empty() {
        parts.push(
            plan.steps
                .iter()
                .map(|s| s.handler.line())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    parts.join("; ")
}
