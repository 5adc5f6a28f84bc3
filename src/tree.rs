//! Lays a host's desired paths onto a local directory tree: the `render --out` output, and the
//! staged copy that validators check. Side effects on the local disk only.

use crate::desired::{Desired, PathState};
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// `root` + absolute `path`.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Writes files, directories and links of `d` under `root`. With `remove_absent`, paths that must be
/// absent are removed from the tree (a staged copy of a live tree); otherwise they are skipped.
/// Ownership is not applied: the manifest records it, and the render may run unprivileged.
pub fn materialize(d: &Desired, root: &Path, remove_absent: bool) -> io::Result<()> {
    for p in &d.paths {
        let target = under(root, &p.path);
        match &p.state {
            PathState::Dir { mode, .. } => {
                std::fs::create_dir_all(&target)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode | 0o700))?;
            }
            PathState::File { content, mode, .. } => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_if_present(&target)?;
                std::fs::write(&target, content)?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
            }
            PathState::Link { target: to } => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                remove_if_present(&target)?;
                symlink(to, &target)?;
            }
            PathState::Absent => {
                if remove_absent {
                    remove_if_present(&target)?;
                }
            }
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
