//! One managed path against what the host has: the change to make, with its reason, a masked diff,
//! and the shapes before and after that the plan commits to.

use super::{diff, digest, Change, ChangeKind, Shape};
use crate::desired::{ManagedPath, PathState};
use crate::facts::PathFact;
use crate::secret::Redactor;

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

/// The shape of what is on the host now.
fn shape_of(fact: &PathFact, desired: &PathState, key: &str) -> Shape {
    let meta = |mode: u32, owner: &str, group: &str| {
        (
            Some(format!("{mode:04o}")),
            Some(format!("{owner}:{group}")),
        )
    };
    match fact {
        PathFact::Absent => Shape::Absent,
        PathFact::File {
            content,
            mode,
            owner,
            group,
        } => {
            let sensitive = desired.is_sensitive();
            // The probe leaves out content that matches the desired hash.
            let digest = match (content, desired.content()) {
                (Some(c), _) => digest(c, sensitive, key),
                (None, Some(d)) => digest(d, sensitive, key),
                (None, None) => String::new(),
            };
            let (mode, owner) = meta(*mode, owner, group);
            Shape::File {
                digest,
                mode,
                owner,
            }
        }
        PathFact::Dir { mode, owner, group } => {
            let (mode, owner) = meta(*mode, owner, group);
            Shape::Dir { mode, owner }
        }
        PathFact::Link { target } => Shape::Link {
            target: target.clone(),
        },
        PathFact::Other(_) => Shape::Other,
    }
}

/// The shape apply leaves.
fn shape_after(p: &PathState, key: &str) -> Shape {
    match p {
        PathState::File {
            content,
            mode,
            owner,
            group,
            sensitive,
        } => Shape::File {
            digest: digest(content, *sensitive, key),
            mode: Some(format!("{mode:04o}")),
            owner: Some(format!("{owner}:{group}")),
        },
        PathState::Dir { mode, owner, group } => Shape::Dir {
            mode: Some(format!("{mode:04o}")),
            owner: Some(format!("{owner}:{group}")),
        },
        PathState::Link { target } => Shape::Link {
            target: target.clone(),
        },
        PathState::Tree(t) => Shape::Release {
            id: t.id.clone(),
            files: t.files(),
        },
        PathState::Made { what, .. } => Shape::Made { what: what.clone() },
        PathState::Absent => Shape::Absent,
    }
}

/// What `p` changes on a host where it is `fact`: none when it is as desired.
pub(super) fn path_change(
    p: &ManagedPath,
    fact: &PathFact,
    key: &str,
    redactor: &Redactor,
) -> Option<Change> {
    let (action, reason, diff) = match &p.state {
        PathState::Absent => absent_change(fact),
        PathState::Tree(t) => release_marker_change(t, fact),
        PathState::Made { what, .. } => made_change(what, fact),
        PathState::File {
            content,
            mode,
            owner,
            group,
            sensitive,
        } => {
            let desired = (*mode, owner.as_str(), group.as_str());
            let diff_from = |old: &[u8]| diff(&p.path, old, content, *sensitive, redactor);
            file_change(content, desired, fact, diff_from)
        }
        PathState::Dir { mode, owner, group } => dir_change((*mode, owner, group), fact),
        PathState::Link { target } => link_change(target, fact),
    }?;
    let reason = match &p.because {
        Some(why) => format!("{reason}: {why}"),
        None => reason,
    };
    Some(Change {
        path: p.path.clone(),
        action,
        reason,
        diff,
        before: shape_of(fact, &p.state, key),
        after: shape_after(&p.state, key),
        release: None,
        desired: p.clone(),
    })
}

/// A change's kind, its reason, and its diff.
type Found = Option<(ChangeKind, String, Option<String>)>;

fn absent_change(fact: &PathFact) -> Found {
    match fact {
        PathFact::Absent => None,
        _ => Some((ChangeKind::Delete, "must not exist".into(), None)),
    }
}

/// The manifest is written last, once the release is whole: it being there is enough.
fn release_marker_change(t: &crate::tree::Tree, fact: &PathFact) -> Found {
    match fact {
        PathFact::File { .. } => None,
        _ => Some((ChangeKind::Create, format!("release {} is new", t.id), None)),
    }
}

/// Made once; its name changes when what it must hold changes, so being there is enough.
fn made_change(what: &str, fact: &PathFact) -> Found {
    match fact {
        PathFact::File { .. } => None,
        PathFact::Absent => Some((
            ChangeKind::Create,
            format!("missing: {what}, made on the host"),
            None,
        )),
        other => Some((
            ChangeKind::Update,
            format!("is {}, must be {what}, made on the host", describe(other)),
            None,
        )),
    }
}

/// A file: its content (`diff` from the old content) and its mode and owner.
fn file_change(
    content: &[u8],
    (mode, owner, group): (u32, &str, &str),
    fact: &PathFact,
    diff: impl Fn(&[u8]) -> String,
) -> Found {
    match fact {
        PathFact::Absent => Some((ChangeKind::Create, "missing".into(), Some(diff(b"")))),
        PathFact::File {
            mode: m,
            owner: o,
            group: g,
            content: old,
        } => {
            let meta = meta_diff(mode, owner, group, (*m, o, g));
            // Content can come back although it matches (files fetched whatever their hash).
            let old = old.as_ref().filter(|c| c.as_slice() != content);
            match (old, meta) {
                (None, None) => None,
                (None, Some(meta)) => Some((ChangeKind::Update, meta, None)),
                (Some(old), meta) => {
                    let reason = match meta {
                        Some(m) => format!("content differs; {m}"),
                        None => "content differs".into(),
                    };
                    Some((ChangeKind::Update, reason, Some(diff(old))))
                }
            }
        }
        other => Some((
            ChangeKind::Update,
            format!("is {}, must be a file", describe(other)),
            Some(diff(b"")),
        )),
    }
}

fn dir_change((mode, owner, group): (u32, &str, &str), fact: &PathFact) -> Found {
    match fact {
        PathFact::Absent => Some((ChangeKind::Create, "missing".into(), None)),
        PathFact::Dir {
            mode: m,
            owner: o,
            group: g,
        } => meta_diff(mode, owner, group, (*m, o, g)).map(|meta| (ChangeKind::Update, meta, None)),
        other => Some((
            ChangeKind::Update,
            format!("is {}, must be a directory", describe(other)),
            None,
        )),
    }
}

fn link_change(target: &str, fact: &PathFact) -> Found {
    match fact {
        PathFact::Absent => Some((ChangeKind::Create, "missing".into(), None)),
        PathFact::Link { target: t } if t == target => None,
        PathFact::Link { target: t } => Some((
            ChangeKind::Update,
            format!("points to {t}, must point to {target}"),
            None,
        )),
        other => Some((
            ChangeKind::Update,
            format!("is {}, must be a link", describe(other)),
            None,
        )),
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
