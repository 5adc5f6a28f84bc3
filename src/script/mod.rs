//! The scripts apply sends to a host: the embedded library `apply.sh` (readable shell functions),
//! the event functions of `protocol`, and a generated program of function calls built from a plan.
//! Pure: the same plan gives the same script. Every value that reaches the shell is quoted with
//! `shell_word`; file contents travel as base64 in quoted here-documents inside the script, which is
//! deleted by the script as it starts (it holds secrets).

mod apply;
mod paths;
pub mod protocol;
pub use apply::{apply_script, summary};

use crate::host_state;
use crate::quote::shell_word as q;
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
pub(crate) mod tests;
