//! The validated inventory: what the rest of provision works from. `Spec::parse` turns TOML text into
//! strong types or a list of errors that each point at file, line, column and key.
//!
//! The checks live in one file per part of the inventory (`site`, `database`, `hosts`, `dns`),
//! with the shared helpers in `check`. Reading secrets and application files is I/O; it goes
//! through the `Sources` trait (`sources`) so parsing stays testable without touching the
//! environment or the disk.

mod check;
mod database;
mod dns;
mod hosts;
mod site;
mod sources;

pub use sources::{Sources, SystemSources};

use crate::error::{SourceMap, SpecError, SpecErrors};
use crate::inventory::*;
use crate::names::*;
use crate::secret::Secret;
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

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
        let mut c = check::Checker {
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

#[cfg(test)]
mod tests;
