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

pub(super) fn path_change(
    p: &ManagedPath,
    fact: &PathFact,
    key: &str,
    redactor: &Redactor,
) -> Option<Change> {
    let change = |action, reason: String, diff| {
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
    };
    match (&p.state, fact) {
        (PathState::Absent, PathFact::Absent) => None,
        // The manifest is written last, once the release is whole: it being there is enough.
        (PathState::Tree(_), PathFact::File { .. }) => None,
        (PathState::Tree(t), _) => {
            change(ChangeKind::Create, format!("release {} is new", t.id), None)
        }
        (PathState::Absent, _) => change(ChangeKind::Delete, "must not exist".into(), None),
        // Made once; its name changes when what it must hold changes, so being there is enough.
        (PathState::Made { .. }, PathFact::File { .. }) => None,
        (PathState::Made { what, .. }, PathFact::Absent) => change(
            ChangeKind::Create,
            format!("missing: {what}, made on the host"),
            None,
        ),
        (PathState::Made { what, .. }, other) => change(
            ChangeKind::Update,
            format!("is {}, must be {what}, made on the host", describe(other)),
            None,
        ),
        (
            PathState::File {
                content, sensitive, ..
            },
            PathFact::Absent,
        ) => change(
            ChangeKind::Create,
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
                (None, Some(meta)) => change(ChangeKind::Update, meta, None),
                (Some(old), meta) => {
                    let reason = match meta {
                        Some(m) => format!("content differs; {m}"),
                        None => "content differs".into(),
                    };
                    change(
                        ChangeKind::Update,
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
            ChangeKind::Update,
            format!("is {}, must be a file", describe(other)),
            Some(diff(&p.path, b"", content, *sensitive, redactor)),
        ),
        (PathState::Dir { .. }, PathFact::Absent) => {
            change(ChangeKind::Create, "missing".into(), None)
        }
        (
            PathState::Dir { mode, owner, group },
            PathFact::Dir {
                mode: m,
                owner: o,
                group: g,
            },
        ) => meta_diff(*mode, owner, group, (*m, o, g))
            .and_then(|meta| change(ChangeKind::Update, meta, None)),
        (PathState::Dir { .. }, other) => change(
            ChangeKind::Update,
            format!("is {}, must be a directory", describe(other)),
            None,
        ),
        (PathState::Link { .. }, PathFact::Absent) => {
            change(ChangeKind::Create, "missing".into(), None)
        }
        (PathState::Link { target }, PathFact::Link { target: t }) if t == target => None,
        (PathState::Link { target }, PathFact::Link { target: t }) => change(
            ChangeKind::Update,
            format!("points to {t}, must point to {target}"),
            None,
        ),
        (PathState::Link { .. }, other) => change(
            ChangeKind::Update,
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
