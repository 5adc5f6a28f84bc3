//! An application release: a tree of files and links named by the digest of its manifest, deployed
//! to `<base>/releases/<id>` and put live by switching the `<base>/current` link. Pure: the manifest,
//! the id, the delta against the release a host runs now, and the archive of what must be sent.
//!
//! Releases are immutable and content-addressed, so a host answers "do you have release X" with one
//! file test, and a new release is built from the live one (hard links) plus only the files that
//! differ. The manifest (one line per entry) is what the host keeps to describe a release, and what
//! it sends back when asked what it runs.

use crate::render::manifest::sha256_hex;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        mode: u32,
        sha: String,
        content: Arc<Vec<u8>>,
    },
    /// A symbolic link (shared directories, config files kept outside the release).
    Link(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the release root, `/`-separated; never `..`, a tab, a newline or a backslash.
    pub path: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Tree {
    /// `<base>`: holds `releases/`, `current` and `.provision/`.
    pub base: String,
    pub id: String,
    /// Sorted by path.
    #[serde(skip)]
    pub entries: Vec<Entry>,
    /// The entries as the host keeps them, made once: the id, the probe and the apply all read it.
    #[serde(skip)]
    manifest: String,
    /// Run in the new release (its working directory) before it goes live; a failure keeps the old.
    pub release_command: Option<String>,
    /// Releases kept on the host, the live one included.
    pub keep: usize,
    /// What checks the release's files before it goes live, declared by the component that knows
    /// their language (not part of the id).
    pub check: Option<ReleaseCheck>,
}

/// A check of the files a new release receives, run on the host in the release directory before it
/// goes live: its failure keeps the live release, and the apply changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseCheck {
    /// Which files it reads: those sent whose path ends so (`.php`).
    pub files_ending: String,
    /// What the files are called in its failure (`PHP files`).
    pub files: String,
    /// Who rejects them in its failure (`php8.2`).
    pub tool: String,
    /// A shell command run in the release directory with the files' paths on stdin, one a line;
    /// failing rejects them. Left out of a saved plan: the tool names it there.
    #[serde(skip)]
    pub command: String,
}

impl Tree {
    pub fn new(
        base: &str,
        mut entries: Vec<Entry>,
        release_command: Option<String>,
        keep: usize,
    ) -> Tree {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        let manifest = manifest(&entries);
        let id = sha256_hex(manifest.as_bytes())[..16].to_string();
        Tree {
            base: base.to_string(),
            id,
            entries,
            manifest,
            release_command,
            keep,
            check: None,
        }
    }

    pub fn file(path: &str, mode: u32, content: Vec<u8>) -> Entry {
        Tree::hashed_file(path, mode, sha256_hex(&content), Arc::new(content))
    }

    /// A file whose sha256 is known (hashed once when the application was read).
    pub fn hashed_file(path: &str, mode: u32, sha: String, content: Arc<Vec<u8>>) -> Entry {
        Entry {
            path: path.to_string(),
            kind: Kind::File { mode, sha, content },
        }
    }

    pub fn manifest(&self) -> &str {
        &self.manifest
    }

    /// Where the host keeps a complete release's manifest: its presence says the release is whole.
    pub fn marker(&self) -> String {
        marker(&self.base, &self.id)
    }

    pub fn dir(&self) -> String {
        format!("{}/releases/{}", self.base, self.id)
    }

    pub fn current(&self) -> String {
        format!("{}/current", self.base)
    }

    pub fn files(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File { .. }))
            .count()
    }

    /// What must be sent and removed to make this release from `from` (the manifest of a release
    /// the host has whole), or everything when there is none.
    pub fn delta(&self, from: Option<(&str, &str)>) -> Delta {
        let old: BTreeMap<&str, Old> = from.map(|(_, m)| parse(m)).unwrap_or_default();
        let mut send = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let same = match (old.get(e.path.as_str()), &e.kind) {
                (
                    Some(Old::File { mode, sha }),
                    Kind::File {
                        mode: m, sha: s, ..
                    },
                ) => mode == m && sha == s,
                (Some(Old::Link(t)), Kind::Link(target)) => t == target,
                _ => false,
            };
            if !same {
                send.push(i);
            }
        }
        let wanted: std::collections::BTreeSet<&str> =
            self.entries.iter().map(|e| e.path.as_str()).collect();
        let remove = old
            .keys()
            .filter(|p| !wanted.contains(*p))
            .map(|p| p.to_string())
            .collect();
        Delta {
            from: from.map(|(id, _)| id.to_string()),
            send,
            remove,
        }
    }

    /// The gzip'd tar of the entries `send` names (owner root, modes as given).
    pub fn archive(&self, send: &[usize]) -> std::io::Result<Vec<u8>> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        // The files sent get the time of the deploy: web servers build Last-Modified and ETag from
        // it (an ETag of size and mtime 0 would call a changed file of the same size unchanged).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for &i in send {
            let e = &self.entries[i];
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(now);
            match &e.kind {
                Kind::File { mode, content, .. } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(content.len() as u64);
                    tar.append_data(&mut h, &e.path, content.as_slice())?;
                }
                Kind::Link(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    tar.append_link(&mut h, &e.path, target)?;
                }
            }
        }
        let mut gz = tar.into_inner()?;
        gz.flush()?;
        gz.finish()
    }
}

pub fn marker(base: &str, id: &str) -> String {
    format!("{base}/.provision/{id}.manifest")
}

/// What a plan sends for a new release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The release the new one starts from (hard links to its files), if the host has one whole.
    pub from: Option<String>,
    /// Indexes of the entries to send.
    pub send: Vec<usize>,
    /// Paths of `from` the new release does not have.
    pub remove: Vec<String>,
}

enum Old {
    File { mode: u32, sha: String },
    Link(String),
}

/// One line per entry: `F<TAB>mode<TAB>sha256<TAB>path` or `L<TAB>target<TAB>path`.
fn manifest(entries: &[Entry]) -> String {
    let mut s = String::new();
    for e in entries {
        match &e.kind {
            Kind::File { mode, sha, .. } => {
                s.push_str(&format!("F\t{mode:o}\t{sha}\t{}\n", e.path));
            }
            Kind::Link(target) => s.push_str(&format!("L\t{target}\t{}\n", e.path)),
        }
    }
    s
}

/// The entries of a manifest the host sent back. A path no release may have is left out: the
/// delta's removals become `rm -rf` under the new release on the host.
fn parse(m: &str) -> BTreeMap<&str, Old> {
    let mut out = BTreeMap::new();
    for line in m.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.last().is_none_or(|p| entry_path_problem(p).is_some()) {
            continue;
        }
        match f.as_slice() {
            ["F", mode, sha, path] => {
                if let Ok(mode) = u32::from_str_radix(mode, 8) {
                    out.insert(
                        *path,
                        Old::File {
                            mode,
                            sha: sha.to_string(),
                        },
                    );
                }
            }
            ["L", target, path] => {
                out.insert(*path, Old::Link(target.to_string()));
            }
            _ => {}
        }
    }
    out
}

/// Why a relative path cannot be part of a release, if it cannot: the manifest is tab- and
/// line-separated, the host's `sha256sum -c` escapes backslashes, and nothing may leave the tree.
pub fn entry_path_problem(p: &str) -> Option<&'static str> {
    if p.is_empty() || p.starts_with('/') {
        return Some("an empty or absolute path");
    }
    if p.chars().any(|c| c.is_control() || c == '\\') {
        return Some("a control character or a backslash in the name");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("an empty, '.' or '..' path component");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let entries = files
            .iter()
            .map(|(p, c)| Tree::file(p, 0o644, c.as_bytes().to_vec()))
            .collect();
        Tree::new("/var/www/x", entries, None, 5)
    }

    #[test]
    fn the_id_follows_content_names_and_modes_not_order() {
        let a = tree(&[("a.php", "1"), ("b.php", "2")]);
        let b = tree(&[("b.php", "2"), ("a.php", "1")]);
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, tree(&[("a.php", "1"), ("b.php", "3")]).id);
        assert_ne!(a.id, tree(&[("a.php", "1"), ("c.php", "2")]).id);
        let mut e = a.entries.clone();
        if let Kind::File { mode, .. } = &mut e[0].kind {
            *mode = 0o755;
        }
        assert_ne!(a.id, Tree::new("/var/www/x", e, None, 5).id);
        assert_eq!(a.id.len(), 16);
    }

    #[test]
    fn the_delta_sends_only_what_changed_and_removes_what_went() {
        let old = tree(&[("a.php", "1"), ("b.php", "2"), ("gone.php", "x")]);
        let mut entries = tree(&[("a.php", "1"), ("b.php", "22"), ("new.php", "n")]).entries;
        entries.push(Entry {
            path: "uploads".into(),
            kind: Kind::Link("/var/www/x/shared/uploads".into()),
        });
        let new = Tree::new("/var/www/x", entries, None, 5);
        let d = new.delta(Some((&old.id, old.manifest())));
        let sent: Vec<&str> = d
            .send
            .iter()
            .map(|&i| new.entries[i].path.as_str())
            .collect();
        assert_eq!(sent, ["b.php", "new.php", "uploads"]);
        assert_eq!(d.remove, ["gone.php"]);
        assert_eq!(d.from.as_deref(), Some(old.id.as_str()));
        // Nothing to build from: everything goes.
        assert_eq!(new.delta(None).send.len(), 4);
        // A manifest naming paths outside a release: never removed.
        let evil = format!(
            "{}F\t644\tab\t../../etc/passwd\nL\tx\t/etc\n",
            old.manifest()
        );
        assert_eq!(new.delta(Some((&old.id, &evil))).remove, ["gone.php"]);
        // The same release: nothing at all.
        let same = new.delta(Some(("x", new.manifest())));
        assert!(same.send.is_empty() && same.remove.is_empty());
    }

    #[test]
    fn the_archive_holds_the_sent_entries_with_their_modes() {
        let mut entries = tree(&[("a.php", "<?php echo 1;"), ("sub/b.txt", "b")]).entries;
        entries.push(Entry {
            path: "up".into(),
            kind: Kind::Link("/srv/shared/up".into()),
        });
        if let Kind::File { mode, .. } = &mut entries[1].kind {
            *mode = 0o755;
        }
        let t = Tree::new("/var/www/x", entries, None, 5);
        let gz = t.archive(&[1, 2]).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        let got: Vec<(String, u32, Option<String>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("sub/b.txt".to_string(), 0o755, None),
                ("up".to_string(), 0o777, Some("/srv/shared/up".to_string()))
            ]
        );
    }

    #[test]
    fn paths_that_cannot_be_in_a_manifest_are_named() {
        for bad in ["", "/abs", "a/../b", "a//b", "a\tb", "a\nb", "a\\b", "./a"] {
            assert!(entry_path_problem(bad).is_some(), "{bad:?}");
        }
        assert!(entry_path_problem("wp-content/a b.php").is_none());
    }
}
