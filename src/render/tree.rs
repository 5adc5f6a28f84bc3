//! Lays a host's desired paths onto a local directory tree: the `render --out` output, and the
//! staged copy that validators check. Side effects on the local disk only.

use crate::desired::{Desired, PathState};
use std::collections::HashSet;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `root` + absolute `path`.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// How `materialize` treats the directory it writes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Into {
    /// A directory provision just created: nothing to replace, absent paths are skipped.
    Fresh,
    /// A copy of a live tree: existing paths are replaced and absent paths removed.
    Overlay,
}

/// Writes files, directories and links of `d` under `root`. Ownership is not applied: the manifest
/// records it, and a render may run unprivileged. Nothing is written, created or removed through a
/// link that leads out of `root` (a staged copy of a live tree holds its links, absolute ones too).
pub fn materialize(d: &Desired, root: &Path, into: Into) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    let mut w = Writer {
        root: root.to_path_buf(),
        real_root: None,
        inside: HashSet::from([root.to_path_buf()]),
        ours: HashSet::new(),
        into,
    };
    if into == Into::Fresh {
        w.ours.insert(root.to_path_buf());
    }
    for p in &d.paths {
        let target = under(root, &p.path);
        match &p.state {
            PathState::Dir { mode, .. } => {
                w.dir(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode | 0o700))?;
            }
            PathState::File { content, mode, .. } => {
                w.parent_of(&target)?;
                w.replace(&target)?;
                write_new(&target, *mode, content)?;
            }
            PathState::Link { target: to } => {
                w.parent_of(&target)?;
                w.replace(&target)?;
                symlink(to, &target)?;
                w.links_changed();
            }
            PathState::Tree(t) => w.tree(t, &under(root, &t.dir()), &target)?,
            // The validators read it: made here as the host makes it (a throwaway). A plain render
            // leaves it out, the manifest says the host makes it.
            PathState::Made { command, .. } => {
                if into == Into::Overlay {
                    w.parent_of(&target)?;
                    w.replace(&target)?;
                    let out = std::process::Command::new("sh")
                        .arg("-c")
                        .arg(command)
                        .env("OUT", &target)
                        .output()?;
                    if !out.status.success() {
                        return Err(io::Error::other(format!(
                            "cannot make {}: {}",
                            p.path,
                            String::from_utf8_lossy(&out.stderr).trim()
                        )));
                    }
                }
            }
            PathState::Absent => {
                if into == Into::Overlay {
                    if let Some(parent) = target.parent() {
                        w.fence(parent)?;
                    }
                    w.replace(&target)?;
                }
            }
        }
    }
    Ok(())
}

/// `materialize`'s state: the root, the directories known to resolve inside it, and those of them
/// it made itself, all since a link last changed (each is checked once: a 1,000-host render makes
/// thousands, and nothing it did not write can be under a directory it made).
struct Writer {
    root: PathBuf,
    /// Resolved when a link is first met.
    real_root: Option<PathBuf>,
    inside: HashSet<PathBuf>,
    ours: HashSet<PathBuf>,
    into: Into,
}

impl Writer {
    /// The release as the host will have it in `dir`, and its manifest (the `marker`) last.
    fn tree(&mut self, t: &crate::tree::Tree, dir: &Path, marker: &Path) -> io::Result<()> {
        self.parent_of(dir)?;
        self.replace(dir)?;
        for e in &t.entries {
            let path = dir.join(&e.path);
            self.parent_of(&path)?;
            match &e.kind {
                crate::tree::Kind::File { mode, content, .. } => write_new(&path, *mode, content)?,
                crate::tree::Kind::Link(to) => {
                    symlink(to, &path)?;
                    self.links_changed();
                }
            }
        }
        self.parent_of(marker)?;
        self.replace(marker)?;
        write_new(marker, 0o600, t.manifest().as_bytes())
    }

    /// `p`, or its nearest ancestor that exists, resolves inside the root: that ancestor. Walked
    /// down from the nearest directory known to: a real directory under it is inside too, a link
    /// must resolve inside, and the first missing step ends the walk (what is made under it is real).
    fn fence<'p>(&mut self, p: &'p Path) -> io::Result<&'p Path> {
        let mut steps: Vec<&Path> = p
            .ancestors()
            .take_while(|a| !self.inside.contains(*a))
            .collect();
        let mut base = p.ancestors().nth(steps.len()).unwrap_or(p);
        if self.ours.contains(base) {
            return Ok(base);
        }
        while let Some(step) = steps.pop() {
            let m = match std::fs::symlink_metadata(step) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            };
            if m.file_type().is_symlink() {
                if self.real_root.is_none() {
                    self.real_root = Some(self.root.canonicalize()?);
                }
                match step.canonicalize() {
                    Ok(real) if self.real_root.as_ref().is_some_and(|r| real.starts_with(r)) => {}
                    real => return Err(outside(p, step, real)),
                }
            } else if !m.is_dir() {
                // A file: nothing can be made under it.
                break;
            }
            self.inside.insert(step.to_path_buf());
            base = step;
        }
        Ok(base)
    }

    /// Creates directory `d` once it is known to resolve inside the root; so does every directory
    /// made on the way.
    fn dir(&mut self, d: &Path) -> io::Result<()> {
        if !self.inside.contains(d) {
            let base = self.fence(d)?;
            std::fs::create_dir_all(d)?;
            for a in d.ancestors().take_while(|a| *a != base) {
                self.inside.insert(a.to_path_buf());
                self.ours.insert(a.to_path_buf());
            }
        }
        Ok(())
    }

    fn parent_of(&mut self, target: &Path) -> io::Result<()> {
        match target.parent() {
            Some(parent) => self.dir(parent),
            None => Ok(()),
        }
    }

    /// Into a copy of a live tree, what is at `p` goes first.
    fn replace(&mut self, p: &Path) -> io::Result<()> {
        if self.into == Into::Overlay {
            let was_dir_or_link = std::fs::symlink_metadata(p)
                .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink());
            remove_if_present(p)?;
            if was_dir_or_link {
                self.links_changed();
            }
        }
        Ok(())
    }

    /// A link was made or a directory or link removed: what resolved inside the root may not any
    /// more, so every directory is checked again.
    fn links_changed(&mut self) {
        self.inside.clear();
        self.ours.clear();
        self.inside.insert(self.root.clone());
    }
}

fn outside(p: &Path, link: &Path, real: io::Result<PathBuf>) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{}: a link in the staged tree leads outside it ({} resolves to {}); nothing was written through it",
            p.display(),
            link.display(),
            real.map(|r| r.display().to_string())
                .unwrap_or_else(|e| format!("nothing: {e}"))
        ),
    )
}

fn write_new(target: &Path, mode: u32, content: &[u8]) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(target)?;
    f.write_all(content)?;
    // The umask may have narrowed the mode given at creation.
    if mode & 0o022 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn remove_if_present(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ManagedPath;

    fn path(path: &Path, state: PathState) -> ManagedPath {
        ManagedPath {
            path: path.to_string_lossy().into_owned(),
            state,
            notify: vec![],
            validator: None,
            from_previous: false,
            code: false,
            because: None,
        }
    }

    /// A link the render itself lays (pointing out of its root, as every absolute link does), then
    /// paths under it: refused in a fresh render and over a copy alike, nothing written outside.
    #[test]
    fn a_link_laid_by_the_render_never_leads_a_later_write_outside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let live = t.path().join("live");
        std::fs::create_dir_all(&live).unwrap();
        let file = PathState::File {
            content: b"x\n".to_vec(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sensitive: false,
        };
        let dir = PathState::Dir {
            mode: 0o755,
            owner: "root".into(),
            group: "root".into(),
        };
        for into in [Into::Fresh, Into::Overlay] {
            for under_link in [file.clone(), dir.clone()] {
                let mut d = Desired::new("h");
                d.paths = vec![
                    path(Path::new("/etc/a/b.conf"), file.clone()),
                    path(
                        Path::new("/etc/a/sites"),
                        PathState::Link {
                            target: live.to_string_lossy().into_owned(),
                        },
                    ),
                    path(Path::new("/etc/a/sites/new/x"), under_link),
                ];
                let root = t.path().join(format!("root-{into:?}"));
                let e = materialize(&d, &root, into).unwrap_err();
                assert!(e.to_string().contains("leads outside it"), "{e}");
                assert_eq!(std::fs::read_dir(&live).unwrap().count(), 0);
                std::fs::remove_dir_all(&root).unwrap();
            }
        }
    }
}
