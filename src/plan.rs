//! Desired × Facts → Plan. Pure: the plan is a value that is printed, serialised, and executed as is.

use crate::desired::{Desired, Handler, HealthCheck, ManagedPath, PathState, Validator};
use crate::facts::{Facts, PathFact};
use crate::manifest::sha256_hex;
use crate::secret::Redactor;
use serde::Serialize;

/// Package lists older than this are refreshed before installing.
pub const APT_LISTS_MAX_AGE_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub hosts: Vec<HostPlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.hosts.iter().all(HostPlan::is_empty)
    }

    pub fn change_count(&self) -> usize {
        self.hosts.iter().map(HostPlan::change_count).sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub host: String,
    pub os: String,
    pub systemd: bool,
    /// Why the package lists are refreshed first, when they are.
    pub update_package_lists: Option<String>,
    pub install: Vec<String>,
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
    /// Validators for the staged tree: every validator of the host runs when any path changes.
    pub validators: Vec<Validator>,
    pub checks: Vec<HealthCheck>,
}

impl HostPlan {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty() && self.changes.is_empty() && self.steps.is_empty()
    }

    pub fn change_count(&self) -> usize {
        usize::from(!self.install.is_empty()) + self.changes.len() + self.steps.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// How the path looked when the plan was made; apply refuses to go on if it looks different then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Before {
    Absent,
    File { sha256: String },
    Dir,
    Link { target: String },
    Other,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: String,
    pub action: Action,
    pub reason: String,
    /// Unified diff with secrets masked; `None` for directories, links, metadata-only changes.
    pub diff: Option<String>,
    pub before: Before,
    #[serde(skip)]
    pub desired: ManagedPath,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    #[serde(flatten)]
    pub handler: Handler,
    pub reason: String,
}

/// Builds one host's plan. `redactor` masks secrets in every diff.
pub fn plan_host(d: &Desired, f: &Facts, redactor: &Redactor) -> HostPlan {
    let mut changes = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let install: Vec<String> = d
        .packages
        .iter()
        .filter(|p| f.packages.get(*p).is_none_or(|v| v.is_none()))
        .cloned()
        .collect();
    for p in &d.paths {
        let fact = f.paths.get(&p.path).cloned().unwrap_or(PathFact::Absent);
        let change = match (&p.state, &fact) {
            // A package installed in this run may create it (Nginx's default site): remove it then.
            (PathState::Absent, PathFact::Absent) if !install.is_empty() => Some(Change {
                path: p.path.clone(),
                action: Action::Delete,
                reason: "must not exist; the packages being installed may create it".into(),
                diff: None,
                before: Before::Absent,
                desired: p.clone(),
            }),
            _ => path_change(p, &fact, redactor),
        };
        if let Some(c) = change {
            for h in &p.notify {
                add_step(&mut steps, h.clone(), format!("{} changed", p.path));
            }
            changes.push(c);
        }
    }
    let update_package_lists = if install.is_empty() {
        None
    } else if !f.no_candidate.is_empty() {
        Some(format!(
            "apt knows no candidate for {}",
            f.no_candidate
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        match f.apt_lists_age {
            None => Some("the package lists were never downloaded".to_string()),
            Some(age) if age > APT_LISTS_MAX_AGE_SECS => {
                Some(format!("the package lists are {} hours old", age / 3600))
            }
            Some(_) => None,
        }
    };
    for s in &d.services {
        if !f.services.get(&s.name).copied().unwrap_or(false) {
            add_step(
                &mut steps,
                Handler::Start(s.name.clone()),
                format!("{} is not running", s.name),
            );
        }
    }
    for h in &f.pending {
        add_step(
            &mut steps,
            h.clone(),
            "left pending by an interrupted apply".into(),
        );
    }
    if let Some(sql) = d
        .paths
        .iter()
        .flat_map(|p| &p.notify)
        .find(|h| matches!(h, Handler::RunSql(_)))
    {
        if let Some(reason) = db_reason(f) {
            add_step(&mut steps, sql.clone(), reason);
        }
    }
    steps.sort_by_key(|s| rank(&s.handler));
    let validators = if changes.is_empty() {
        Vec::new()
    } else {
        d.validators.clone()
    };
    HostPlan {
        host: d.host.clone(),
        os: format!("{} {}", f.os_id, f.os_version),
        systemd: f.systemd,
        update_package_lists,
        install,
        changes,
        steps,
        validators,
        checks: d.checks.clone(),
    }
}

/// Why the database bootstrap must run even though its SQL file is unchanged.
fn db_reason(f: &Facts) -> Option<String> {
    let db = f.db.as_ref()?;
    if !db.reachable {
        return Some("the database server is not answering yet".into());
    }
    if db.databases.is_empty() {
        return Some("the database does not exist".into());
    }
    if let Some((user, host)) = db.missing_accounts.first() {
        return Some(format!(
            "the database account '{user}'@'{host}' does not exist"
        ));
    }
    if !db.demo_row {
        return Some("the demo table has no row".into());
    }
    None
}

/// The service a handler acts on, and how much it does: a start (of a stopped service) covers a
/// restart, which covers a reload.
fn service_action(h: &Handler) -> Option<(&str, u8)> {
    match h {
        Handler::Reload(s) => Some((s, 1)),
        Handler::Restart(s) => Some((s, 2)),
        Handler::Start(s) => Some((s, 3)),
        Handler::RunSql(_) => None,
    }
}

fn add_step(steps: &mut Vec<Step>, h: Handler, reason: String) {
    if let Some((service, strength)) = service_action(&h) {
        let same = steps
            .iter()
            .position(|x| service_action(&x.handler).is_some_and(|(s, _)| s == service));
        if let Some(pos) = same {
            let existing = &mut steps[pos];
            push_reason(&mut existing.reason, &reason);
            if service_action(&existing.handler).is_some_and(|(_, st)| st < strength) {
                existing.handler = h;
            }
            return;
        }
    }
    match steps.iter_mut().find(|x| x.handler == h) {
        Some(existing) => push_reason(&mut existing.reason, &reason),
        None => steps.push(Step { handler: h, reason }),
    }
}

fn push_reason(into: &mut String, reason: &str) {
    if !into.split("; ").any(|r| r == reason) {
        into.push_str("; ");
        into.push_str(reason);
    }
}

/// Database first (the app needs it), then PHP, the application server, the web server in front,
/// DNS, and the load balancer last, so each layer comes up after what it depends on.
fn rank(h: &Handler) -> u8 {
    let service = match h {
        Handler::RunSql(_) => return 1,
        Handler::Reload(s) | Handler::Restart(s) | Handler::Start(s) => s.as_str(),
    };
    match service {
        "mariadb" => 0,
        s if s.starts_with("php") => 2,
        "apache2" => 3,
        "nginx" => 4,
        "named" => 5,
        "haproxy" => 6,
        _ => 7,
    }
}

fn meta_diff(mode: u32, owner: &str, group: &str, (m, o, g): (u32, &str, &str)) -> Option<String> {
    let mut parts = Vec::new();
    if m != mode {
        parts.push(format!("mode {m:04o} → {mode:04o}"));
    }
    if o != owner || g != group {
        parts.push(format!("owner {o}:{g} → {owner}:{group}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn before_of(fact: &PathFact, desired_content: Option<&[u8]>) -> Before {
    match fact {
        PathFact::Absent => Before::Absent,
        PathFact::File {
            content: Some(c), ..
        } => Before::File {
            sha256: sha256_hex(c),
        },
        // The probe leaves out content that matches the desired hash.
        PathFact::File { content: None, .. } => Before::File {
            sha256: desired_content.map(sha256_hex).unwrap_or_default(),
        },
        PathFact::Dir { .. } => Before::Dir,
        PathFact::Link { target } => Before::Link {
            target: target.clone(),
        },
        PathFact::Other(_) => Before::Other,
    }
}

fn path_change(p: &ManagedPath, fact: &PathFact, redactor: &Redactor) -> Option<Change> {
    let new_content = match &p.state {
        PathState::File { content, .. } => Some(content.as_slice()),
        _ => None,
    };
    let before = before_of(fact, new_content);
    let change = |action, reason: String, diff| {
        Some(Change {
            path: p.path.clone(),
            action,
            reason,
            diff,
            before: before.clone(),
            desired: p.clone(),
        })
    };
    match (&p.state, fact) {
        (PathState::Absent, PathFact::Absent) => None,
        (PathState::Absent, _) => change(Action::Delete, "must not exist".into(), None),
        (
            PathState::File {
                content, sensitive, ..
            },
            PathFact::Absent,
        ) => change(
            Action::Create,
            "missing".into(),
            Some(diff(&p.path, b"", content, *sensitive, redactor)),
        ),
        (
            PathState::File {
                content,
                mode,
                owner,
                group,
                sensitive,
            },
            PathFact::File {
                mode: m,
                owner: o,
                group: g,
                content: old,
            },
        ) => {
            let meta = meta_diff(*mode, owner, group, (*m, o, g));
            // Content can come back although it matches (files fetched whatever their hash).
            let old = old.as_ref().filter(|c| c.as_slice() != content.as_slice());
            match (old, meta) {
                (None, None) => None,
                (None, Some(meta)) => change(Action::Update, meta, None),
                (Some(old), meta) => {
                    let reason = match meta {
                        Some(m) => format!("content differs; {m}"),
                        None => "content differs".into(),
                    };
                    change(
                        Action::Update,
                        reason,
                        Some(diff(&p.path, old, content, *sensitive, redactor)),
                    )
                }
            }
        }
        (
            PathState::File {
                content, sensitive, ..
            },
            other,
        ) => change(
            Action::Update,
            format!("is {}, must be a file", describe(other)),
            Some(diff(&p.path, b"", content, *sensitive, redactor)),
        ),
        (PathState::Dir { .. }, PathFact::Absent) => change(Action::Create, "missing".into(), None),
        (
            PathState::Dir { mode, owner, group },
            PathFact::Dir {
                mode: m,
                owner: o,
                group: g,
            },
        ) => meta_diff(*mode, owner, group, (*m, o, g))
            .and_then(|meta| change(Action::Update, meta, None)),
        (PathState::Dir { .. }, other) => change(
            Action::Update,
            format!("is {}, must be a directory", describe(other)),
            None,
        ),
        (PathState::Link { .. }, PathFact::Absent) => {
            change(Action::Create, "missing".into(), None)
        }
        (PathState::Link { target }, PathFact::Link { target: t }) if t == target => None,
        (PathState::Link { target }, PathFact::Link { target: t }) => change(
            Action::Update,
            format!("points to {t}, must point to {target}"),
            None,
        ),
        (PathState::Link { .. }, other) => change(
            Action::Update,
            format!("is {}, must be a link", describe(other)),
            None,
        ),
    }
}

fn describe(f: &PathFact) -> String {
    match f {
        PathFact::Absent => "missing".into(),
        PathFact::File { .. } => "a file".into(),
        PathFact::Dir { .. } => "a directory".into(),
        PathFact::Link { target } => format!("a link to {target}"),
        PathFact::Other(k) => format!("a special file ({k})"),
    }
}

/// A unified diff, secrets masked. In a sensitive file an old line that is not in the new content
/// is hidden whole: it may hold an earlier secret the redactor does not know.
pub fn diff(path: &str, old: &[u8], new: &[u8], sensitive: bool, redactor: &Redactor) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    if old.contains('\0') || new.contains('\0') {
        return format!("binary file {path} differs\n");
    }
    let old_text: String = if sensitive {
        old.lines()
            .map(|l| {
                if new.lines().any(|n| n == l) {
                    redactor.redact(l)
                } else {
                    "[line hidden: sensitive file]".to_string()
                }
            })
            .map(|l| l + "\n")
            .collect()
    } else {
        redactor.redact(&old)
    };
    let new_text = redactor.redact(&new);
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (on host)"), &format!("{path} (provision)"))
        .to_string()
}

#[cfg(test)]
mod tests;
