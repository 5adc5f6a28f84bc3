//! One managed path in an apply's program: the check that it is still as planned, laying it into
//! the stage, and putting it live.

use super::DATA_END;
use crate::desired::{ManagedPath, PathState};
use crate::plan::Shape;
use crate::quote::shell_word as q;
use base64::Engine;
use std::fmt::Write;

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
pub(super) fn expect(path: &str, before: &Shape) -> String {
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
pub(super) fn stage_path(out: &mut String, p: &ManagedPath, idx: usize) {
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
pub(super) fn swap_path(p: &ManagedPath, idx: usize) -> String {
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
