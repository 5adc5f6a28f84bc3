//! The scripts apply sends to a host: the embedded library `apply.sh` (readable shell functions),
//! the event functions of `protocol`, and a generated program of function calls built from a plan.
//! Pure: the same plan gives the same script. Every value that reaches the shell is quoted with
//! `shell_word`; file contents travel as base64 in quoted here-documents inside the script, which is
//! deleted by the script as it starts (it holds secrets).

pub mod protocol;

use crate::desired::{Action, Desired, ManagedPath, PathState, Target};
use crate::host_state;
use crate::plan::{HostPlan, ReleaseChange, Shape};
use crate::quote::shell_word as q;
use crate::tree::{Kind, Tree};
use base64::Engine;
use std::fmt::Write;

pub const LIBRARY: &str = include_str!("apply.sh");

/// Marks a base64 block in a script, so `-v` output can leave the contents out.
const DATA_END: &str = "PROVISION_DATA";
/// Where the generated program starts (`-v` shows only what follows).
const PROGRAM: &str = "# --- program";

/// The last line of every script: its own length in bytes, sealing it. A connection cut while the
/// script is sent leaves a file whose last line is not a seal of its length.
const SEAL: &str = "# --- end of the script,";

/// `text` with its seal appended (fixed-width, so the length includes the seal's own).
fn seal(mut text: String) -> String {
    let tail = |n: usize| format!("{SEAL} {n:012} bytes\n");
    let n = text.len() + tail(0).len();
    text.push_str(&tail(n));
    text
}

/// The command that runs a script (its stdin) on the host, detached from the connection, and
/// follows its output until it ends. The script's first argument is its run's path prefix. A script
/// that did not arrive whole (its last line is not the seal of its length) is deleted unrun.
pub fn runner() -> String {
    let runs = host_state::RUNS;
    let cut = q(&protocol::Event::Fail(
        "the script arrived incomplete (the connection was cut while it was sent); nothing was run on the host".into(),
    )
    .line());
    format!(
        "umask 077 && mkdir -p {runs} && f={runs}/$(date +%s).$$ && cat > \"$f.sh\" && : > \"$f.log\" && \
         {{ n=$(wc -c < \"$f.sh\") && [ \"$(tail -n 1 \"$f.sh\")\" = \"$(printf '{SEAL} %012d bytes' \"$n\")\" ] \
         || {{ rm -f \"$f.sh\" \"$f.log\"; echo {cut}; exit 1; }}; }} && \
         (setsid sh \"$f.sh\" \"$f\" < /dev/null >> \"$f.log\" 2>&1 & echo $! > \"$f.pid\") && read -r pid < \"$f.pid\" && \
         exec tail -s 0.05 -n +1 -f --pid=\"$pid\" \"$f.log\""
    )
}

/// Who runs the apply, for the lock and the generation record.
pub struct Runner<'a> {
    pub who: &'a str,
    /// Seconds to wait for another apply's lock (0: refuse at once).
    pub lock_wait: u64,
}

fn script(runner: &Runner, program: &str) -> String {
    script_with(runner, program, &[])
}

/// Where the data sent after a script starts.
const PAYLOAD: &str = "# --- payload";

/// A script with data blocks after its end (a release's archive): each is base64, read by byte
/// offset into `$RUN.pN` before the script deletes itself, so the shell never parses it.
fn script_with(runner: &Runner, program: &str, payloads: &[Vec<u8>]) -> String {
    let blocks: Vec<String> = payloads
        .iter()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        .collect();
    let text = |offsets: &[usize]| {
        let mut s = String::from("#!/bin/sh\n");
        s.push_str(&protocol::shell_functions());
        s.push_str(LIBRARY);
        let _ = write!(s, "\n{PROGRAM}\nRUN=$1\nWHO={}\n", q(runner.who));
        // Fixed-width numbers: the offsets do not change the length of the text they are in.
        for (i, (off, b)) in offsets.iter().zip(&blocks).enumerate() {
            let _ = writeln!(s, "payload {i} {off:012} {:012}", b.len());
        }
        let _ = write!(
            s,
            "rm -f \"$RUN.sh\"\nev_phase lock\ntake_lock {} \"$WHO\"\n",
            runner.lock_wait
        );
        s.push_str(program);
        if !blocks.is_empty() {
            let _ = write!(s, "exit 0\n{PAYLOAD}\n");
        }
        s
    };
    let head = text(&vec![0; blocks.len()]).len();
    let mut offsets = Vec::new();
    let mut at = head + 1;
    for b in &blocks {
        offsets.push(at);
        at += b.len();
    }
    let mut s = text(&offsets);
    for b in &blocks {
        s.push_str(b);
    }
    if !blocks.is_empty() {
        s.push('\n');
    }
    seal(s)
}

fn mode_str(s: &Shape) -> (String, String) {
    let (mode, owner) = match s {
        Shape::File { mode, owner, .. } | Shape::Dir { mode, owner } => (mode, owner),
        _ => (&None, &None),
    };
    // stat prints modes without leading zeros.
    let mode = mode
        .as_deref()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .map(|m| format!("{m:o}"))
        .unwrap_or_default();
    (mode, owner.clone().unwrap_or_default())
}

/// The check that a path still looks as planned.
fn expect(path: &str, before: &Shape) -> String {
    let p = q(path);
    match before {
        Shape::Absent => format!("expect_absent {p}\n"),
        Shape::File { digest, .. } => {
            let (mode, owner) = mode_str(before);
            format!("expect_file {p} {} {} {}\n", q(digest), q(&mode), q(&owner))
        }
        Shape::Dir { .. } => {
            let (mode, owner) = mode_str(before);
            format!("expect_dir {p} {} {}\n", q(&mode), q(&owner))
        }
        Shape::Link { target } => format!("expect_link {p} {}\n", q(target)),
        // A release being absent or present is all the plan relies on: its marker.
        Shape::Release { .. } | Shape::Made { .. } => format!("[ -f {p} ] || stale {p}\n"),
        Shape::Other => format!("expect_other {p}\n"),
    }
}

fn data_block(out: &mut String, content: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(content);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str(DATA_END);
    out.push('\n');
}

/// Lays one desired path into the stage.
fn stage_path(out: &mut String, p: &ManagedPath, idx: usize) {
    let path = q(&p.path);
    match &p.state {
        PathState::File { content, .. } => {
            let _ = writeln!(out, "stage_file {idx} {path} <<'{DATA_END}'");
            data_block(out, content);
        }
        PathState::Dir { .. } => {
            let _ = writeln!(out, "stage_dir {path}");
        }
        PathState::Link { target } => {
            let _ = writeln!(out, "stage_link {path} {}", q(target));
        }
        PathState::Absent => {
            let _ = writeln!(out, "stage_absent {path}");
        }
        // Built beside the live release by `release_build` (see `apply_script`), not staged.
        PathState::Tree(_) => {}
        PathState::Made { command, .. } => {
            let _ = writeln!(out, "stage_made {idx} {path} {}", q(command));
        }
    }
}

/// Puts one staged path live.
fn swap_path(p: &ManagedPath, idx: usize) -> String {
    let path = q(&p.path);
    match &p.state {
        PathState::File {
            mode, owner, group, ..
        }
        | PathState::Made {
            mode, owner, group, ..
        } => format!(
            "swap_file {idx} {path} {mode:04o} {} {}\n",
            q(owner),
            q(group)
        ),
        PathState::Dir { mode, owner, group } => {
            format!("swap_dir {path} {mode:04o} {} {}\n", q(owner), q(group))
        }
        PathState::Link { target } => format!("swap_link {path} {}\n", q(target)),
        PathState::Absent => format!("swap_absent {path}\n"),
        // Put live by `release_commit` (see `apply_script`).
        PathState::Tree(_) => String::new(),
    }
}

/// What an apply script does for a plan: lock, check the host is as planned, packages, stage,
/// validate, swap, handlers, record.
pub fn apply_script(plan: &HostPlan, d: &Desired, runner: &Runner) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "expect_current {}",
        q(plan.generation.as_deref().unwrap_or(""))
    );
    s.push_str("ev_phase check\n");
    for c in &plan.changes {
        s.push_str(&expect(&c.path, &c.before));
    }
    if !plan.install.is_empty() {
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
    let summary = q(&summary(plan));
    // New releases: four data blocks each (manifest, archive, paths to remove, sums of the files sent).
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut releases: Vec<(&str, &Tree, &ReleaseChange, usize)> = Vec::new();
    for c in &plan.changes {
        if let (PathState::Tree(t), Some(r)) = (&c.desired.state, &c.release) {
            let k = payloads.len();
            // `sha256sum -c` lines of the files sent: what the host checks once they are unpacked
            // (the files linked from the live release were checked when it was built).
            let sums: String = r
                .delta
                .send
                .iter()
                .map(|&i| &t.entries[i])
                .filter_map(|e| match &e.kind {
                    Kind::File { sha, .. } => Some(format!("{sha}  {}\n", e.path)),
                    Kind::Link(_) => None,
                })
                .collect();
            payloads.push(t.manifest().as_bytes().to_vec());
            // Writing a tar into memory fails only on entries `tree` already refuses; an empty
            // archive would fail the build on the host, before anything goes live.
            payloads.push(t.archive(&r.delta.send).unwrap_or_default());
            payloads.push(
                r.delta
                    .remove
                    .iter()
                    .map(|p| format!("{p}\n"))
                    .collect::<String>()
                    .into_bytes(),
            );
            payloads.push(sums.into_bytes());
            releases.push((c.path.as_str(), t, r, k));
        }
    }
    if !plan.changes.is_empty() {
        s.push_str("ev_phase stage\nstage_begin\n");
        let mut dirs: Vec<&String> = plan.validators.iter().flat_map(|v| &v.stage).collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            let _ = writeln!(s, "stage_copy {}", q(dir));
        }
        s.push_str("stage_relink\n");
        // Every path a whole-tree validator reads (so it sees the whole new config) and every
        // changed path; per-file validators read only the changed files.
        let whole: Vec<&str> = plan
            .validators
            .iter()
            .filter(|v| !v.per_file)
            .map(|v| v.name.as_str())
            .collect();
        let mut staged: Vec<&ManagedPath> = d
            .paths
            .iter()
            .filter(|p| p.validator.as_deref().is_some_and(|v| whole.contains(&v)))
            .collect();
        for c in &plan.changes {
            if !staged.iter().any(|p| p.path == c.path) {
                staged.push(&c.desired);
            }
        }
        for (i, p) in staged.iter().enumerate() {
            stage_path(&mut s, p, i);
        }
        for (_, t, r, k) in &releases {
            let _ = writeln!(
                s,
                "release_build {} {} {} \"$RUN.p{k}\" \"$RUN.p{}\" \"$RUN.p{}\" \"$RUN.p{}\"",
                q(&t.base),
                q(&t.id),
                q(r.from.as_deref().unwrap_or("")),
                k + 1,
                k + 2,
                k + 3
            );
        }
        s.push_str("ev_phase validate\n");
        for (_, t, _, k) in &releases {
            if let Some(php) = &t.php {
                let _ = writeln!(
                    s,
                    "release_lint {} {} {} \"$RUN.p{}\"",
                    q(&t.base),
                    q(&t.id),
                    q(php),
                    k + 3
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
        pending(&mut s, plan);
        let _ = writeln!(s, "ev_phase swap\nchanging apply {summary}");
        for c in &plan.changes {
            if let Some((_, t, _, k)) = releases.iter().find(|(p, ..)| *p == c.path) {
                let _ = writeln!(
                    s,
                    "release_commit {} {} \"$RUN.p{k}\" {}",
                    q(&t.base),
                    q(&t.id),
                    q(t.release_command.as_deref().unwrap_or(""))
                );
                continue;
            }
            let idx = staged.iter().position(|p| p.path == c.path).unwrap_or(0);
            s.push_str(&swap_path(&c.desired, idx));
        }
        for (_, t, _, _) in &releases {
            let _ = writeln!(s, "release_prune {} {}", q(&t.base), t.keep);
        }
    } else if !plan.steps.is_empty() {
        pending(&mut s, plan);
    }
    if !plan.steps.is_empty() {
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
                let _ = writeln!(s, "remember_service {}", q(name));
            }
        }
        for st in &plan.steps {
            let h = &st.handler;
            let line = q(&h.line());
            match (&h.target, h.action) {
                (Target::Step(name), _) => {
                    let cmd = d.step(name).map(|x| x.command.as_str()).unwrap_or("false");
                    let _ = writeln!(s, "handler {line} run {} {}", q(name), q(cmd));
                }
                (Target::Service(name), action) => {
                    // A service is started, never run (a step's action).
                    let verb = match action {
                        Action::Run => Action::Start,
                        other => other,
                    }
                    .verb();
                    let plain = d
                        .services
                        .iter()
                        .find(|x| &x.name == name)
                        .and_then(|x| x.plain_reload.as_deref())
                        .filter(|_| action == Action::Reload);
                    match plain {
                        Some(cmd) => {
                            let _ = writeln!(s, "handler {line} {verb} {} {}", q(name), q(cmd));
                        }
                        None => {
                            let _ = writeln!(s, "handler {line} {verb} {}", q(name));
                        }
                    }
                }
            }
        }
    }
    let _ = writeln!(s, "finish {}", host_state::KEEP);
    script_with(runner, &s, &payloads)
}

/// The guard a guarded generation leaves behind on the host (`apply.sh`'s `guard_arm` starts it
/// detached, with its run's path prefix, the apply's pid, its token and its seconds): the library
/// and one call. It holds no secret: file contents travel only in the apply script.
fn guard_program() -> String {
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

/// Undoes `generations` (newest first) on a host whose newest generation is still `current`.
pub fn rollback_script(
    current: &str,
    generations: &[String],
    why: &str,
    runner: &Runner,
) -> String {
    let gens: Vec<String> = generations.iter().map(|g| q(g)).collect();
    let program = format!(
        "expect_current {}\nrollback {} {}\nfinish {}\n",
        q(current),
        q(why),
        gens.join(" "),
        host_state::KEEP
    );
    script(runner, &program)
}

/// Only takes the lock (waiting for it as `runner` says) and lets it go: what an apply runs before
/// planning again when its plan was made while another run held the host.
pub fn wait_script(runner: &Runner) -> String {
    script(runner, "ev_done\n")
}

/// Commands run one after another under the host lock, each one's whole output passed on (as
/// `out` events: `show` keeps only the last 40 lines), the first failure ending the run with its
/// `why`. For steps that are not file changes (`provision promote`).
pub fn commands_script(commands: &[(String, String)], runner: &Runner) -> String {
    let mut program = String::new();
    for (command, why) in commands {
        let _ = writeln!(
            program,
            "out=$(sh -c {} 2>&1 9>&-) || {{ show \"$out\"; fail {}; }}\nprintf '%s\\n' \"$out\" | while IFS= read -r l; do ev_out \"$l\"; done",
            q(command),
            q(why)
        );
    }
    program.push_str("ev_done\n");
    script(runner, &program)
}

/// Records what became of a generation once its health checks ran.
pub fn mark_script(
    generation: &str,
    status: &str,
    attention: Option<&str>,
    runner: &Runner,
) -> String {
    let program = format!(
        "mark {} {} {}\n",
        q(generation),
        q(status),
        q(attention.unwrap_or(""))
    );
    script(runner, &program)
}

/// The script as `-v` shows it: the generated program only, base64 blocks left out.
pub fn for_display(script: &str) -> String {
    let program = script.split_once(PROGRAM).map(|(_, p)| p).unwrap_or(script);
    let mut out = String::from("[library: src/script/apply.sh]\n");
    let mut skipping = false;
    for line in program.lines() {
        if line == PAYLOAD {
            out.push_str("  [release data left out]\n");
            break;
        }
        if skipping {
            if line == DATA_END {
                skipping = false;
                out.push_str("  [file content left out]\n");
            }
            continue;
        }
        if line.starts_with("stage_file ") {
            skipping = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
