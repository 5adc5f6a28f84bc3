//! Desired × Facts → Plan. Pure: the plan is a value that is printed, serialised, saved, and
//! executed as is. It names no service: handlers are ordered by the components' declared relations
//! (`Desired::rank`), and what facts ask for comes from the components (`Need`).

pub mod accounts;
mod diff;
mod paths;
pub mod saved;

pub use accounts::AccountChange;
pub use diff::diff;
use paths::path_change;

use crate::component::Need;
use crate::desired::{
    Action, Desired, Handler, HealthCheck, ManagedPath, PathState, Target, Validator,
};
use crate::facts::{Facts, PathFact};
use crate::host_state::keyed_digest;
use crate::render::manifest::sha256_hex;
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
    /// The host's newest generation when planned: apply refuses to run if it has moved since.
    pub generation: Option<String>,
    /// Why the host needs attention (an apply its health checks did not confirm); apply then runs
    /// the checks even when nothing else changes.
    pub attention: Option<String>,
    /// Why the package lists are refreshed first, when they are.
    pub update_package_lists: Option<String>,
    pub install: Vec<String>,
    /// Accounts made after the packages, before anything is staged.
    pub accounts: Vec<AccountChange>,
    pub changes: Vec<Change>,
    pub steps: Vec<PlannedStep>,
    /// Validators for the staged tree: those that read a changed path.
    pub validators: Vec<Validator>,
    pub checks: Vec<HealthCheck>,
    /// What this apply cannot take back, said before it runs.
    pub irreversible: Vec<String>,
    /// Hosts this one fronts (a balancer's web hosts) that the inventory no longer names: taken
    /// out of service here before any host changes.
    pub leaving: Vec<String>,
    /// What needs a look that no change of this plan fixes (a certificate the CA did not give):
    /// said by `plan`, not a change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

impl HostPlan {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty()
            && self.accounts.is_empty()
            && self.changes.is_empty()
            && self.steps.is_empty()
            && self.attention.is_none()
    }

    pub fn change_count(&self) -> usize {
        usize::from(!self.install.is_empty())
            + self.accounts.len()
            + self.changes.len()
            + self.steps.len()
            + usize::from(self.attention.is_some())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Create,
    Update,
    Delete,
}

/// How a path looks, as far as the plan commits to it: apply refuses to go on if the host's copy
/// looks different from `before`, and `after` is what it writes. A file is named by its digest:
/// `sha256:…`, or for a file that holds a secret `keyed:…`, which says nothing without the host's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Shape {
    Absent,
    File {
        digest: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    Dir {
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    Link {
        target: String,
    },
    /// An application release, whole on the host.
    Release {
        id: String,
        files: usize,
    },
    /// A file the host makes itself (`PathState::Made`).
    Made {
        what: String,
    },
    Other,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub path: String,
    pub action: ChangeKind,
    pub reason: String,
    /// Unified diff with secrets masked; `None` for directories, links, metadata-only changes.
    pub diff: Option<String>,
    pub before: Shape,
    pub after: Shape,
    /// For a new release: what is sent, and the release it is built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseChange>,
    #[serde(skip)]
    pub desired: ManagedPath,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleaseChange {
    /// The release the host runs, whose files the new one starts from (hard links).
    pub from: Option<String>,
    pub send: usize,
    pub remove: usize,
    #[serde(skip)]
    pub delta: crate::tree::Delta,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    pub handler: Handler,
    pub reason: String,
}

/// The digest a plan uses for file content: keyed for secrets.
pub fn digest(content: &[u8], sensitive: bool, key: &str) -> String {
    if sensitive {
        keyed_digest(key, content)
    } else {
        format!("sha256:{}", sha256_hex(content))
    }
}

/// What a new release sends: against the release the host runs whole (its manifest came back in
/// the facts), or all of it.
fn release_change(t: &crate::tree::Tree, now: Option<&(String, String)>) -> ReleaseChange {
    let delta = t.delta(now.map(|(id, m)| (id.as_str(), m.as_str())));
    ReleaseChange {
        from: delta.from.clone(),
        send: delta.send.len(),
        remove: delta.remove.len(),
        delta,
    }
}

/// Why the host needs attention, with a guard still armed said too: until a new SSH connection
/// confirms its generation, the host rolls it back by itself.
fn attention(state: &crate::host_state::HostState) -> Option<String> {
    let guard = state.guard.as_ref().map(|token| {
        format!(
            "generation {} waits for a new SSH connection to confirm it (apply makes one), or the host rolls it back by itself",
            token.split('.').next().unwrap_or_default()
        )
    });
    match (&state.attention, guard) {
        (Some(a), Some(g)) => Some(format!("{a}; {g}")),
        (a, g) => a.clone().or(g),
    }
}

/// Builds one host's plan. `needs` are what the components read from their facts; `redactor`
/// masks secrets in every diff.
pub fn plan_host(d: &Desired, f: &Facts, needs: &[Need], redactor: &Redactor) -> HostPlan {
    let install: Vec<String> = d
        .packages
        .iter()
        .filter(|p| f.packages.get(*p).is_none_or(|v| v.is_none()))
        .cloned()
        .collect();
    let mut steps: Vec<PlannedStep> = Vec::new();
    let changes = path_changes(d, f, &install, redactor, &mut steps);
    steps_to_converge(d, f, needs, &mut steps);
    let validators = validators_for(d, &changes);
    let accounts = accounts::missing(d, f);
    let irreversible = irreversible(d, &accounts, &steps);
    HostPlan {
        host: d.host.clone(),
        os: format!("{} {}", f.os_id, f.os_version),
        systemd: f.systemd,
        generation: f.state.current.clone(),
        attention: attention(&f.state),
        update_package_lists: package_lists_update(f, &install),
        install,
        accounts,
        changes,
        steps,
        validators,
        checks: d.checks.clone(),
        irreversible,
        leaving: Vec::new(),
        notices: Vec::new(),
    }
}

/// The desired paths that differ from the host, in the desired order; the handlers they notify
/// added to `steps`.
fn path_changes(
    d: &Desired,
    f: &Facts,
    install: &[String],
    redactor: &Redactor,
    steps: &mut Vec<PlannedStep>,
) -> Vec<Change> {
    let key = f.state.key.as_deref().unwrap_or("");
    let mut changes = Vec::new();
    for p in &d.paths {
        let fact = f.paths.get(&p.path).cloned().unwrap_or(PathFact::Absent);
        let change = match (&p.state, &fact) {
            // A package installed in this run may create it (Nginx's default site): remove it then.
            (PathState::Absent, PathFact::Absent) if !install.is_empty() => Some(Change {
                path: p.path.clone(),
                action: ChangeKind::Delete,
                reason: "must not exist; the packages being installed may create it".into(),
                diff: None,
                before: Shape::Absent,
                after: Shape::Absent,
                release: None,
                desired: p.clone(),
            }),
            _ => path_change(p, &fact, key, redactor),
        };
        if let Some(mut c) = change {
            if let PathState::Tree(t) = &p.state {
                let r = release_change(t, f.trees.get(&p.path));
                c.reason = release_reason(t, &r);
                c.release = Some(r);
            }
            for h in &p.notify {
                add_step(steps, h.clone(), format!("{} changed", p.path));
            }
            changes.push(c);
        }
    }
    changes
}

/// Why a new release changes the host: what it sends, and what it links from the one it runs.
fn release_reason(t: &crate::tree::Tree, r: &ReleaseChange) -> String {
    match &r.from {
        Some(from) => format!(
            "release {} is new: {} of {} entries sent, {} removed, the rest linked from release {from}",
            t.id,
            r.send,
            t.entries.len(),
            r.remove
        ),
        None => format!(
            "release {} is new: all {} entries sent",
            t.id,
            t.entries.len()
        ),
    }
}

/// Why the package lists are updated before `install`, if they must be.
fn package_lists_update(f: &Facts, install: &[String]) -> Option<String> {
    if install.is_empty() {
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
    }
}

/// Adds to `steps` the services not running, the handlers an interrupted apply left pending and
/// what the components need, then puts them in the order they run.
fn steps_to_converge(d: &Desired, f: &Facts, needs: &[Need], steps: &mut Vec<PlannedStep>) {
    for s in &d.services {
        if !f.services.get(&s.name).copied().unwrap_or(false) {
            add_step(
                steps,
                Handler::service(Action::Start, &s.name),
                format!("{} is not running", s.name),
            );
        }
    }
    for h in &f.state.pending {
        // A pending handler whose service or step this host no longer has is dropped.
        let known = match &h.target {
            Target::Service(s) => d.services.iter().any(|x| &x.name == s),
            Target::Step(s) => d.step(s).is_some(),
        };
        if known {
            add_step(
                steps,
                h.clone(),
                "left pending by an interrupted apply".into(),
            );
        }
    }
    for n in needs {
        add_step(steps, n.handler.clone(), n.reason.clone());
    }
    // Within a component its services come up before its steps run (the server before its SQL).
    steps.sort_by_key(|s| (d.rank(&s.handler), s.handler.action == Action::Run));
}

/// What a rollback does not undo: the accounts made, and the steps that say so.
fn irreversible(d: &Desired, accounts: &[AccountChange], steps: &[PlannedStep]) -> Vec<String> {
    accounts
        .iter()
        .map(|a| format!("{}: the account stays, as installed packages do", a.line()))
        .chain(steps.iter().filter_map(|s| {
            match &s.handler.target {
                Target::Step(name) => d
                    .step(name)
                    .and_then(|st| st.irreversible.as_ref())
                    .map(|why| format!("{}: {why}", s.handler.line())),
                Target::Service(_) => None,
            }
        }))
        .collect()
}

/// The validators that read a changed path: each checks its service's whole staged config (or,
/// per file, the changed files). A validator none of whose paths changed has nothing new to check.
fn validators_for(d: &Desired, changes: &[Change]) -> Vec<Validator> {
    d.validators
        .iter()
        .filter(|v| {
            changes
                .iter()
                .any(|c| c.desired.validator.as_deref() == Some(v.name.as_str()))
        })
        .cloned()
        .collect()
}

fn add_step(steps: &mut Vec<PlannedStep>, h: Handler, reason: String) {
    let same = steps.iter().position(|x| x.handler.target == h.target);
    match same {
        Some(pos) => {
            let existing = &mut steps[pos];
            push_reason(&mut existing.reason, &reason);
            if existing.handler.action.strength() < h.action.strength() {
                existing.handler = h;
            }
        }
        None => steps.push(PlannedStep { handler: h, reason }),
    }
}

fn push_reason(into: &mut String, reason: &str) {
    if !into.split("; ").any(|r| r == reason) {
        into.push_str("; ");
        into.push_str(reason);
    }
}

#[cfg(test)]
mod tests;
