//! What a host is like now, learned in one round trip: one probe script per host, and a pure parser
//! of its output, tested on canned output.
//!
//! The probe is told the desired sha256 of every managed file and sends back the content only of
//! files that differ, so a converged host answers with a few hundred bytes. Files that hold secrets
//! are never compared by a hash sent in the probe (the probe is shown with `-v`): their content
//! always comes back. Components add snippets of their own; their output comes back to them
//! untouched, tagged with their name.

use crate::desired::{Desired, PathState};
use crate::host_state::{self, HostState};
use crate::quote::shell_word;
use crate::release::Release;
use crate::render::manifest::sha256_hex;
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};

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
    /// Service name → running.
    pub services: BTreeMap<String, bool>,
    /// Each component's own probe output, by component name.
    pub components: BTreeMap<String, Vec<String>>,
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

/// What the probe must ask about one host.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub packages: Vec<String>,
    /// Managed paths with the sha256 the file should have (`None` for non-files, or to always fetch).
    pub paths: Vec<(String, Option<String>)>,
    pub services: Vec<String>,
    /// (component, snippet).
    pub components: Vec<(String, String)>,
}

impl ProbeRequest {
    pub fn for_desired(d: &Desired) -> ProbeRequest {
        let paths = d
            .paths
            .iter()
            .map(|p| {
                let sha = match &p.state {
                    PathState::File {
                        content,
                        sensitive: false,
                        ..
                    } if !p.from_previous => Some(sha256_hex(content)),
                    _ => None,
                };
                (p.path.clone(), sha)
            })
            .collect();
        ProbeRequest {
            packages: d.packages.clone(),
            paths,
            services: d.services.iter().map(|s| s.name.clone()).collect(),
            components: d.probes.clone(),
        }
    }

    /// The probe for one known release (tests, and hosts whose release is given).
    pub fn script(&self) -> String {
        Probe {
            common: Vec::new(),
            branches: vec![(None, self.clone())],
        }
        .script()
    }

    fn packages_section(&self, s: &mut String) {
        if self.packages.is_empty() {
            return;
        }
        let pkgs: Vec<String> = self.packages.iter().map(|p| shell_word(p)).collect();
        s.push_str(&format!(
            "out=$(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {0} 2>/dev/null)\n\
             printf '%s\\n' \"$out\" | while IFS= read -r l; do echo \"@dpkg $l\"; done\n\
             nl='\n'; missing=; for p in {0}; do case \"$nl$out\" in *\"$nl$p ii \"*) ;; *) missing=\"$missing $p\";; esac; done\n\
             [ -z \"$missing\" ] || apt-cache policy $missing 2>/dev/null | \
             awk '/^[^ ]/ {{ p = $1; sub(/:$/, \"\", p) }} /Candidate:/ && $2 != \"(none)\" {{ print \"@cand \" p }}'\n",
            pkgs.join(" ")
        ));
    }

    fn services_section(&self, s: &mut String) {
        for svc in &self.services {
            s.push_str(&format!(
                "if [ -d /run/systemd/system ]; then st=$(systemctl is-active {0} 2>/dev/null); \
                 else if service {0} status >/dev/null 2>&1; then st=active; else st=inactive; fi; fi; echo \"@svc {0} $st\"\n",
                shell_word(svc)
            ));
        }
        for (component, snippet) in &self.components {
            // Run in a subshell so a snippet's `exit` or variables cannot disturb the probe.
            s.push_str(&format!(
                "( {snippet}\n) 2>/dev/null | while IFS= read -r l; do echo \"@c {} $l\"; done\n",
                shell_word(component)
            ));
        }
    }
}

/// Type, mode, owner and link target of every path (one `find`), and the content of the files
/// whose sha256 differs from the desired one (or that are always fetched: `None`).
fn paths_section(paths: &[(String, Option<String>)], s: &mut String) {
    if paths.is_empty() {
        return;
    }
    let all: Vec<String> = paths.iter().map(|(p, _)| shell_word(p)).collect();
    s.push_str(&format!(
        "find {} -maxdepth 0 -printf '@path %p %y %m %u %g %l\\n' 2>/dev/null\n",
        all.join(" ")
    ));
    s.push_str("while read -r h p; do\n  if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then\n    if [ \"$h\" = - ] || [ \"$(sha256sum < \"$p\" | cut -d' ' -f1)\" != \"$h\" ]; then\n      echo \"@content $p $(base64 -w0 < \"$p\")\"\n    fi\n  fi\ndone <<'PROVISION_PATHS'\n");
    for (p, sha) in paths {
        s.push_str(&format!("{} {}\n", sha.as_deref().unwrap_or("-"), p));
    }
    s.push_str("PROVISION_PATHS\n");
}

/// One probe for a host whose release is not known yet: what every candidate release would want,
/// the paths they all share asked once, the rest in a branch per release (`ID-VERSION_ID`). The
/// host answers for the release it runs, in the same round trip.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Paths (and their desired hashes) the same for every candidate release.
    common: Vec<(String, Option<String>)>,
    /// `None`: the only branch, whatever the release.
    branches: Vec<(Option<Release>, ProbeRequest)>,
}

impl Probe {
    pub fn new(renders: &[(Release, &Desired)]) -> Probe {
        let requests: Vec<(Release, ProbeRequest)> = renders
            .iter()
            .map(|(r, d)| (*r, ProbeRequest::for_desired(d)))
            .collect();
        let common: Vec<(String, Option<String>)> = match requests.first() {
            Some((_, first)) if requests.len() > 1 => first
                .paths
                .iter()
                .filter(|p| requests.iter().all(|(_, r)| r.paths.contains(p)))
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        let branches = requests
            .into_iter()
            .map(|(r, mut req)| {
                req.paths.retain(|p| !common.contains(p));
                (Some(r), req)
            })
            .collect();
        Probe { common, branches }
    }

    /// What the probe asked of a host that runs `release`: the shared part and its branch.
    pub fn request_for(&self, release: Release) -> Option<ProbeRequest> {
        let (_, branch) = self
            .branches
            .iter()
            .find(|(r, _)| r.is_none_or(|r| r == release))?;
        let mut req = branch.clone();
        let mut paths = self.common.clone();
        paths.extend(branch.paths.iter().cloned());
        req.paths = paths;
        Some(req)
    }

    /// The probe: a POSIX sh script whose every inventory-derived word is quoted.
    pub fn script(&self) -> String {
        let mut s = String::from(
            "#!/bin/sh\n# provision facts probe: reads the host; writes only provision's own key on first contact\n\
             export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             . /etc/os-release 2>/dev/null; echo \"@os ${ID:-unknown} ${VERSION_ID:-unknown} ${VERSION_CODENAME:-unknown}\"\n\
             if [ -d /run/systemd/system ]; then echo '@init systemd'; else echo '@init none'; fi\n",
        );
        // First: it makes provision's state directory on first contact, which the paths below may
        // include.
        s.push_str(&host_state::probe());
        let known = |s: &mut String, req: &ProbeRequest| {
            req.packages_section(s);
            paths_section(&req.paths, s);
            req.services_section(s);
        };
        match self.branches.as_slice() {
            [(None, req)] => known(&mut s, req),
            branches => {
                paths_section(&self.common, &mut s);
                s.push_str("case \"${ID:-}-${VERSION_ID:-}\" in\n");
                for (release, req) in branches {
                    if let Some(r) = release {
                        s.push_str(&format!(
                            "{}) \n",
                            shell_word(&format!("{}-{}", r.id, r.version))
                        ));
                        known(&mut s, req);
                        s.push_str(";;\n");
                    }
                }
                s.push_str("esac\n");
            }
        }
        s.push_str(
            "l=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -printf '%T@\\n' 2>/dev/null | sort -n | tail -1)\n\
             [ -n \"$l\" ] && echo \"@aptage $(( $(date +%s) - ${l%.*} ))\"\n",
        );
        s.push_str("echo '@end'\n");
        s
    }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses the probe's output. Unknown lines are ignored (a login banner, a shell's noise), but the
/// closing `@end` must be there: a cut-off probe is an error, not an empty host.
pub fn parse(output: &str, req: &ProbeRequest) -> Result<Facts, ParseError> {
    let mut f = Facts::default();
    let mut ended = false;
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut installed: BTreeMap<String, String> = BTreeMap::new();
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    let mut state: Vec<String> = Vec::new();
    for line in output.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "@os" => {
                let mut it = rest.split_whitespace();
                f.os_id = it.next().unwrap_or("unknown").to_string();
                f.os_version = it.next().unwrap_or("unknown").to_string();
                f.os_codename = it.next().unwrap_or("unknown").to_string();
            }
            "@init" => f.systemd = rest == "systemd",
            "@dpkg" => {
                let mut it = rest.splitn(3, ' ');
                let (name, status, ver) = (
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                );
                if status == "ii" {
                    installed.insert(name.to_string(), ver.trim().to_string());
                }
            }
            "@cand" => {
                candidates.insert(rest.to_string());
            }
            "@aptage" => f.apt_lists_age = rest.trim().parse::<i64>().ok().map(|a| a.max(0) as u64),
            "@path" => {
                let parts: Vec<&str> = rest.splitn(6, ' ').collect();
                if parts.len() < 5 {
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
                        target: parts.get(5).unwrap_or(&"").to_string(),
                    },
                    other => PathFact::Other(other.to_string()),
                };
                f.paths.insert(parts[0].to_string(), fact);
            }
            "@content" => {
                let (path, b64) = rest.split_once(' ').unwrap_or((rest, ""));
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| ParseError(format!("bad base64 content for {path}")))?;
                contents.insert(path.to_string(), bytes);
            }
            "@svc" => {
                let (name, st) = rest.split_once(' ').unwrap_or((rest, ""));
                f.services.insert(name.to_string(), st.trim() == "active");
            }
            "@c" => {
                let (component, l) = rest.split_once(' ').unwrap_or((rest, ""));
                f.components
                    .entry(component.to_string())
                    .or_default()
                    .push(l.to_string());
            }
            "@state" => state.push(rest.to_string()),
            "@end" => ended = true,
            _ => {}
        }
    }
    if !ended {
        return Err(ParseError(
            "the facts probe was cut off (no @end line)".into(),
        ));
    }
    f.state = HostState::read(&state);
    for (path, bytes) in contents {
        if let Some(PathFact::File { content, .. }) = f.paths.get_mut(&path) {
            *content = Some(bytes);
        }
    }
    for (path, _) in &req.paths {
        f.paths.entry(path.clone()).or_insert(PathFact::Absent);
    }
    for p in &req.packages {
        let version = installed.get(p).cloned();
        if version.is_none() && !candidates.contains(p) {
            f.no_candidate.insert(p.clone());
        }
        f.packages.insert(p.clone(), version);
    }
    Ok(f)
}

#[cfg(test)]
mod tests;
