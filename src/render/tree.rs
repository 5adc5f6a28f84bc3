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
/// records it, and a render may run unprivileged.
pub fn materialize(d: &Desired, root: &Path, into: Into) -> io::Result<()> {
    // Parents are created once per directory; a 1,000-host render writes thousands of files.
    let mut made: HashSet<PathBuf> = HashSet::new();
    for p in &d.paths {
        let target = under(root, &p.path);
        match &p.state {
            PathState::Dir { mode, .. } => {
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode | 0o700))?;
                made.insert(target);
            }
            PathState::File { content, mode, .. } => {
                parent_of(&target, &mut made)?;
                if into == Into::Overlay {
                    remove_if_present(&target)?;
                }
                write_new(&target, *mode, content)?;
            }
            PathState::Link { target: to } => {
                parent_of(&target, &mut made)?;
                if into == Into::Overlay {
                    remove_if_present(&target)?;
                }
                symlink(to, &target)?;
            }
            PathState::Tree(t) => {
                // The release as the host will have it, and its manifest (the marker) last.
                let dir = under(root, &t.dir());
                if into == Into::Overlay {
                    remove_if_present(&dir)?;
                }
                for e in &t.entries {
                    let path = dir.join(&e.path);
                    parent_of(&path, &mut made)?;
                    match &e.kind {
                        crate::tree::Kind::File { mode, content, .. } => {
                            write_new(&path, *mode, content)?;
                        }
                        crate::tree::Kind::Link(to) => symlink(to, &path)?,
                    }
                }
                parent_of(&target, &mut made)?;
                if into == Into::Overlay {
                    remove_if_present(&target)?;
                }
                write_new(&target, 0o600, t.manifest().as_bytes())?;
            }
            // The validators read it: made here as the host makes it (a throwaway). A plain render
            // leaves it out, the manifest says the host makes it.
            PathState::Made { command, .. } => {
                if into == Into::Overlay {
                    parent_of(&target, &mut made)?;
                    remove_if_present(&target)?;
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
                    remove_if_present(&target)?;
                }
            }
        }
    }
    Ok(())
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

fn parent_of(target: &Path, made: &mut HashSet<PathBuf>) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        if !made.contains(parent) {
            std::fs::create_dir_all(parent)?;
            made.insert(parent.to_path_buf());
        }
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
