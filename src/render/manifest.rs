//! The machine-readable description of a render: per host, packages, paths (mode, owner, sha256 of
//! the content as written), services, validators and health checks. Serialised straight from the
//! desired state through borrowing structs: a 1,000-host manifest never exists as a JSON tree.

use crate::desired::{Account, Desired, Handler, HealthCheck, PathState, Service, Step, Validator};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
pub struct Manifest<'a> {
    pub inventory: &'a str,
    /// "hidden" or "revealed": whether the files in this render hold real secret values.
    pub secrets: &'static str,
    pub hosts: Vec<HostEntry<'a>>,
}

#[derive(Serialize)]
pub struct HostEntry<'a> {
    pub host: &'a str,
    /// The release the host was rendered for.
    pub release: Option<String>,
    pub packages: &'a [String],
    /// System users with a group of their own, made before the files are staged.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub accounts: &'a [Account],
    pub paths: Vec<PathEntry<'a>>,
    pub services: &'a [Service],
    pub validators: &'a [Validator],
    /// Converge steps beyond files, with the command each runs.
    pub steps: &'a [Step],
    pub checks: &'a [HealthCheck],
}

#[derive(Serialize)]
pub struct PathEntry<'a> {
    pub path: &'a str,
    /// file, dir, link or absent.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub notify: &'a [Handler],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validator: Option<&'a str>,
}

pub fn manifest<'a>(
    inventory: &'a str,
    secrets_revealed: bool,
    hosts: &'a [Desired],
) -> Manifest<'a> {
    Manifest {
        inventory,
        secrets: if secrets_revealed {
            "revealed"
        } else {
            "hidden"
        },
        hosts: hosts.iter().map(host_entry).collect(),
    }
}

fn host_entry(d: &Desired) -> HostEntry<'_> {
    let paths = d
        .paths
        .iter()
        .map(|p| {
            let mut e = PathEntry {
                path: &p.path,
                kind: "absent",
                mode: None,
                owner: None,
                group: None,
                sha256: None,
                sensitive: false,
                target: None,
                notify: &p.notify,
                validator: p.validator.as_deref(),
            };
            match &p.state {
                PathState::File {
                    content,
                    mode,
                    owner,
                    group,
                    sensitive,
                } => {
                    e.kind = "file";
                    e.mode = Some(format!("{mode:04o}"));
                    (e.owner, e.group) = (Some(owner.as_str()), Some(group.as_str()));
                    e.sha256 = Some(sha256_hex(content));
                    e.sensitive = *sensitive;
                }
                PathState::Dir { mode, owner, group } => {
                    e.kind = "dir";
                    e.mode = Some(format!("{mode:04o}"));
                    (e.owner, e.group) = (Some(owner.as_str()), Some(group.as_str()));
                }
                PathState::Link { target } => {
                    e.kind = "link";
                    e.target = Some(target);
                }
                PathState::Tree(t) => {
                    e.kind = "release";
                    e.sha256 = Some(sha256_hex(t.manifest().as_bytes()));
                }
                PathState::Made {
                    mode, owner, group, ..
                } => {
                    e.kind = "made";
                    e.mode = Some(format!("{mode:04o}"));
                    (e.owner, e.group) = (Some(owner.as_str()), Some(group.as_str()));
                }
                PathState::Absent => {}
            }
            e
        })
        .collect();
    HostEntry {
        host: &d.host,
        release: d.release.map(|r| r.describe()),
        packages: &d.packages,
        accounts: &d.accounts,
        paths,
        services: &d.services,
        validators: &d.validators,
        steps: &d.steps,
        checks: &d.checks,
    }
}
