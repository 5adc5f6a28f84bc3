//! What a host is like now, learned in one round trip: one probe script per host, and a pure parser
//! of its output, tested on canned output.
//!
//! The probe is told the desired sha256 of every managed file and sends back the content only of
//! files that differ, so a converged host answers with a few hundred bytes.

use crate::desired::{Desired, Handler, PathState};
use crate::manifest::sha256_hex;
use crate::templates::shell_word;
use std::collections::{BTreeMap, BTreeSet};

/// Where provision keeps its own state on a host.
pub const STATE_DIR: &str = "/var/lib/provision";
pub const PENDING_FILE: &str = "/var/lib/provision/pending";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub os_id: String,
    pub os_version: String,
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
    pub db: Option<DbFacts>,
    /// Reloads an earlier apply recorded but did not finish.
    pub pending: Vec<Handler>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathFact {
    Absent,
    /// `content` is present only when the file's sha256 differs from the desired one.
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbFacts {
    /// The server answered queries as root over its socket.
    pub reachable: bool,
    pub databases: BTreeSet<String>,
    /// (user, host) pairs that exist among the ones provision manages.
    pub users: BTreeSet<(String, String)>,
    /// Accounts the inventory needs that the server does not have.
    pub missing_accounts: Vec<(String, String)>,
    /// The demo table has its row.
    pub demo_row: bool,
}

/// What the probe must ask about one host.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub packages: Vec<String>,
    /// Managed paths with the sha256 the file should have (`None` for non-files, or to always fetch).
    pub paths: Vec<(String, Option<String>)>,
    pub services: Vec<String>,
    pub db: Option<DbProbe>,
}

#[derive(Debug, Clone)]
pub struct DbProbe {
    pub name: String,
    /// (user, host) accounts that must exist.
    pub accounts: Vec<(String, String)>,
    pub demo: bool,
}

impl ProbeRequest {
    /// `always_fetch` paths come back with their content whatever their hash (the zone file, whose
    /// serial is read from it).
    pub fn for_desired(d: &Desired, db: Option<DbProbe>, always_fetch: &[String]) -> ProbeRequest {
        let paths = d
            .paths
            .iter()
            .map(|p| {
                let sha = match &p.state {
                    PathState::File { content, .. } if !always_fetch.contains(&p.path) => {
                        Some(sha256_hex(content))
                    }
                    _ => None,
                };
                (p.path.clone(), sha)
            })
            .collect();
        ProbeRequest {
            packages: d.packages.clone(),
            paths,
            services: d.services.iter().map(|s| s.name.clone()).collect(),
            db,
        }
    }

    /// The probe: a POSIX sh script whose every inventory-derived word is quoted.
    pub fn script(&self) -> String {
        let q = |s: &str| shell_word(s);
        let mut s = String::from(
            "#!/bin/sh\n# provision facts probe: read-only\nexport LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             . /etc/os-release 2>/dev/null; echo \"@os ${ID:-unknown} ${VERSION_ID:-unknown}\"\n\
             if [ -d /run/systemd/system ]; then echo '@init systemd'; else echo '@init none'; fi\n",
        );
        if !self.packages.is_empty() {
            let pkgs: Vec<String> = self.packages.iter().map(|p| q(p)).collect();
            s.push_str(&format!(
                "out=$(dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {0} 2>/dev/null)\n\
                 printf '%s\\n' \"$out\" | sed -n 's/^/@dpkg /p'\n\
                 nl='\n'; missing=; for p in {0}; do case \"$nl$out\" in *\"$nl$p ii \"*) ;; *) missing=\"$missing $p\";; esac; done\n\
                 [ -z \"$missing\" ] || apt-cache policy $missing 2>/dev/null | \
                 awk '/^[^ ]/ {{ p = $1; sub(/:$/, \"\", p) }} /Candidate:/ && $2 != \"(none)\" {{ print \"@cand \" p }}'\n",
                pkgs.join(" ")
            ));
        }
        s.push_str(
            "l=$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -printf '%T@\\n' 2>/dev/null | sort -n | tail -1)\n\
             [ -n \"$l\" ] && echo \"@aptage $(( $(date +%s) - ${l%.*} ))\"\n",
        );
        if !self.paths.is_empty() {
            let all: Vec<String> = self.paths.iter().map(|(p, _)| q(p)).collect();
            // One find for type, mode, owner and link target of every path; missing ones print nothing.
            s.push_str(&format!(
                "find {} -maxdepth 0 -printf '@path %p %y %m %u %g %l\\n' 2>/dev/null\n",
                all.join(" ")
            ));
            s.push_str("while read -r h p; do\n  if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then\n    if [ \"$h\" = - ] || [ \"$(sha256sum < \"$p\" | cut -d' ' -f1)\" != \"$h\" ]; then\n      echo \"@content $p $(base64 -w0 < \"$p\")\"\n    fi\n  fi\ndone <<'PROVISION_PATHS'\n");
            for (p, sha) in &self.paths {
                s.push_str(&format!("{} {}\n", sha.as_deref().unwrap_or("-"), p));
            }
            s.push_str("PROVISION_PATHS\n");
        }
        for svc in &self.services {
            s.push_str(&format!(
                "if [ -d /run/systemd/system ]; then st=$(systemctl is-active {0} 2>/dev/null); \
                 else if service {0} status >/dev/null 2>&1; then st=active; else st=inactive; fi; fi; echo \"@svc {0} $st\"\n",
                q(svc)
            ));
        }
        if let Some(db) = &self.db {
            let mut names: Vec<&String> = db.accounts.iter().map(|(u, _)| u).collect();
            names.sort();
            names.dedup();
            let users: Vec<String> = names
                .iter()
                .map(|u| crate::templates::sql_string(u))
                .collect();
            let sql = format!(
                "SELECT 'db', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}; \
                 SELECT 'user', User, Host FROM mysql.user WHERE User IN ({});",
                crate::templates::sql_string(&db.name),
                users.join(", ")
            );
            s.push_str(&format!(
                "if command -v mariadb >/dev/null 2>&1 && out=$(mariadb -NB -e {} 2>/dev/null); then echo '@dbup'; \
                 printf '%s\\n' \"$out\" | sed 's/^/@dbrow /'; else echo '@dbdown'; fi\n",
                q(&sql)
            ));
            if db.demo {
                s.push_str(&format!(
                    "mariadb -NB -e {} 2>/dev/null | sed 's/^/@demorow /'\n",
                    q(&format!(
                        "SELECT COUNT(*) FROM `{}`.provision_demo WHERE id = 1",
                        db.name
                    ))
                ));
            }
        }
        s.push_str(&format!(
            "[ -f {PENDING_FILE} ] && sed 's/^/@pending /' {PENDING_FILE}\necho '@end'\n"
        ));
        s
    }
}

#[derive(Debug)]
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
    let mut db = DbFacts::default();
    let mut db_seen = false;
    let mut installed: BTreeMap<String, String> = BTreeMap::new();
    let mut candidates: BTreeSet<String> = BTreeSet::new();
    for line in output.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "@os" => {
                let mut it = rest.split_whitespace();
                f.os_id = it.next().unwrap_or("unknown").to_string();
                f.os_version = it.next().unwrap_or("unknown").to_string();
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
                let bytes = base64_decode(b64)
                    .ok_or_else(|| ParseError(format!("bad base64 content for {path}")))?;
                contents.insert(path.to_string(), bytes);
            }
            "@svc" => {
                let (name, state) = rest.split_once(' ').unwrap_or((rest, ""));
                f.services
                    .insert(name.to_string(), state.trim() == "active");
            }
            "@dbup" => {
                db_seen = true;
                db.reachable = true;
            }
            "@dbdown" => db_seen = true,
            "@dbrow" => {
                let cols: Vec<&str> = rest.split('\t').collect();
                match cols.as_slice() {
                    ["db", name] => {
                        db.databases.insert(name.to_string());
                    }
                    ["user", user, host] => {
                        db.users.insert((user.to_string(), host.to_string()));
                    }
                    _ => {}
                }
            }
            "@demorow" => db.demo_row = rest.trim() == "1",
            "@pending" => {
                if let Some(h) = parse_handler(rest) {
                    if !f.pending.contains(&h) {
                        f.pending.push(h);
                    }
                }
            }
            "@end" => ended = true,
            _ => {}
        }
    }
    if !ended {
        return Err(ParseError(
            "the facts probe was cut off (no @end line)".into(),
        ));
    }
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
    if db_seen {
        // Without the demo app there is no row to look for.
        if !req.db.as_ref().is_some_and(|d| d.demo) {
            db.demo_row = true;
        }
        if db.reachable {
            if let Some(d) = &req.db {
                db.missing_accounts = d
                    .accounts
                    .iter()
                    .filter(|a| !db.users.contains(a))
                    .cloned()
                    .collect();
            }
        }
        f.db = Some(db);
    }
    Ok(f)
}

/// `reload nginx`, `restart mariadb`, `run-sql /path`: how handlers are written to the pending file.
pub fn handler_line(h: &Handler) -> String {
    match h {
        Handler::Reload(s) => format!("reload {s}"),
        Handler::Restart(s) => format!("restart {s}"),
        Handler::Start(s) => format!("start {s}"),
        Handler::RunSql(p) => format!("run-sql {p}"),
    }
}

pub fn parse_handler(line: &str) -> Option<Handler> {
    let (verb, arg) = line.trim().split_once(' ')?;
    let arg = arg.to_string();
    match verb {
        "reload" => Some(Handler::Reload(arg)),
        "restart" => Some(Handler::Restart(arg)),
        "start" => Some(Handler::Start(arg)),
        "run-sql" => Some(Handler::RunSql(arg)),
        _ => None,
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ProbeRequest {
        ProbeRequest {
            packages: vec!["nginx".into(), "php8.2-fpm".into()],
            paths: vec![
                ("/etc/nginx/nginx.conf".into(), Some("abc".into())),
                ("/etc/nginx/sites-enabled/foobar.com.conf".into(), None),
                ("/etc/nginx/sites-enabled/default".into(), None),
                ("/var/www/foobar.com".into(), None),
            ],
            services: vec!["nginx".into()],
            db: Some(DbProbe {
                name: "foobar".into(),
                accounts: vec![
                    ("foobar".into(), "localhost".into()),
                    ("foobar".into(), "10.0.0.5".into()),
                ],
                demo: true,
            }),
        }
    }

    const CANNED: &str = "Welcome banner\n@os debian 12\n@init systemd\n@dpkg nginx ii 1.22.1-9+deb12u1\n@dpkg php8.2-fpm rc 8.2.1\n\
@aptage 120\n@path /etc/nginx/nginx.conf f 644 root root \n\
@path /etc/nginx/sites-enabled/foobar.com.conf l 777 root root ../sites-available/foobar.com.conf\n\
@path /var/www/foobar.com d 755 root www-data \n@content /etc/nginx/nginx.conf aGVsbG8K\n@svc nginx active\n\
@dbup\n@dbrow db\tfoobar\n@dbrow user\tfoobar\tlocalhost\n@demorow 1\n@pending reload nginx\n@pending reload nginx\n@end\n";

    #[test]
    fn parses_every_fact_from_canned_output() {
        let f = parse(CANNED, &req()).unwrap();
        assert_eq!(
            (f.os_id.as_str(), f.os_version.as_str(), f.systemd),
            ("debian", "12", true)
        );
        assert_eq!(f.packages["nginx"].as_deref(), Some("1.22.1-9+deb12u1"));
        assert_eq!(f.packages["php8.2-fpm"], None);
        assert!(f.no_candidate.contains("php8.2-fpm"));
        assert_eq!(f.apt_lists_age, Some(120));
        assert_eq!(
            f.paths["/etc/nginx/nginx.conf"],
            PathFact::File {
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                content: Some(b"hello\n".to_vec())
            }
        );
        assert_eq!(
            f.paths["/etc/nginx/sites-enabled/foobar.com.conf"],
            PathFact::Link {
                target: "../sites-available/foobar.com.conf".into()
            }
        );
        assert_eq!(
            f.paths["/etc/nginx/sites-enabled/default"],
            PathFact::Absent
        );
        assert_eq!(
            f.paths["/var/www/foobar.com"],
            PathFact::Dir {
                mode: 0o755,
                owner: "root".into(),
                group: "www-data".into()
            }
        );
        assert!(f.services["nginx"]);
        let db = f.db.unwrap();
        assert!(db.reachable && db.demo_row && db.databases.contains("foobar"));
        assert!(db
            .users
            .contains(&("foobar".to_string(), "localhost".to_string())));
        assert_eq!(f.pending, vec![Handler::Reload("nginx".into())]);
    }

    #[test]
    fn a_cut_off_probe_is_an_error() {
        let cut = CANNED.replace("@end\n", "");
        assert!(parse(&cut, &req()).is_err());
    }

    #[test]
    fn a_fresh_host_has_everything_absent() {
        let f = parse(
            "@os debian 12\n@init none\n@pkg nginx -\n@dbdown\n@end\n",
            &req(),
        )
        .unwrap();
        assert!(!f.systemd);
        assert!(f.paths.values().all(|p| *p == PathFact::Absent));
        assert_eq!(f.apt_lists_age, None);
        assert!(!f.db.unwrap().reachable);
    }

    #[test]
    fn the_probe_quotes_every_path_and_runs_real_sh() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(req().script())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64_decode("aGVsbG8K").unwrap(), b"hello\n");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("a$b").is_none());
    }
}
