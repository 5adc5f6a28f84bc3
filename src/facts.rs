//! What a host is like now, learned in one round trip: one probe script per host, and a pure parser
//! of its output, tested on canned output.
//!
//! The probe is told the desired sha256 of every managed file and sends back the content only of
//! files that differ, so a converged host answers with a few hundred bytes. Files that hold secrets
//! are never compared by a hash sent in the probe (the probe is shown with `-v`): their content
//! always comes back. Components add snippets of their own; their output comes back to them
//! untouched, tagged with their name.

use crate::host_state::HostState;
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};

/// The shell test that systemd is PID 1, as a literal (for consts made with `concat!`).
macro_rules! systemd_test {
    () => {
        "[ -d /run/systemd/system ]"
    };
}
pub(crate) use systemd_test;

/// The shell test that systemd is PID 1: services then go through systemctl. `apply.sh` keeps its
/// own copy (it is embedded whole; a test holds it to this one).
pub const SYSTEMD_TEST: &str = systemd_test!();

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
    pub os_codename: String,
    /// systemd is PID 1 (`/run/systemd/system` exists): services go through systemctl.
    pub systemd: bool,
    /// Desired packages and their installed version, `None` when not installed.
    pub packages: BTreeMap<String, Option<String>>,
    /// Missing packages apt has no candidate for: the package lists need an update.
    pub no_candidate: BTreeSet<String>,
    /// Seconds since the package lists were last updated; `None` when there are none.
    pub apt_lists_age: Option<u64>,
    pub paths: BTreeMap<String, PathFact>,
    /// The desired accounts' entries in /etc/passwd, by name (absent: no such user).
    pub users: BTreeMap<String, User>,
    /// The gids of the groups named as desired accounts, by name (absent: no such group).
    pub groups: BTreeMap<String, u32>,
    /// Service name → running.
    pub services: BTreeMap<String, bool>,
    /// Each component's own probe output, by component name.
    pub components: BTreeMap<String, Vec<String>>,
    /// Release marker → (the release the host runs now, its manifest), for a release the host
    /// does not have yet.
    pub trees: BTreeMap<String, (String, String)>,
    pub state: HostState,
}

impl Facts {
    /// The current content of a path the probe sent back.
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        match self.paths.get(path) {
            Some(PathFact::File {
                content: Some(c), ..
            }) => Some(c.clone()),
            _ => None,
        }
    }
}

/// A user's entry in /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

impl User {
    /// `name:x:uid:gid:gecos:home:shell`, as /etc/passwd has it: (name, entry).
    fn parse(line: &str) -> Option<(String, User)> {
        let f: Vec<&str> = line.split(':').collect();
        let [name, _, uid, gid, gecos, home, shell] = f.as_slice() else {
            return None;
        };
        Some((
            name.to_string(),
            User {
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                gecos: gecos.to_string(),
                home: home.to_string(),
                shell: shell.to_string(),
            },
        ))
    }

    /// One provision made (see `desired::Account::MARK`).
    pub fn is_provisions(&self) -> bool {
        self.gecos.starts_with(crate::desired::Account::MARK)
    }
}

/// `name:x:gid:members`, as /etc/group has it: (name, gid).
fn group_of(line: &str) -> Option<(String, u32)> {
    let mut f = line.split(':');
    let (name, _, gid) = (f.next()?, f.next()?, f.next()?);
    Some((name.to_string(), gid.parse().ok()?))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFact {
    Absent,
    /// `content` is present only when the file's sha256 differs from the desired one (or the file
    /// is always fetched).
    File {
        mode: u32,
        owner: String,
        group: String,
        content: Option<Vec<u8>>,
    },
    Dir {
        mode: u32,
        owner: String,
        group: String,
    },
    Link {
        target: String,
    },
    /// Something else (a socket, a device): never touched.
    Other(String),
}

/// The release line of a probe's output: (`ID`, `VERSION_ID`, `VERSION_CODENAME`).
pub fn os_of(output: &str) -> Option<(String, String, String)> {
    output.lines().find_map(|l| {
        let rest = l.strip_prefix("@os ")?;
        let mut it = rest.split_whitespace();
        Some((
            it.next().unwrap_or("unknown").to_string(),
            it.next().unwrap_or("unknown").to_string(),
            it.next().unwrap_or("unknown").to_string(),
        ))
    })
}

mod probe;

pub use probe::{Probe, ProbeRequest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The files in a probe's `@files` archive (base64 of a gzip'd tar), by path.
fn files_of(b64: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let gz = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
    let mut files = Vec::new();
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = String::from_utf8(entry.path_bytes().into_owned()).ok()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).ok()?;
        files.push((path, bytes));
    }
    Some(files)
}

/// Parses the probe's output. Unknown lines are ignored (a login banner, a shell's noise), but the
/// closing `@end` must be there: a cut-off probe is an error, not an empty host.
pub fn parse(output: &str, req: &ProbeRequest) -> Result<Facts, ParseError> {
    let mut reading = Reading::default();
    for line in output.lines() {
        reading.line(line)?;
    }
    reading.finish(req)
}

/// A probe's output read so far: the facts its lines say at once, and what is put together only
/// once every line is in (file contents, packages, the package lists' age, the host's state).
#[derive(Default)]
struct Reading {
    facts: Facts,
    ended: bool,
    contents: BTreeMap<String, Vec<u8>>,
    installed: BTreeMap<String, String>,
    candidates: BTreeSet<String>,
    state: Vec<String>,
    lists: Option<f64>,
    now: Option<f64>,
    /// The component whose snippet's output this is: the lines between `@@c NAME` and `@@c-end`,
    /// whatever they hold.
    section: Option<String>,
}

impl Reading {
    fn line(&mut self, line: &str) -> Result<(), ParseError> {
        if let Some(component) = self.section.take() {
            if line == "@@c-end" {
                self.end_section(&component);
            } else {
                self.facts
                    .components
                    .entry(component.clone())
                    .or_default()
                    .push(line.to_string());
                self.section = Some(component);
            }
            return Ok(());
        }
        if let Some(component) = line.strip_prefix("@@c ") {
            self.section = Some(component.to_string());
            return Ok(());
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        self.tagged(tag, rest, line)
    }

    /// Like a shell's `$(...)`: trailing empty lines are not output, and a snippet that printed
    /// nothing has no entry.
    fn end_section(&mut self, component: &str) {
        let components = &mut self.facts.components;
        if let Some(lines) = components.get_mut(component) {
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            if lines.is_empty() {
                components.remove(component);
            }
        }
    }

    /// One line of the probe's own, `TAG REST`.
    fn tagged(&mut self, tag: &str, rest: &str, line: &str) -> Result<(), ParseError> {
        let f = &mut self.facts;
        match tag {
            "@os" => {
                let mut it = rest.split_whitespace();
                f.os_id = it.next().unwrap_or("unknown").to_string();
                f.os_version = it.next().unwrap_or("unknown").to_string();
                f.os_codename = it.next().unwrap_or("unknown").to_string();
            }
            "@init" => f.systemd = rest == "systemd",
            // The machine's size, read by the components that size themselves (`tuning`).
            "@host" => f
                .components
                .entry("host".into())
                .or_default()
                .push(rest.to_string()),
            "@dpkg" => self.dpkg(rest),
            "@cand" => {
                self.candidates.insert(rest.to_string());
            }
            "@aptm" => {
                if let Ok(t) = rest.trim().parse::<f64>() {
                    self.lists = Some(self.lists.map_or(t, |l: f64| l.max(t)));
                }
            }
            "@now" => self.now = rest.trim().parse::<f64>().ok(),
            "@path" => {
                let (path, fact) = path_fact(rest, line)?;
                f.paths.insert(path, fact);
            }
            "@files" => self.contents.extend(
                files_of(rest).ok_or_else(|| ParseError("bad archive of file contents".into()))?,
            ),
            // The lines of /etc/passwd and /etc/group of the desired accounts' names, as they are.
            "@pw" => {
                let (name, user) = User::parse(rest)
                    .ok_or_else(|| ParseError(format!("bad /etc/passwd line {rest:?}")))?;
                f.users.insert(name, user);
            }
            "@gr" => {
                let (name, gid) = group_of(rest)
                    .ok_or_else(|| ParseError(format!("bad /etc/group line {rest:?}")))?;
                f.groups.insert(name, gid);
            }
            "@svc" => {
                let (name, st) = rest.split_once(' ').unwrap_or((rest, ""));
                f.services.insert(name.to_string(), st.trim() == "active");
            }
            "@tree" => {
                let (marker, from_and_manifest) = tree_of(rest)?;
                f.trees.insert(marker, from_and_manifest);
            }
            "@state" => self.state.push(rest.to_string()),
            "@end" => self.ended = true,
            _ => {}
        }
        Ok(())
    }

    /// `NAME STATUS VERSION`: a package is installed when dpkg says `ii`.
    fn dpkg(&mut self, rest: &str) {
        let mut it = rest.splitn(3, ' ');
        let (name, status, ver) = (
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
            it.next().unwrap_or(""),
        );
        if status == "ii" {
            self.installed
                .insert(name.to_string(), ver.trim().to_string());
        }
    }

    /// The facts, once every line is read; what the request asked about and the probe did not
    /// mention is absent.
    fn finish(self, req: &ProbeRequest) -> Result<Facts, ParseError> {
        if !self.ended {
            return Err(ParseError(
                "the facts probe was cut off (no @end line)".into(),
            ));
        }
        let mut f = self.facts;
        f.state = HostState::read(&self.state);
        if let (Some(l), Some(n)) = (self.lists, self.now) {
            f.apt_lists_age = Some((n - l).max(0.0) as u64);
        }
        for (path, bytes) in self.contents {
            if let Some(PathFact::File { content, .. }) = f.paths.get_mut(&path) {
                *content = Some(bytes);
            }
        }
        for (path, _) in &req.paths {
            f.paths.entry(path.clone()).or_insert(PathFact::Absent);
        }
        for p in &req.packages {
            let version = self.installed.get(p).cloned();
            if version.is_none() && !self.candidates.contains(p) {
                f.no_candidate.insert(p.clone());
            }
            f.packages.insert(p.clone(), version);
        }
        Ok(f)
    }
}

/// A `@path` line: PATH TYPE MODE OWNER GROUP SIZE LINK-TARGET (the size is the probe's own, to
/// tell whether a file's lines showed all of it).
fn path_fact(rest: &str, line: &str) -> Result<(String, PathFact), ParseError> {
    let parts: Vec<&str> = rest.splitn(7, ' ').collect();
    if parts.len() < 6 {
        return Err(ParseError(format!("bad path line {line:?}")));
    }
    let mode = u32::from_str_radix(parts[2], 8)
        .map_err(|_| ParseError(format!("bad mode in {line:?}")))?;
    let (owner, group) = (parts[3].to_string(), parts[4].to_string());
    let fact = match parts[1] {
        "f" => PathFact::File {
            mode,
            owner,
            group,
            content: None,
        },
        "d" => PathFact::Dir { mode, owner, group },
        "l" => PathFact::Link {
            target: parts.get(6).unwrap_or(&"").to_string(),
        },
        other => PathFact::Other(other.to_string()),
    };
    Ok((parts[0].to_string(), fact))
}

/// A `@tree` line: MARKER FROM-ID BASE64(GZIP(MANIFEST)); the marker path is quoted by nothing and
/// may hold spaces, so it is read from the right. (marker, (from, manifest)).
fn tree_of(rest: &str) -> Result<(String, (String, String)), ParseError> {
    let mut it = rest.rsplitn(3, ' ');
    let (b64, from, marker) = (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    );
    let manifest = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|gz| {
            let mut m = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut m)
                .ok()
                .map(|_| m)
        })
        .ok_or_else(|| ParseError(format!("bad release manifest for {marker}")))?;
    Ok((marker.to_string(), (from.to_string(), manifest)))
}

#[cfg(test)]
mod tests;
