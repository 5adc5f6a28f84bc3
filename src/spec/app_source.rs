//! Where an application's files come from: a directory on this machine, a tar archive (gzip'd or
//! not) or a ref of a git repository. Each is read whole into `AppFile`s here, before any host is
//! touched; an archive's or a git ref's mistakes are an `ArchiveError` or a `GitError`, located by
//! the caller at the key that named the source.

use super::check::{Checker, Protected};
use super::{App, AppFile};
use crate::error::{shown, Allowed};
use crate::names::{parse_host_path, parse_local_path};
use std::fmt;
use std::io::Read;
use std::path::Path;
use toml::Spanned;

/// A source that is an archive rather than a directory, by its name.
pub fn is_archive(p: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"].iter().any(|s| p.ends_with(s))
}

/// Largest application provision reads into memory, archive or directory.
const APP_MAX_BYTES: u64 = 1 << 30;

/// Why a tar archive cannot be deployed.
#[derive(Debug)]
pub enum ArchiveError {
    /// Opening or reading the archive failed.
    Io(std::io::Error),
    /// An entry's name is not one provision deploys.
    BadName(String),
    /// An entry is neither a file, a directory nor a link (a device, a FIFO...).
    Unsupported { path: String, kind: tar::EntryType },
    /// A link that does not point to a file of the archive.
    LinkOutside { path: String, target: String },
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Io(e) => write!(f, "{e}"),
            ArchiveError::BadName(path) => write!(
                f,
                "{} is not a name provision deploys; allowed: relative names of letters, digits, '.', '_', '-'",
                shown(path)
            ),
            ArchiveError::Unsupported { path, kind } => write!(
                f,
                "{} is a {kind:?} entry; allowed: files, directories and links inside the archive",
                shown(path)
            ),
            ArchiveError::LinkOutside { path, target } => write!(
                f,
                "{} is a link to {}, which is not a file inside the archive; allowed: links to files inside it",
                shown(path),
                shown(target)
            ),
        }
    }
}

impl std::error::Error for ArchiveError {}

impl From<std::io::Error> for ArchiveError {
    fn from(e: std::io::Error) -> Self {
        ArchiveError::Io(e)
    }
}

/// Why `git archive` gave no application.
#[derive(Debug)]
pub enum GitError {
    /// git could not be started.
    NotRun(std::io::Error),
    /// git failed; what it wrote on stderr, trimmed.
    Failed(String),
    /// git's tar could not be read.
    Archive(ArchiveError),
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitError::NotRun(e) => write!(f, "cannot run git: {e}"),
            GitError::Failed(stderr) => f.write_str(stderr),
            GitError::Archive(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GitError {}

impl Checker<'_> {
    /// Reads the application's files. Everything in the directory is deployed into the document
    /// root and served to the web, so a directory that also holds a file the inventory names (a
    /// password file, an SSH key, the inventory itself, e.g. with `app_dir = "."`) is refused rather
    /// than silently filtered: the user has to separate the application from its operations files.
    pub(super) fn app_dir(
        &mut self,
        d: &Spanned<String>,
        key: &str,
        protected: &[Protected],
    ) -> Option<App> {
        let rel = self.check(d, key, parse_local_path)?;
        let dir = self.opened_path(&rel);
        if is_archive(&rel) {
            return self.app_archive(d, key, &dir);
        }
        let files = match self.sources.read_tree(&dir) {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    d.span(),
                    key,
                    format!(
                        "cannot use the application directory {}: {e}",
                        dir.display()
                    ),
                );
                return None;
            }
        };
        if files.is_empty() {
            self.fail(
                d.span(),
                key,
                format!("the application directory {} has no files", dir.display()),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for f in files {
            if let Some(p) = protected.iter().find(|p| p.key.same_file(&f.key)) {
                self.fail(
                    d.span(),
                    key,
                    format!(
                        "the application directory {} contains {}, as {}; allowed: a directory that holds only the application, since all of it is served on the web (move the file out, or point app_dir at a subdirectory)",
                        dir.display(),
                        p.what,
                        shown(&f.path)
                    ),
                );
                ok = false;
                continue;
            }
            if parse_host_path(&format!("/{}", f.path)).is_err() {
                self.fail(
                    d.span(),
                    key,
                    format!(
                        "found the file {} in {}; allowed: names of letters, digits, '.', '_' and '-'",
                        shown(&f.path),
                        dir.display()
                    ),
                );
                ok = false;
                continue;
            }
            out.push(AppFile::new(f.path, f.content, f.executable));
        }
        ok.then_some(App::Files(out))
    }

    /// An application at a ref of a git repository on this machine: what `git archive` gives (the
    /// committed files only, never the working tree's).
    pub(super) fn app_git(
        &mut self,
        g: &Spanned<String>,
        r: Option<&Spanned<String>>,
        table: &std::ops::Range<usize>,
    ) -> Option<App> {
        let rel = self.check(g, "site.app.git", parse_local_path)?;
        let Some(r) = r else {
            self.fail(
                table.clone(),
                "site.app.ref",
                "missing from [site.app]; allowed: the branch, tag or commit of site.app.git to deploy, like \"v1.2\"".into(),
            );
            return None;
        };
        let rev = self.check(r, "site.app.ref", parse_git_rev)?;
        let repo = self.opened_path(&rel);
        match git_archive(&repo, &rev) {
            Ok(f) if !f.is_empty() => Some(App::Files(f)),
            Ok(_) => {
                self.fail(
                    r.span(),
                    "site.app.ref",
                    format!("{} of {} has no files", shown(&rev), repo.display()),
                );
                None
            }
            Err(e) => {
                self.fail(
                    g.span(),
                    "site.app.git",
                    format!(
                        "cannot read {} of the git repository {}: {e}",
                        shown(&rev),
                        repo.display()
                    ),
                );
                None
            }
        }
    }

    /// An application shipped as a tar archive (gzip'd or not): its regular files; a link must
    /// stay inside it.
    fn app_archive(&mut self, d: &Spanned<String>, key: &str, file: &Path) -> Option<App> {
        match read_archive(file) {
            Ok(files) if files.is_empty() => {
                self.fail(
                    d.span(),
                    key,
                    format!("the archive {} has no files", file.display()),
                );
                None
            }
            Ok(files) => Some(App::Files(files)),
            Err(e) => {
                self.fail(
                    d.span(),
                    key,
                    format!("cannot use the archive {}: {e}", file.display()),
                );
                None
            }
        }
    }
}

/// A ref of `site.app.ref`. It is passed to git as one argument, and nothing marks the end of
/// options there, so: no option, no revision range.
fn parse_git_rev(v: &str) -> Result<String, Allowed> {
    let ok = !v.is_empty()
        && !v.starts_with('-')
        && v.len() <= 200
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-^~@".contains(&b))
        && !v.contains("..");
    if ok {
        Ok(v.to_string())
    } else {
        Err("a branch, tag or commit name of letters, digits and . _ / - ^ ~ @".into())
    }
}

/// The files of `rev`'s tree in the repository `repo`, through `git archive`.
fn git_archive(repo: &Path, rev: &str) -> Result<Vec<AppFile>, GitError> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["archive", "--format=tar"])
        .arg(format!("{rev}^{{tree}}"))
        .output()
        .map_err(GitError::NotRun)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(GitError::Failed(stderr));
    }
    read_tar(Box::new(out.stdout.as_slice())).map_err(GitError::Archive)
}

fn read_archive(file: &Path) -> Result<Vec<AppFile>, ArchiveError> {
    let f = std::fs::File::open(file)?;
    let name = file.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".tar") {
        Box::new(f)
    } else {
        Box::new(flate2::read::GzDecoder::new(f))
    };
    read_tar(reader)
}

/// The archive's regular files, sorted by path, with each link replaced by a copy of the file it
/// points to.
fn read_tar(reader: Box<dyn Read + '_>) -> Result<Vec<AppFile>, ArchiveError> {
    let mut ar = tar::Archive::new(reader.take(APP_MAX_BYTES));
    let mut files: Vec<AppFile> = Vec::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for e in ar.entries()? {
        let mut e = e?;
        let raw = e.path()?.to_string_lossy().into_owned();
        let path = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() {
            continue;
        }
        if crate::tree::entry_path_problem(&path).is_some()
            || parse_host_path(&format!("/{path}")).is_err()
        {
            return Err(ArchiveError::BadName(path));
        }
        match e.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = e.header().mode().unwrap_or(0o644);
                let mut content = Vec::new();
                e.read_to_end(&mut content)?;
                files.push(AppFile::new(path, content, mode & 0o111 != 0));
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                links.push((path, target));
            }
            kind => return Err(ArchiveError::Unsupported { path, kind }),
        }
    }
    copy_links(&mut files, links)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Links become copies of what they point to, which must be a file of the archive.
fn copy_links(files: &mut Vec<AppFile>, links: Vec<(String, String)>) -> Result<(), ArchiveError> {
    for (path, target) in links {
        let found =
            link_path(&path, &target).and_then(|r| files.iter().find(|f| f.path == r).cloned());
        match found {
            Some(f) => files.push(AppFile { path, ..f }),
            None => return Err(ArchiveError::LinkOutside { path, target }),
        }
    }
    Ok(())
}

/// The archive path a relative link at `path` points to; `None` for an absolute target or one
/// that climbs out of the archive.
fn link_path(path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    let mut ok = true;
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => ok &= parts.pop().is_some(),
            c => parts.push(c),
        }
    }
    ok.then(|| parts.join("/"))
}
