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
        root: root.canonicalize()?,
        made: HashSet::new(),
        into,
    };
    for p in &d.paths {
        let target = under(root, &p.path);
        match &p.state {
            PathState::Dir { mode, .. } => {
                w.fence(&target)?;
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode | 0o700))?;
                w.made.insert(target);
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
                w.forget(&target);
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

/// `materialize`'s state: the resolved root, and the directories it made or checked (each is
/// created once: a 1,000-host render writes thousands of files).
struct Writer {
    root: PathBuf,
    made: HashSet<PathBuf>,
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
                    self.forget(&path);
                }
            }
        }
        self.parent_of(marker)?;
        self.replace(marker)?;
        write_new(marker, 0o600, t.manifest().as_bytes())
    }

    /// `p`, or its nearest ancestor that exists, resolves inside the root.
    fn fence(&self, p: &Path) -> io::Result<()> {
        let mut at = p;
        while let Err(e) = std::fs::symlink_metadata(at) {
            match at.parent() {
                Some(up) if e.kind() == io::ErrorKind::NotFound => at = up,
                _ => return Err(e),
            }
        }
        match at.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(()),
            real => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{}: a link in the staged tree leads outside it ({} resolves to {}); nothing was written through it",
                    p.display(),
                    at.display(),
                    real.map(|r| r.display().to_string())
                        .unwrap_or_else(|e| format!("nothing: {e}"))
                ),
            )),
        }
    }

    /// Creates `target`'s parent, once it is known to resolve inside the root.
    fn parent_of(&mut self, target: &Path) -> io::Result<()> {
        if let Some(parent) = target.parent() {
            if !self.made.contains(parent) {
                self.fence(parent)?;
                std::fs::create_dir_all(parent)?;
                self.made.insert(parent.to_path_buf());
            }
        }
        Ok(())
    }

    /// Into a copy of a live tree, what is at `p` goes first.
    fn replace(&mut self, p: &Path) -> io::Result<()> {
        if self.into == Into::Overlay {
            remove_if_present(p)?;
            self.forget(p);
        }
        Ok(())
    }

    /// `p` is a link now, or gone: what was made under it must be checked again.
    fn forget(&mut self, p: &Path) {
        self.made.retain(|m| !m.starts_with(p));
    }
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
