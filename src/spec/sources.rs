//! Where secrets, application files and the inventory itself come from. The real program reads the
//! environment and the disk; tests substitute fixtures through the `Sources` trait.
//!
//! Reading is defensive because the paths come from the inventory: a password file may be a FIFO
//! fed by a password manager (`password_file = "/dev/fd/63"` from `<(pass show db)`), or by mistake
//! `/dev/zero`, so every read is capped and a FIFO nobody writes to is given up on after a while.

use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The most a password file may hold: far above the 512 bytes a secret may have, so a file that is
/// longer is certainly not a password file.
pub const SECRET_FILE_LIMIT: usize = 4096;
/// The most an inventory file may hold; real ones are a few kilobytes.
pub const INVENTORY_LIMIT: usize = 16 << 20;
/// How long a FIFO or pipe may take to deliver its content and end, e.g. while a password manager
/// asks for a passphrase.
pub const FIFO_WAIT: Duration = Duration::from_secs(30);

/// One file of the application directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Relative to the directory, `/`-separated.
    pub path: String,
    /// Which file this really is once symlinks are resolved, to recognise a secret read under
    /// another name.
    pub key: FileKey,
    pub content: Vec<u8>,
    pub executable: bool,
}

/// The identity of a file on disk: its canonical path and, when known, its device and inode, so
/// that symlinks and hard links to the same file compare equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKey {
    pub real: PathBuf,
    pub inode: Option<(u64, u64)>,
}

impl FileKey {
    pub fn same_file(&self, other: &FileKey) -> bool {
        self.real == other.real || (self.inode.is_some() && self.inode == other.inode)
    }
}

/// Where secrets and application files come from: the process environment and the disk in the real
/// program, fixtures in tests.
pub trait Sources {
    fn env_var(&self, name: &str) -> Option<String>;
    /// The file's content, or its first `limit + 1` bytes when it is longer: the caller tells "too
    /// long" from "exactly at the limit" without the whole file (or an endless device) in memory.
    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>>;
    /// Every regular file below `dir`, sorted by path. Symlinks are followed only when they resolve
    /// inside `dir`; one that leads outside, dangles or loops is an error naming it.
    fn read_tree(&self, dir: &Path) -> io::Result<Vec<TreeFile>>;
    /// The identity of an existing file.
    fn file_key(&self, path: &Path) -> io::Result<FileKey>;
}

pub struct SystemSources;

impl Sources for SystemSources {
    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>> {
        read_capped(path, limit, FIFO_WAIT)
    }

    fn read_tree(&self, dir: &Path) -> io::Result<Vec<TreeFile>> {
        read_tree(dir)
    }

    fn file_key(&self, path: &Path) -> io::Result<FileKey> {
        let meta = std::fs::metadata(path)?;
        Ok(FileKey {
            real: std::fs::canonicalize(path)?,
            inode: Some((meta.dev(), meta.ino())),
        })
    }
}

/// Reads at most `limit + 1` bytes of `path`. A regular file is read directly. Anything else (FIFO,
/// pipe, character device) is opened non-blocking, so opening a FIFO without a writer returns at
/// once, and then polled: data is taken as it comes until end of file, and if the end does not
/// come within `wait` the read fails instead of hanging.
pub fn read_capped(path: &Path, limit: usize, wait: Duration) -> io::Result<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let cap = limit as u64 + 1;
    if file.metadata()?.is_file() {
        let mut out = Vec::new();
        file.take(cap).read_to_end(&mut out)?;
        return Ok(out);
    }
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Poll before reading: a non-blocking read of a FIFO whose writer has not opened it yet
        // says "end of file", which would turn a password manager that is still starting into an
        // empty secret. Poll waits for data or for a writer that came and went.
        wait_readable(&file, deadline, wait)?;
        match file.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                let room = cap as usize - out.len();
                out.extend_from_slice(&chunk[..n.min(room)]);
                if out.len() > limit {
                    return Ok(out);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn wait_readable(file: &std::fs::File, deadline: Instant, wait: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "it did not deliver its content and end within {} s (a FIFO or pipe nobody writes to?)",
                    wait.as_secs_f64()
                ),
            ));
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd for a descriptor that `file` keeps open during the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Walks `dir` (see `Sources::read_tree`). Other special files (FIFOs, sockets, devices) are not
/// application files and are skipped: reading one could block or never end.
pub fn read_tree(dir: &Path) -> io::Result<Vec<TreeFile>> {
    let root = std::fs::canonicalize(dir)?;
    let mut out = Vec::new();
    // (directory on disk, its path relative to dir, the canonical paths of it and the directories
    // walked through to reach it: a symlink back to one of them would loop)
    let mut stack = vec![(dir.to_path_buf(), String::new(), vec![root.clone()])];
    while let Some((d, prefix, chain)) = stack.pop() {
        let real_dir = chain.last().cloned().unwrap_or_else(|| root.clone());
        let entries = std::fs::read_dir(&d).map_err(|e| context(&prefix, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| context(&prefix, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            let lmeta = std::fs::symlink_metadata(&path).map_err(|e| context(&rel, e))?;
            let (real, meta) = if lmeta.file_type().is_symlink() {
                let real = std::fs::canonicalize(&path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("{rel} is a symlink that does not resolve to a file ({e})"),
                    )
                })?;
                if !real.starts_with(&root) {
                    return Err(io::Error::other(format!(
                        "{rel} is a symlink to {}, outside the directory; allowed: regular files, \
                         and symlinks that resolve inside the directory",
                        real.display()
                    )));
                }
                // Everything in the directory is deployed and served: a link may not reach out of it.
                if !real.starts_with(&root) {
                    return Err(io::Error::other(format!(
                        "{rel} is a symlink to {}, outside the application directory; allowed: \
                         links to files and directories inside it (copy the file in instead)",
                        real.display()
                    )));
                }
                let meta = std::fs::metadata(&real).map_err(|e| context(&rel, e))?;
                if meta.is_dir() && (real_dir.starts_with(&real) || chain.contains(&real)) {
                    return Err(io::Error::other(format!(
                        "{rel} is a symlink to {}, a directory that contains it (a loop); allowed: \
                         symlinks to files or to directories beside it",
                        real.display()
                    )));
                }
                (real, meta)
            } else {
                (real_dir.join(&name), lmeta)
            };
            if meta.is_dir() {
                let mut chain = chain.clone();
                chain.push(real);
                stack.push((path, rel, chain));
            } else if meta.is_file() {
                let content = std::fs::read(&path).map_err(|e| context(&rel, e))?;
                out.push(TreeFile {
                    path: rel,
                    key: FileKey {
                        real,
                        inode: Some((meta.dev(), meta.ino())),
                    },
                    content,
                    executable: meta.permissions().mode() & 0o111 != 0,
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn context(rel: &str, e: io::Error) -> io::Error {
    let what = if rel.is_empty() { "." } else { rel };
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
