//! The facts probe: the one script a host runs to describe itself, built from what the host
//! should look like. Every inventory-derived word is quoted; a converged host answers with builtins
//! but for a handful of processes.

use crate::component::Beside;
use crate::desired::{Desired, PathState};
use crate::facts::SYSTEMD_TEST;
use crate::host_state;
use crate::quote::shell_word;
use crate::release::Release;
use crate::render::manifest::sha256_hex;
use std::collections::HashSet;

/// In place of a hash: the file's content is never read back (a key made on the host).
pub const NEVER_FETCH: &str = "+";

/// What the probe must ask about one host.
#[derive(Debug, Clone, Default)]
pub struct ProbeRequest {
    pub packages: Vec<String>,
    /// Managed paths with the sha256 the file should have (`None` for non-files, or to always fetch).
    pub paths: Vec<(String, Option<String>)>,
    /// Services with their pid file and process name (hosts without systemd).
    pub services: Vec<(String, Option<(String, String)>)>,
    /// (component, snippet).
    pub components: Vec<(String, String)>,
    /// (component, command) run in the background while the probe runs find and sha256sum.
    pub besides: Vec<(String, Beside)>,
    /// Application releases the host should have: (marker, base).
    pub trees: Vec<(String, String)>,
    /// Accounts the host should have, by name.
    pub accounts: Vec<String>,
}

impl ProbeRequest {
    pub fn for_desired(d: &Desired) -> ProbeRequest {
        // A path several sites declare (a directory they share) is asked once.
        let mut asked = HashSet::new();
        let paths = d
            .paths
            .iter()
            .map(|p| {
                let sha = match &p.state {
                    // Its manifest comes back only if it is not the one expected.
                    PathState::Tree(t) => Some(sha256_hex(t.manifest().as_bytes())),
                    PathState::File {
                        content,
                        sensitive: false,
                        ..
                    } if !p.from_previous => Some(sha256_hex(content)),
                    PathState::Made { .. } => Some(NEVER_FETCH.to_string()),
                    _ => None,
                };
                (p.path.clone(), sha)
            })
            .filter(|p| asked.insert(p.clone()))
            .collect();
        ProbeRequest {
            packages: d.packages.clone(),
            paths,
            services: d
                .services
                .iter()
                .map(|s| (s.name.clone(), s.pidfile.clone()))
                .collect(),
            components: d.probes.clone(),
            besides: d.besides.clone(),
            trees: d
                .paths
                .iter()
                .filter_map(|p| match &p.state {
                    PathState::Tree(t) => Some((p.path.clone(), t.base.clone())),
                    _ => None,
                })
                .collect(),
            accounts: d.accounts.iter().map(|a| a.name.clone()).collect(),
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

    // The sections below keep the processes a probe starts on the host to a handful (one dpkg-query,
    // one find, one sha256sum, one systemctl, one per component), whatever the number of paths and
    // services: a converged host answers with builtins for the rest.
    /// The packages of the host's release, named for the dpkg section after the paths' find.
    fn packages_section(&self, s: &mut String) {
        if self.packages.is_empty() {
            return;
        }
        // Names from components only, in Debian's syntax: no character the unquoted `$pkgs`
        // below would split or expand.
        debug_assert!(self.packages.iter().all(|p| p
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.:".contains(&b))));
        s.push_str(&format!("pkgs={}\n", shell_word(&self.packages.join(" "))));
    }

    /// For a release the host lacks: the one it runs, and that release's manifest (gzip'd, one
    /// line), which the plan builds the new one from.
    fn trees_section(&self, s: &mut String) {
        for (marker, base) in &self.trees {
            let (m, b) = (shell_word(marker), shell_word(base));
            s.push_str(&format!(
                "if [ ! -f {m} ]; then c=$(readlink {b}/current 2>/dev/null); c=${{c##*/}}\n\
                   case \"$c\" in *[!0-9a-f]* | '') ;; *) [ -f {b}/.provision/\"$c\".manifest ] && \
                   echo '@tree '{m} \"$c\" \"$(gzip -1c < {b}/.provision/\"$c\".manifest | base64 -w0)\" ;; esac\n\
                 fi\n"
            ));
        }
    }

    /// The lines of /etc/passwd and /etc/group named as a desired account, as they are: read by
    /// one `awk` (with dash's builtins, a byte per system call: a few milliseconds once a host
    /// has the users of many sites), and only when the host should have accounts.
    fn accounts_section(&self, s: &mut String) {
        if self.accounts.is_empty() {
            return;
        }
        // Account names are site names (`spec::parse_site_name`): no space or backslash for awk's
        // `-v` to read.
        debug_assert!(self
            .accounts
            .iter()
            .all(|n| !n.is_empty() && !n.contains([' ', '\\'])));
        let names = shell_word(&self.accounts.join(" "));
        s.push_str(&format!(
            "awk -v names={names} 'BEGIN {{ n = split(names, a, \" \"); for (i = 1; i <= n; i++) want[a[i]] }} \
             {{ k = $0; sub(/:.*/, \"\", k) }} k in want {{ print (FILENAME == \"/etc/passwd\" ? \"@pw \" : \"@gr \") $0 }}' \
             /etc/passwd /etc/group 2>/dev/null\n"
        ));
    }

    fn services_section(&self, s: &mut String) {
        if !self.services.is_empty() {
            let names: Vec<String> = self.services.iter().map(|(n, _)| shell_word(n)).collect();
            let names = names.join(" ");
            // systemd: one systemctl for every unit, one line each, in order. Without it: the
            // pid file and the process it names (what the init scripts' status does, without
            // running them).
            s.push_str(&format!(
                "if {SYSTEMD_TEST}; then\n\
                   st=$(systemctl is-active {names} 2>/dev/null)\n\
                   for n in {names}; do l=${{st%%\"$nl\"*}}; echo \"@svc $n ${{l:-unknown}}\"; case \"$st\" in *\"$nl\"*) st=${{st#*\"$nl\"}} ;; *) st= ;; esac; done\n\
                 else\n"
            ));
            for (name, pidfile) in &self.services {
                let n = shell_word(name);
                match pidfile {
                    Some((file, process)) => s.push_str(&format!(
                        "  p=; c=; {{ read -r p < {}; }} 2>/dev/null; [ -n \"$p\" ] && {{ read -r c < \"/proc/$p/comm\"; }} 2>/dev/null\n\
                           if [ \"$c\" = {} ]; then echo \"@svc {n} active\"; else echo \"@svc {n} inactive\"; fi\n",
                        shell_word(file),
                        shell_word(process),
                    )),
                    None => s.push_str(&format!(
                        "  if service {n} status >/dev/null 2>&1; then echo \"@svc {n} active\"; else echo \"@svc {n} inactive\"; fi\n"
                    )),
                }
            }
            s.push_str("fi\n");
        }
        if self.components.is_empty() {
            return;
        }
        // Each snippet runs in the probe's own shell (no process of its own) between two marker
        // lines; the parser gives the lines between them to the component. The end marker starts
        // on a line of its own even after output without a final newline. Snippets never `exit`
        // nor `set` the probe's arguments (a test checks).
        for (component, snippet) in &self.components {
            s.push_str(&marker(component));
            s.push_str(&format!("{{ {snippet}\n}} 2>/dev/null\n"));
            s.push_str(SECTION_END);
        }
    }
}

/// `echo '@@c NAME'`: a component's section starts.
fn marker(component: &str) -> String {
    format!("echo {}\n", shell_word(&format!("@@c {component}")))
}

const SECTION_END: &str = "printf '\\n@@c-end\\n'\n";

/// Background commands run in turn instead, in the probe's own order (the branches of a probe
/// for several releases asked different ones).
fn besides_in_turn<'a>(besides: impl IntoIterator<Item = &'a (String, Beside)>, s: &mut String) {
    for (component, b) in besides {
        s.push_str(&marker(component));
        match b {
            Beside::Output(cmd) => s.push_str(&format!("{{ {cmd}\n}} < /dev/null 2>/dev/null\n")),
            Beside::Status(cmd) => s.push_str(&format!(
                "{{ {cmd}\n}} < /dev/null > /dev/null 2>&1; echo \"exit $?\"\n"
            )),
        }
        s.push_str(SECTION_END);
    }
}

/// Starts the background commands: those that report a status first, then the first that
/// prints, after its section's marker. From here until `besides_end` the probe prints nothing,
/// so that command's output is all its section holds.
fn besides_start(besides: &[(String, Beside)], s: &mut String) {
    for (i, (_, b)) in besides.iter().enumerate() {
        if let Beside::Status(cmd) = b {
            s.push_str(&format!("{cmd} < /dev/null > /dev/null 2>&1 &\nbs{i}=$!\n"));
        }
    }
    if let Some((component, Beside::Output(cmd))) =
        besides.iter().find(|(_, b)| matches!(b, Beside::Output(_)))
    {
        s.push_str(&marker(component));
        s.push_str(&format!("{cmd} < /dev/null 2>/dev/null &\nbo=$!\n"));
    }
}

/// Waits for the background commands and closes their sections; any further command that
/// prints runs now, in turn.
fn besides_end(besides: &[(String, Beside)], s: &mut String) {
    let mut outputs = besides
        .iter()
        .filter(|(_, b)| matches!(b, Beside::Output(_)));
    if outputs.next().is_some() {
        s.push_str("wait $bo\n");
        s.push_str(SECTION_END);
    }
    for (i, (component, b)) in besides.iter().enumerate() {
        if let Beside::Status(_) = b {
            s.push_str(&marker(component));
            s.push_str(&format!("wait $bs{i}; echo \"exit $?\"\n"));
            s.push_str(SECTION_END);
        }
    }
    besides_in_turn(outputs, s);
}

/// Adds paths to the ones the probe looks at: `set -- "$@" PATH...` and their desired hashes to
/// `$want` (`HASH PATH` lines, `-` to always fetch). `paths_check` then looks at all of them at once.
fn add_paths(paths: &[(String, Option<String>)], s: &mut String) {
    if paths.is_empty() {
        return;
    }
    let all: Vec<String> = paths.iter().map(|(p, _)| shell_word(p)).collect();
    s.push_str(&format!("set -- \"$@\" {}\n", all.join(" ")));
    let lines: String = paths
        .iter()
        .map(|(p, sha)| format!("{} {}\n", sha.as_deref().unwrap_or("-"), p))
        .collect();
    s.push_str(&format!("want=\"$want\"{}\n", shell_word(&lines)));
}

/// Type, mode, owner and link target of every path and the times of apt's package lists (one
/// `find`: a managed path is printed and not descended into, the lists directory is read one
/// level down), and the sha256 of every file (one `sha256sum` for all). The two processes come
/// first and print nothing: the background commands run meanwhile.
///
/// This and the two programs below are shell files beside this one, sent as they are (so they
/// hold no comments: those would travel to every host on every probe).
const FIND_AND_SUMS: &str = include_str!("probe/find_and_sums.sh");

/// What `FIND_AND_SUMS` found, printed, and the content of the regular files (not links) whose
/// sha256 differs from the desired one or that are always fetched (`-`), all in one archive:
/// `@files BASE64(GZIP(TAR))`, every byte as it is, whatever the bytes.
///
/// One `awk` picks those files: `$want` (`HASH PATH` lines), then find's and sha256sum's lines,
/// which answer only for what exists (sha256sum only for files, through links) and in the order
/// asked, so they are taken from the front in step with `$want`. (A loop of the shell's own over
/// a thousand paths cost most of a no-op's probe: dash reads a here-document a byte per system
/// call, and cutting a line off the front of a long string copies the rest.) One `tar` reads them
/// all (`--hard-dereference`: a file that is a hard link of another comes back whole).
const PATHS_CHECK: &str = include_str!("probe/paths_check.sh");

/// The packages' states and versions: dpkg-query's answer, kept in provision's state directory
/// with what it depends on (inode, change time and size of dpkg's status file and of its journal
/// directory, from the find above: its last lines, left in the positional parameters, and the
/// names asked), and read back with builtins while that
/// is unchanged. dpkg-query parses the whole status file (a process of its own, and time that grows
/// with the packages installed); dpkg replaces the file (a new inode) or adds to
/// the journal on every change. The key is taken before dpkg-query runs, so a change in between
/// only makes the next probe ask again. A cache without its end line (cut short) is not used.
const DPKG: &str = include_str!("probe/dpkg.sh");

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
        let common: Vec<(String, Option<String>)> = match requests.split_first() {
            Some(((_, first), rest)) if !rest.is_empty() => {
                let others: Vec<HashSet<&(String, Option<String>)>> =
                    rest.iter().map(|(_, r)| r.paths.iter().collect()).collect();
                first
                    .paths
                    .iter()
                    .filter(|p| others.iter().all(|o| o.contains(p)))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        let shared: HashSet<&(String, Option<String>)> = common.iter().collect();
        let branches = requests
            .into_iter()
            .map(|(r, mut req)| {
                req.paths.retain(|p| !shared.contains(p));
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
        let mut s = String::from(concat!(
            "#!/bin/sh\n# provision facts probe: reads the host; writes only provision's own state (its key on first contact, dpkg's answer kept)\n\
             export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             nl='\n'; lists_age=; pkgs=\n\
             tag() { t=$1; o=$2; while [ -n \"$o\" ]; do l=${o%%\"$nl\"*}; echo \"$t $l\"; [ \"$l\" = \"$o\" ] && break; o=${o#*\"$nl\"}; done; }\n\
             . /etc/os-release 2>/dev/null; echo \"@os ${ID:-unknown} ${VERSION_ID:-unknown} ${VERSION_CODENAME:-unknown}\"\n\
             if ", crate::facts::systemd_test!(), "; then echo '@init systemd'; else echo '@init none'; fi\n\
             set -- /sys/devices/system/cpu/cpu[0-9]*; m=0; while read -r k v _; do [ \"$k\" = MemTotal: ] && { m=$v; break; }; done < /proc/meminfo; echo \"@host $# $m\"\n",
        ));
        // First: it makes provision's state directory on first contact, which the paths below may
        // include.
        s.push_str(&host_state::probe());
        // The background commands start after the release's branch, where the probe's own
        // output pauses, when every branch asks the same ones (they do not depend on the
        // release); otherwise each branch runs its own in turn.
        let besides: Option<&[(String, Beside)]> = match self.branches.split_first() {
            Some(((_, first), rest)) if rest.iter().all(|(_, r)| r.besides == first.besides) => {
                Some(&first.besides)
            }
            _ => None,
        };
        let known = |s: &mut String, req: &ProbeRequest| {
            req.packages_section(s);
            req.accounts_section(s);
            add_paths(&req.paths, s);
            req.services_section(s);
            req.trees_section(s);
            if besides.is_none() {
                besides_in_turn(&req.besides, s);
            }
        };
        // The paths of the host's release are gathered first and looked at once, after the case.
        s.push_str("set --\nwant=\n");
        match self.branches.as_slice() {
            [(None, req)] => known(&mut s, req),
            branches => {
                add_paths(&self.common, &mut s);
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
        let besides = besides.unwrap_or_default();
        besides_start(besides, &mut s);
        s.push_str(FIND_AND_SUMS);
        besides_end(besides, &mut s);
        s.push_str(PATHS_CHECK);
        s.push_str(DPKG);
        // The package lists' age, when a package is missing (only then does the plan look at
        // it): their times (`@aptm`, from the paths' find above) and the host's clock, compared
        // by the parser. The clock without a process: boot time plus uptime. (dash reads a byte
        // per system call, and /proc/stat's interrupt line grows with the machine.)
        s.push_str(
            "if [ -n \"$lists_age\" ]; then\n\
             b=; while read -r k v; do [ \"$k\" = btime ] && { b=$v; break; }; done < /proc/stat\n\
             read -r u _ < /proc/uptime\n\
             [ -n \"$b\" ] && echo \"@now $((b + ${u%.*}))\"\n\
             fi\n",
        );
        s.push_str("echo '@end'\n");
        s
    }
}
