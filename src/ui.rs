//! The only module that prints. Progress bars per host on a terminal (indicatif), plain lines
//! otherwise, nothing but the JSON document with --json; coloured diffs on a terminal.

use crate::apply::HostOutcome;
use crate::host_state::Generation;
use crate::plan::{HostPlan, Plan};
use std::io::IsTerminal;

mod progress;
pub use progress::Progress;

pub fn line(s: &str) {
    println!("{s}");
}

pub fn error(s: &str) {
    eprintln!("{s}");
}

fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The human form of a plan: per host every change with its reason and diff, then a summary.
pub fn print_plan(plan: &Plan, failed_hosts: usize) {
    let on = colour();
    for h in &plan.hosts {
        print_host_plan(h, on);
    }
    let hosts_changing = plan.hosts.iter().filter(|h| !h.is_empty()).count();
    if failed_hosts > 0 {
        line(&paint(
            &format!(
                "Plan incomplete: {failed_hosts} host(s) could not be planned (errors below)."
            ),
            "31",
            on,
        ));
    } else if plan.is_empty() {
        line(&paint(
            "No changes: every host matches the inventory.",
            "32",
            on,
        ));
    } else {
        line(&paint(
            &format!(
                "Plan: {} change(s) on {} of {} host(s).",
                plan.change_count(),
                hosts_changing,
                plan.hosts.len()
            ),
            "1",
            on,
        ));
    }
}

fn print_host_plan(h: &HostPlan, on: bool) {
    for l in host_plan_lines(h, on) {
        line(&l);
    }
}

/// The lines of one host's plan, as `plan` prints them.
fn host_plan_lines(h: &HostPlan, on: bool) -> Vec<String> {
    let init = if h.systemd { "systemd" } else { "no systemd" };
    let host = paint(&h.host, "1", on);
    if h.is_empty() {
        let mut lines = vec![format!("{host} ({}, {init}): no changes", h.os)];
        lines.extend(notice_lines(h, on));
        return lines;
    }
    let mut lines = vec![format!(
        "{host} ({}, {init}): {} change(s)",
        h.os,
        h.change_count()
    )];
    if let Some(why) = &h.attention {
        lines.push(paint(
            &format!("  ! needs attention: {why}; apply runs the health checks again"),
            "31",
            on,
        ));
    }
    lines.extend(notice_lines(h, on));
    for t in &h.leaving {
        lines.push(paint(
            &format!(
                "  - take {t} out of service first (drained): the inventory no longer names it"
            ),
            "31",
            on,
        ));
    }
    lines.extend(package_and_account_lines(h, on));
    for c in &h.changes {
        lines.extend(change_lines(c, on));
    }
    for s in &h.steps {
        lines.push(paint(
            &format!("  * {}: {}", s.handler.line(), s.reason),
            "36",
            on,
        ));
    }
    for i in &h.irreversible {
        lines.push(paint(
            &format!("  ! not undone by a rollback: {i}"),
            "33",
            on,
        ));
    }
    lines
}

fn notice_lines(h: &HostPlan, on: bool) -> Vec<String> {
    h.notices
        .iter()
        .map(|n| paint(&format!("  ! needs attention: {n}"), "31", on))
        .collect()
}

fn package_and_account_lines(h: &HostPlan, on: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(why) = &h.update_package_lists {
        lines.push(format!("  ~ update package lists: {why}"));
    }
    if !h.install.is_empty() {
        lines.push(paint(
            &format!("  + install packages: {}", h.install.join(" ")),
            "32",
            on,
        ));
    }
    for a in &h.accounts {
        lines.push(paint(&format!("  + {}: {}", a.line(), a.reason), "32", on));
    }
    lines
}

/// One changed path, and its diff coloured as `diff` colours one.
fn change_lines(c: &crate::plan::Change, on: bool) -> Vec<String> {
    let (sign, code) = match c.action {
        crate::plan::ChangeKind::Create => ("+", "32"),
        crate::plan::ChangeKind::Update => ("~", "33"),
        crate::plan::ChangeKind::Delete => ("-", "31"),
    };
    let verb = format!("{:?}", c.action).to_lowercase();
    let mut lines = vec![paint(
        &format!("  {sign} {verb} {}: {}", c.path, c.reason),
        code,
        on,
    )];
    for l in c.diff.iter().flat_map(|d| d.lines()) {
        let code = if l.starts_with("+++") || l.starts_with("---") {
            "1"
        } else if l.starts_with('+') {
            "32"
        } else if l.starts_with('-') {
            "31"
        } else if l.starts_with("@@") {
            "36"
        } else {
            "0"
        };
        lines.push(format!("      {}", paint(l, code, on && code != "0")));
    }
    lines
}

/// What an apply did, host by host, and a summary.
pub fn print_apply(outcomes: &[HostOutcome]) {
    for o in outcomes {
        match (&o.error, &o.plan) {
            (Some(_), _) => {}
            (None, Some(p)) if p.is_empty() => {
                line(&format!("{}: no changes ({:.2} s)", o.host, o.seconds))
            }
            (None, Some(p)) => {
                let generation = o
                    .generation
                    .as_ref()
                    .map(|g| format!(", generation {g}"))
                    .unwrap_or_default();
                line(&format!(
                    "{}: applied {} change(s) in {:.1} s{generation}",
                    o.host,
                    p.change_count(),
                    o.seconds
                ));
                for c in &o.checks {
                    line(&format!("{}:   check ok: {c}", o.host));
                }
            }
            (None, None) => {}
        }
    }
    if outcomes.len() > 1 {
        print_summary_table(outcomes);
    }
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    let changed: usize = outcomes
        .iter()
        .filter(|o| o.error.is_none())
        .filter_map(|o| o.plan.as_ref())
        .map(|p| p.change_count())
        .sum();
    if failed == 0 {
        line(&if changed == 0 {
            "Apply: no changes.".to_string()
        } else {
            format!("Apply: {changed} change(s) applied.")
        });
    } else {
        line(&format!(
            "Apply: {failed} of {} host(s) failed (errors below).",
            outcomes.len()
        ));
    }
}

/// One row per host: what became of it.
fn print_summary_table(outcomes: &[HostOutcome]) {
    let width = outcomes
        .iter()
        .map(|o| o.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    line(&format!(
        "{:<width$}  {:<9}  {:>7}  {:>8}",
        "host", "result", "changes", "seconds"
    ));
    for o in outcomes {
        let (result, changes) = match (&o.error, &o.plan) {
            (Some(e), _) => (format!("failed ({})", e.phase()), "-".to_string()),
            (None, Some(p)) if p.is_empty() => ("unchanged".to_string(), "0".to_string()),
            (None, Some(p)) => ("changed".to_string(), p.change_count().to_string()),
            (None, None) => ("-".to_string(), "-".to_string()),
        };
        line(&format!(
            "{:<width$}  {:<9}  {:>7}  {:>8.2}",
            o.host, result, changes, o.seconds
        ));
    }
}

/// A host's generations, oldest first.
pub fn print_history(host: &str, gens: &[Generation]) {
    if gens.is_empty() {
        line(&format!(
            "{host}: no generations: provision has not changed this host"
        ));
        return;
    }
    line(&format!(
        "{host}: {} generation(s), newest last",
        gens.len()
    ));
    for g in gens {
        line(&format!(
            "  {}  {}  {:<8} {:<15} {}{}",
            g.id,
            utc(g.time),
            g.kind,
            g.status,
            g.summary,
            if g.restorable {
                ""
            } else {
                " (backups pruned)"
            }
        ));
    }
}

pub fn print_rollback(outcomes: &[HostOutcome]) {
    for o in outcomes {
        for n in &o.notes {
            line(&format!("{}: note: {n}", o.host));
        }
        if o.error.is_none() {
            line(&format!(
                "{}: rolled back in {:.1} s, generation {}",
                o.host,
                o.seconds,
                o.generation.as_deref().unwrap_or("?")
            ));
            for c in &o.checks {
                line(&format!("{}:   check ok: {c}", o.host));
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
fn utc(secs: u64) -> String {
    let ymd = crate::component::zone::ymd_from_unix(secs as i64);
    let t = secs % 86_400;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        ymd / 10_000,
        ymd / 100 % 100,
        ymd % 100,
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AccountChange, ChangeKind};

    /// A plan whose only change is an account to make shows it, as a change, and what a rollback
    /// leaves.
    #[test]
    fn an_account_to_make_is_shown_in_the_text_plan() {
        let h = HostPlan {
            host: "web-01".into(),
            os: "debian 12".into(),
            systemd: true,
            generation: None,
            attention: None,
            update_package_lists: None,
            install: vec![],
            accounts: vec![AccountChange {
                name: "shop".into(),
                action: ChangeKind::Create,
                reason: "the host has no user shop".into(),
                home: "/var/www/shop".into(),
                comment: "site shop.example.com".into(),
            }],
            changes: vec![],
            steps: vec![],
            validators: vec![],
            checks: vec![],
            irreversible: vec!["create user shop …: the account stays".into()],
            leaving: vec![],
            notices: Vec::new(),
        };
        assert_eq!(
            host_plan_lines(&h, false),
            [
                "web-01 (debian 12, systemd): 1 change(s)",
                "  + create user shop (group shop) for site shop.example.com: the host has no user shop",
                "  ! not undone by a rollback: create user shop …: the account stays",
            ]
        );
    }
}
