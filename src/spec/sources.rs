//! Where secrets and application files come from: the environment and the disk in the real
//! program, fixtures in tests.

use std::path::Path;

/// Where secrets and application files come from: the process environment and the disk in the real
/// program, fixtures in tests.
pub trait Sources {
    fn env_var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Every regular file below `dir`, as (path relative to dir, content, executable).
    fn read_tree(&self, dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>, bool)>>;
}

pub struct SystemSources;

impl Sources for SystemSources {
    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_tree(&self, dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>, bool)>> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let meta = std::fs::metadata(entry.path())?;
                if meta.is_dir() {
                    stack.push((entry.path(), rel));
                } else if meta.is_file() {
                    let exec = meta.permissions().mode() & 0o111 != 0;
                    out.push((rel, std::fs::read(entry.path())?, exec));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}
