//! The validated inventory: what the rest of provision works from. `Spec::parse` turns TOML text into
//! strong types or a list of errors that each point at file, line, column and key.
//!
//! Reading secrets and application files is I/O; it goes through the `Sources` trait so parsing stays
//! testable without touching the environment or the disk.

use crate::error::{shown, SourceMap, SpecError, SpecErrors};
use crate::inventory::*;
use crate::names::*;
use crate::secret::{check_secret_value, Secret};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Clone)]
pub struct Spec {
    pub source: PathBuf,
    pub site: Site,
    pub database: Database,
    pub dns: Dns,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stack {
    Lemp,
    Lamp,
    NginxApache,
}

impl Stack {
    pub const ALL: [(&'static str, Stack); 3] = [
        ("lemp", Stack::Lemp),
        ("lamp", Stack::Lamp),
        ("nginx-apache", Stack::NginxApache),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub domain: DomainName,
    /// Names relative to the domain (`www`, or `@` for the apex), first is the primary.
    pub server_names: Vec<String>,
    pub stack: Stack,
    pub document_root: String,
    pub app: App,
    pub php_version: String,
}

impl Site {
    /// Fully qualified names the web server answers to, in inventory order.
    pub fn fqdns(&self) -> Vec<String> {
        self.server_names
            .iter()
            .map(|n| {
                if n == "@" {
                    self.domain.to_string()
                } else {
                    format!("{n}.{}", self.domain)
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub enum App {
    /// The built-in PHP page that prints the host name and a row read from the database.
    Demo,
    /// The user's own application files, read from `app_dir` at load time.
    Files(Vec<AppFile>),
}

#[derive(Debug, Clone)]
pub struct AppFile {
    /// Relative to the document root, `/`-separated, checked like a host path.
    pub path: String,
    pub content: Vec<u8>,
    pub executable: bool,
}

#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub user: String,
    pub password: Secret,
    pub replication: Option<Replication>,
}

#[derive(Debug, Clone)]
pub struct Replication {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct Dns {
    pub ttl: u32,
    /// Zone-file form, with the trailing dot: `hostmaster.foobar.com.`.
    pub soa_contact: String,
    /// Extra name servers (FQDNs without trailing dot), beside the hosts with the `dns` role.
    pub nameservers: Vec<DomainName>,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub name: String,
    pub kind: RecordKind,
    /// In zone-file syntax, already escaped and qualified.
    pub value: String,
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum RecordKind {
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
    NS,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Lb,
    Web,
    App,
    Db,
    DbReplica,
    Dns,
}

impl Role {
    pub const ALL: [(&'static str, Role); 6] = [
        ("lb", Role::Lb),
        ("web", Role::Web),
        ("app", Role::App),
        ("db", Role::Db),
        ("db-replica", Role::DbReplica),
        ("dns", Role::Dns),
    ];
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub public_address: IpAddr,
    pub private_address: Option<IpAddr>,
    pub roles: BTreeSet<Role>,
    pub ssh: Ssh,
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The address other hosts of the site use to reach this one (database, backends).
    pub fn internal_address(&self) -> IpAddr {
        self.private_address.unwrap_or(self.public_address)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ssh {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Resolved against the inventory's directory; `~/` expanded by the transport.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout_secs: u32,
}

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

/// Reads and validates an inventory file.
pub fn load(path: &Path, sources: &dyn Sources) -> Result<Spec, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the inventory: {e}"),
        }])
    })?;
    Spec::parse(&text, path, sources)
}

impl Spec {
    pub fn parse(text: &str, path: &Path, sources: &dyn Sources) -> Result<Spec, SpecErrors> {
        let map = SourceMap::new(path, text);
        let raw: RawInventory = {
            let de = toml::Deserializer::parse(text)
                .map_err(|e| SpecErrors(vec![toml_error(&map, "", &e)]))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let key = e.path().to_string();
                let key = if key == "." { String::new() } else { key };
                SpecErrors(vec![toml_error(&map, &key, e.inner())])
            })?
        };
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut c = Checker {
            map,
            errors: Vec::new(),
            sources,
            base,
        };
        let spec = c.spec(raw, path);
        if c.errors.is_empty() {
            Ok(spec.expect("a spec is built whenever no error was recorded"))
        } else {
            c.errors.sort_by_key(|e| (e.line, e.column));
            Err(SpecErrors(c.errors))
        }
    }

    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.has(role))
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The primary database host. Validation guarantees exactly one.
    pub fn db_primary(&self) -> &Host {
        self.hosts_with(Role::Db)
            .next()
            .expect("validated: one db host")
    }

    /// True when every web host is also the database host: MariaDB then listens on 127.0.0.1 only.
    pub fn db_is_local(&self) -> bool {
        let db = self.db_primary();
        self.hosts_with(Role::Web).all(|w| w.name == db.name)
            && self.hosts_with(Role::DbReplica).next().is_none()
    }
}

fn toml_error(map: &SourceMap, key: &str, e: &toml::de::Error) -> SpecError {
    let span = e.span().unwrap_or(0..0);
    let message = e.message().trim().replace('\n', "; ");
    let mut err = map.error(span, key, message);
    if key.is_empty() && err.message.starts_with("unknown field") {
        err.key = String::from("(top level)");
    }
    err
}

struct Checker<'a> {
    map: SourceMap<'a>,
    errors: Vec<SpecError>,
    sources: &'a dyn Sources,
    base: PathBuf,
}

impl Checker<'_> {
    fn fail(&mut self, span: std::ops::Range<usize>, key: &str, message: String) {
        self.errors.push(self.map.error(span, key, message));
    }

    /// Runs `parse` on a string value; on failure records "found X; allowed: Y".
    fn check<T>(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(v.get_ref()) {
            Ok(t) => Some(t),
            Err(allowed) => {
                self.fail(
                    v.span(),
                    key,
                    format!("found {}; allowed: {allowed}", shown(v.get_ref())),
                );
                None
            }
        }
    }

    fn int(&mut self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Option<i64> {
        let n = *v.get_ref();
        if (min..=max).contains(&n) {
            Some(n)
        } else {
            self.fail(
                v.span(),
                key,
                format!("found {n}; allowed: a whole number from {min} to {max}"),
            );
            None
        }
    }

    fn local_path(&self, p: &str) -> PathBuf {
        if p.starts_with("~/") || Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.base.join(p)
        }
    }

    fn spec(&mut self, raw: RawInventory, path: &Path) -> Option<Spec> {
        let site = self.site(&raw.site);
        let database = self.database(&raw.database, &raw.hosts);
        let hosts = self.hosts(&raw.hosts);
        let dns = self.dns(&raw.dns, site.as_ref().map(|s| &s.domain));
        if let Some(hosts) = &hosts {
            self.topology(&raw, hosts, dns.as_ref());
        }
        Some(Spec {
            source: path.to_path_buf(),
            site: site?,
            database: database?,
            dns: dns?,
            hosts: hosts?,
        })
    }

    fn site(&mut self, s: &RawSite) -> Option<Site> {
        let domain = self.check(&s.domain, "site.domain", DomainName::parse_zone);
        let server_names = match &s.server_names {
            None => Some(vec!["www".to_string()]),
            Some(list) if list.get_ref().is_empty() => {
                self.fail(
                    list.span(),
                    "site.server_names",
                    "found an empty list; allowed: one or more names like \"www\" or \"@\"".into(),
                );
                None
            }
            Some(list) => {
                let mut names = Vec::new();
                let mut ok = true;
                for (i, n) in list.get_ref().iter().enumerate() {
                    match self.check(n, &format!("site.server_names[{i}]"), parse_relative_name) {
                        Some(v) if names.contains(&v) => {
                            self.fail(
                                n.span(),
                                &format!("site.server_names[{i}]"),
                                format!("found {} twice; allowed: each name once", shown(&v)),
                            );
                            ok = false;
                        }
                        Some(v) => names.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(names)
            }
        };
        let stack = self.check(&s.stack, "site.stack", |v| {
            Stack::ALL
                .iter()
                .find(|(n, _)| *n == v)
                .map(|(_, s)| *s)
                .ok_or_else(|| "one of \"lemp\", \"lamp\", \"nginx-apache\"".to_string())
        });
        let document_root = match (&s.document_root, &domain) {
            (Some(d), _) => self.check(d, "site.document_root", parse_host_path),
            (None, Some(dom)) => Some(format!("/var/www/{dom}")),
            (None, None) => None,
        };
        let php_version = match &s.php_version {
            Some(v) => self.check(v, "site.php_version", parse_php_version),
            None => Some("8.2".to_string()),
        };
        let app = match &s.app_dir {
            None => Some(App::Demo),
            Some(d) => self.app_dir(d),
        };
        Some(Site {
            domain: domain?,
            server_names: server_names?,
            stack: stack?,
            document_root: document_root?,
            app: app?,
            php_version: php_version?,
        })
    }

    fn app_dir(&mut self, d: &Spanned<String>) -> Option<App> {
        let rel = self.check(d, "site.app_dir", parse_local_path)?;
        let dir = self.local_path(&rel);
        let files = match self.sources.read_tree(&dir) {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "cannot read the application directory {}: {e}",
                        dir.display()
                    ),
                );
                return None;
            }
        };
        if files.is_empty() {
            self.fail(
                d.span(),
                "site.app_dir",
                format!("the application directory {} has no files", dir.display()),
            );
            return None;
        }
        let mut out = Vec::new();
        for (path, content, executable) in files {
            if parse_host_path(&format!("/{path}")).is_err() {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "file {} in {}: allowed: names of letters, digits, '.', '_' and '-'",
                        shown(&path),
                        dir.display()
                    ),
                );
                continue;
            }
            out.push(AppFile {
                path,
                content,
                executable,
            });
        }
        Some(App::Files(out))
    }

    fn secret(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        key: &str,
        table_span: std::ops::Range<usize>,
    ) -> Option<Secret> {
        match (env, file) {
            (Some(e), Some(f)) => {
                let span = e.span().start.max(f.span().start)..e.span().end.max(f.span().end);
                self.fail(
                    span,
                    &format!("database.{key}_env"),
                    format!("both {key}_env and {key}_file are set; allowed: exactly one of them"),
                );
                None
            }
            (None, None) => {
                self.fail(
                    table_span,
                    "database",
                    format!("no {key}: allowed: {key}_env = \"VARIABLE\" or {key}_file = \"path\""),
                );
                None
            }
            (Some(e), None) => {
                let name = self.check(e, &format!("database.{key}_env"), parse_env_name)?;
                let origin = format!("environment variable {name}");
                match self.sources.env_var(&name) {
                    None => {
                        self.fail(e.span(), &format!("database.{key}_env"), format!("{origin} is not set; allowed: a non-empty value of printable characters"));
                        None
                    }
                    Some(v) => {
                        self.secret_value(v, origin, e.span(), &format!("database.{key}_env"))
                    }
                }
            }
            (None, Some(f)) => {
                let rel = self.check(f, &format!("database.{key}_file"), parse_local_path)?;
                let full = self.local_path(&rel);
                let origin = format!("file {}", full.display());
                match self.sources.read_file(&full) {
                    Err(err) => {
                        self.fail(
                            f.span(),
                            &format!("database.{key}_file"),
                            format!("cannot read {origin}: {err}"),
                        );
                        None
                    }
                    Ok(bytes) => match String::from_utf8(bytes) {
                        // One trailing newline is what `echo pw > file` leaves; it is not part of the secret.
                        Ok(v) => {
                            let v = v
                                .strip_suffix('\n')
                                .map(|s| s.strip_suffix('\r').unwrap_or(s).to_string())
                                .unwrap_or(v);
                            self.secret_value(v, origin, f.span(), &format!("database.{key}_file"))
                        }
                        Err(_) => {
                            self.fail(
                                f.span(),
                                &format!("database.{key}_file"),
                                format!("{origin} is not UTF-8 text"),
                            );
                            None
                        }
                    },
                }
            }
        }
    }

    fn secret_value(
        &mut self,
        v: String,
        origin: String,
        span: std::ops::Range<usize>,
        key: &str,
    ) -> Option<Secret> {
        match check_secret_value(&v) {
            Ok(()) => Some(Secret::new(v, origin)),
            Err(why) => {
                self.fail(span, key, format!("{origin}: {why}"));
                None
            }
        }
    }

    fn database(&mut self, d: &RawDatabase, hosts: &[RawHost]) -> Option<Database> {
        let name = self.check(&d.name, "database.name", |v| parse_sql_ident(v, 64));
        let user = self.check(&d.user, "database.user", |v| parse_sql_ident(v, 32));
        let table_span = d.name.span();
        let password = self.secret(
            &d.password_env,
            &d.password_file,
            "password",
            table_span.clone(),
        );
        let wants_replica = hosts.iter().any(|h| {
            h.roles
                .get_ref()
                .iter()
                .any(|r| r.get_ref() == "db-replica")
        });
        let given = d.replication_password_env.is_some()
            || d.replication_password_file.is_some()
            || d.replication_user.is_some();
        let replication = if wants_replica || given {
            let ruser = match &d.replication_user {
                Some(u) => self.check(u, "database.replication_user", |v| parse_sql_ident(v, 32)),
                None => Some("replicator".to_string()),
            };
            let rpw = self.secret(
                &d.replication_password_env,
                &d.replication_password_file,
                "replication_password",
                table_span,
            );
            Some(Replication {
                user: ruser?,
                password: rpw?,
            })
        } else {
            None
        };
        Some(Database {
            name: name?,
            user: user?,
            password: password?,
            replication,
        })
    }

    fn dns(&mut self, d: &RawDns, domain: Option<&DomainName>) -> Option<Dns> {
        let ttl = match &d.ttl {
            Some(t) => self.int(t, "dns.ttl", 60, 604_800).map(|t| t as u32),
            None => Some(3600),
        };
        let soa_contact = self.check(&d.soa_contact, "dns.soa_contact", parse_soa_contact);
        let mut nameservers = Vec::new();
        for (i, n) in d.nameservers.iter().enumerate() {
            if let Some(v) = self.check(n, &format!("dns.nameservers[{i}]"), |v| {
                let d = DomainName::parse(v)?;
                if d.as_str().contains('.') {
                    Ok(d)
                } else {
                    Err("a fully qualified name server name like ns1.example.net".into())
                }
            }) {
                nameservers.push(v);
            }
        }
        let mut records = Vec::new();
        let mut ok = true;
        for (i, r) in d.records.iter().enumerate() {
            match self.record(r, i, domain) {
                Some(rec) => records.push(rec),
                None => ok = false,
            }
        }
        Some(Dns {
            ttl: ttl?,
            soa_contact: soa_contact?,
            nameservers,
            records: ok.then_some(records)?,
        })
    }

    fn record(&mut self, r: &RawRecord, i: usize, domain: Option<&DomainName>) -> Option<Record> {
        let key = |f: &str| format!("dns.records[{i}].{f}");
        let name = self.check(&r.name, &key("name"), parse_relative_name);
        let kind = self.check(&r.kind, &key("type"), |v| {
            Ok(match v.to_ascii_uppercase().as_str() {
                "A" => RecordKind::A,
                "AAAA" => RecordKind::AAAA,
                "CNAME" => RecordKind::CNAME,
                "MX" => RecordKind::MX,
                "TXT" => RecordKind::TXT,
                "NS" => RecordKind::NS,
                _ => return Err("one of A, AAAA, CNAME, MX, TXT, NS".into()),
            })
        })?;
        let ttl = match &r.ttl {
            Some(t) => Some(self.int(t, &key("ttl"), 60, 604_800)? as u32),
            None => None,
        };
        let target = |v: &str| -> Result<String, String> {
            // A name ending in '.' is absolute; anything else is relative to the zone, as in a zone file.
            if let Some(abs) = v.strip_suffix('.') {
                DomainName::parse(abs).map(|d| format!("{d}."))
            } else {
                parse_relative_name(v).map(|n| {
                    if n == "@" {
                        domain.map(|d| format!("{d}.")).unwrap_or(n)
                    } else {
                        n
                    }
                })
            }
        };
        let value = self.check(&r.value, &key("value"), |v| match kind {
            RecordKind::A => v
                .parse::<std::net::Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| "an IPv4 address for an A record".into()),
            RecordKind::AAAA => v
                .parse::<std::net::Ipv6Addr>()
                .map(|a| a.to_string())
                .map_err(|_| "an IPv6 address for an AAAA record".into()),
            RecordKind::CNAME | RecordKind::NS => target(v),
            RecordKind::MX => {
                let (prio, host) = v
                    .split_once(' ')
                    .ok_or("\"PRIORITY NAME\", like \"10 mail\"")?;
                let prio: u16 = prio
                    .parse()
                    .map_err(|_| "\"PRIORITY NAME\" with PRIORITY from 0 to 65535".to_string())?;
                Ok(format!("{prio} {}", target(host.trim())?))
            }
            RecordKind::TXT => {
                if v.is_empty() || v.len() > 255 || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    Err("1 to 255 printable ASCII characters".into())
                } else {
                    Ok(format!(
                        "\"{}\"",
                        v.replace('\\', "\\\\").replace('"', "\\\"")
                    ))
                }
            }
        });
        Some(Record {
            name: name?,
            kind,
            value: value?,
            ttl,
        })
    }

    fn hosts(&mut self, raw: &[RawHost]) -> Option<Vec<Host>> {
        let mut hosts = Vec::new();
        let mut ok = true;
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut endpoints: BTreeMap<(String, u16), usize> = BTreeMap::new();
        for (i, h) in raw.iter().enumerate() {
            let key = |f: &str| format!("hosts[{i}].{f}");
            let name = self.check(&h.name, &key("name"), parse_host_name);
            if let Some(n) = &name {
                if let Some(first) = names.insert(n.clone(), i) {
                    self.fail(
                        h.name.span(),
                        &key("name"),
                        format!(
                            "found {} again (first at hosts[{first}]); allowed: unique host names",
                            shown(n)
                        ),
                    );
                    ok = false;
                }
            }
            let public = self.check(&h.public_address, &key("public_address"), |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| "an IPv4 or IPv6 address".into())
            });
            let private = match &h.private_address {
                Some(p) => Some(self.check(p, &key("private_address"), |v| {
                    v.parse::<IpAddr>()
                        .map_err(|_| "an IPv4 or IPv6 address".into())
                })?),
                None => None,
            };
            let mut roles = BTreeSet::new();
            for (j, r) in h.roles.get_ref().iter().enumerate() {
                match self.check(r, &key(&format!("roles[{j}]")), |v| {
                    Role::ALL
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, r)| *r)
                        .ok_or_else(|| {
                            "one of \"lb\", \"web\", \"app\", \"db\", \"db-replica\", \"dns\""
                                .to_string()
                        })
                }) {
                    Some(role) => {
                        roles.insert(role);
                    }
                    None => ok = false,
                }
            }
            if h.roles.get_ref().is_empty() {
                self.fail(h.roles.span(), &key("roles"), "found an empty list; allowed: one or more of \"lb\", \"web\", \"app\", \"db\", \"db-replica\", \"dns\"".into());
                ok = false;
            }
            let ssh = self.ssh(&h.ssh, i);
            if let Some(s) = &ssh {
                if let Some(first) = endpoints.insert((s.address.clone(), s.port), i) {
                    self.fail(h.ssh.address.span(), &key("ssh.address"), format!("{}:{} is already hosts[{first}]; allowed: one inventory host per SSH endpoint", s.address, s.port));
                    ok = false;
                }
            }
            if let Some(lab) = &h.lab {
                self.check(&lab.flavour, &key("lab.flavour"), |v| match v {
                    "systemd" | "plain" => Ok(()),
                    _ => Err("\"systemd\" or \"plain\"".to_string()),
                });
            }
            match (name, public, ssh) {
                (Some(name), Some(public_address), Some(ssh)) => hosts.push(Host {
                    name,
                    public_address,
                    private_address: private,
                    roles,
                    ssh,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(hosts)
    }

    fn ssh(&mut self, s: &RawSsh, i: usize) -> Option<Ssh> {
        let key = |f: &str| format!("hosts[{i}].ssh.{f}");
        let address = self.check(&s.address, &key("address"), parse_ssh_address);
        let port = match &s.port {
            Some(p) => self.int(p, &key("port"), 1, 65535).map(|p| p as u16),
            None => Some(22),
        };
        let user = match &s.user {
            Some(u) => self.check(u, &key("user"), parse_unix_user),
            None => Some("root".to_string()),
        };
        let mut path = |v: &Option<Spanned<String>>, k: &str| -> Option<Option<PathBuf>> {
            match v {
                Some(p) => self
                    .check(p, &key(k), parse_local_path)
                    .map(|p| Some(self.local_path(&p))),
                None => Some(None),
            }
        };
        let identity_file = path(&s.identity_file, "identity_file");
        let known_hosts = path(&s.known_hosts, "known_hosts");
        let connect_timeout_secs = match &s.connect_timeout {
            Some(t) => self
                .int(t, &key("connect_timeout"), 1, 300)
                .map(|t| t as u32),
            None => Some(10),
        };
        Some(Ssh {
            address: address?,
            port: port?,
            user: user?,
            identity_file: identity_file?,
            known_hosts: known_hosts?,
            connect_timeout_secs: connect_timeout_secs?,
        })
    }

    /// Role combinations that cannot work, reported at the host's `roles` key.
    fn topology(&mut self, raw: &RawInventory, hosts: &[Host], dns: Option<&Dns>) {
        let span_of = |i: usize| raw.hosts[i].roles.span();
        let whole = raw.site.stack.span();
        if hosts.is_empty() {
            self.fail(
                whole,
                "hosts",
                "no hosts; allowed: one or more [[hosts]] tables".into(),
            );
            return;
        }
        for (i, h) in hosts.iter().enumerate() {
            let key = format!("hosts[{i}].roles");
            if h.has(Role::Web) != h.has(Role::App) {
                self.fail(span_of(i), &key, "roles \"web\" and \"app\" go together on one host: the web server reaches PHP on the same machine; allowed: both or neither".into());
            }
            if h.has(Role::Lb) && h.has(Role::Web) {
                self.fail(span_of(i), &key, "an \"lb\" host cannot also be \"web\": both listen on port 80; allowed: lb and web on different hosts".into());
            }
            if h.has(Role::Db) && h.has(Role::DbReplica) {
                self.fail(
                    span_of(i),
                    &key,
                    "a host cannot be both \"db\" and \"db-replica\"; allowed: one of them".into(),
                );
            }
        }
        let count = |r: Role| hosts.iter().filter(|h| h.has(r)).count();
        let first_span = span_of(0);
        if count(Role::Web) == 0 {
            self.fail(
                first_span.clone(),
                "hosts[*].roles",
                "no host has the \"web\" role; allowed: at least one web host to serve the site"
                    .into(),
            );
        }
        match count(Role::Db) {
            1 => {}
            0 => self.fail(
                first_span.clone(),
                "hosts[*].roles",
                "no host has the \"db\" role; allowed: exactly one database primary".into(),
            ),
            _ => {
                let i = hosts
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.has(Role::Db))
                    .nth(1)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                self.fail(span_of(i), &format!("hosts[{i}].roles"), "a second \"db\" host; allowed: exactly one database primary (use \"db-replica\" for the others)".into());
            }
        }
        if count(Role::Lb) > 1 {
            let i = hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.has(Role::Lb))
                .nth(1)
                .map(|(i, _)| i)
                .unwrap_or(0);
            self.fail(
                span_of(i),
                &format!("hosts[{i}].roles"),
                "a second \"lb\" host; allowed: at most one load balancer".into(),
            );
        }
        if count(Role::Lb) == 1 && count(Role::Web) == 0 {
            let i = hosts.iter().position(|h| h.has(Role::Lb)).unwrap_or(0);
            self.fail(span_of(i), &format!("hosts[{i}].roles"), "an \"lb\" host with no \"web\" hosts to balance; allowed: lb together with one or more web hosts".into());
        }
        if let Some(dns) = dns {
            if count(Role::Dns) == 0 && dns.nameservers.is_empty() {
                self.fail(raw.dns.soa_contact.span(), "dns.nameservers", "no name server: no host has the \"dns\" role and dns.nameservers is empty; allowed: one of them".into());
            }
        }
    }
}

#[cfg(test)]
mod tests;
