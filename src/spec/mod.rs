//! The validated inventory: what the rest of provision works from. `Spec::parse` turns TOML text into
//! strong types or a list of errors that each point at file, line, column and key.
//!
//! The stages, one file each:
//! - `syntax`: bytes to text (UTF-8 only) and text to a TOML tree, syntax errors located;
//! - `reader` with `crate::inventory`: the tree to raw types, mistakes of shape (kinds, unknown and
//!   missing keys) located;
//! - `check` and `site`, `app` (with `app_source`: the application's files from a directory, an
//!   archive or git), `tls` (with `certificate`: the user's own), `database`, `hosts`, `lb`, `dns`:
//!   the raw values to strong types, each mistake located and explained, including what would only
//!   fail later when configs are rendered;
//! - `sources`: reading secrets and application files. It is I/O and goes through the `Sources`
//!   trait, so parsing stays testable without touching the environment or the disk.

mod app;
mod app_source;
mod backup;
mod certificate;
mod check;
mod database;
mod dns;
pub mod edit;
mod firewall;
mod hardening;
pub use backup::Backup;
pub use hardening::Hardening;
mod hosts;
pub use hosts::{Host, Role, Ssh, SshConfigFile, SshUnset};
mod lb;
pub mod reader;
mod site;
pub use site::{document_root_problem, parse_site_name};
mod sites;
mod sources;
mod syntax;
mod tls;
pub use certificate::Provided;
pub use firewall::Firewall;
pub use tls::{covers, dns_names, Acme, Challenge, Tls, TlsCert};

pub use sources::{
    read_capped, FileKey, Sources, SystemSources, TreeFile, FIFO_WAIT, INVENTORY_LIMIT,
    SECRET_FILE_LIMIT,
};

use crate::error::{SourceMap, SpecError, SpecErrors};
use crate::inventory::RawInventory;
use crate::names::DomainName;
use crate::secret::Secrets;
use serde::Serialize;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Spec {
    pub source: PathBuf,
    /// Every site, in inventory order: the one of `[site]`, or each `[[sites]]` table.
    pub sites: Vec<Site>,
    /// The account replicas follow the primary with (`[replication]`, or in the one-site form
    /// `[database]`'s replication keys), when there is a replica.
    pub replication: Option<Replication>,
    /// The floating address of two load balancers (`[lb]`), when there are two.
    pub lb: Option<Lb>,
    /// The hosts' firewall (`[firewall]`), when asked for.
    pub firewall: Option<Firewall>,
    /// The nightly database dump (`[backup]`), when asked for.
    pub backup: Option<Backup>,
    /// sshd, kernel and login defaults, security updates (`[hardening]`), when asked for.
    pub hardening: Option<Hardening>,
    pub hosts: Vec<Host>,
    /// Every secret the inventory gives (passwords, a provided TLS key) or provision derives
    /// (the application's salt): the one place templates read them from and the redactor knows.
    pub secrets: Secrets,
    /// What is allowed but worth saying (an `lb` with one web host: nothing is redundant).
    pub warnings: Vec<SpecError>,
}

/// Two load balancers share a floating address through VRRP (keepalived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lb {
    pub floating_address: IpAddr,
    /// The prefix length of the network the address and the load balancers share.
    pub prefix_len: u8,
    /// VRRP's virtual router id: one per floating address on a network.
    pub virtual_router_id: u8,
    /// The interface it lives on; learned from each host when not given.
    pub interface: Option<String>,
}

/// A stack: one of the names in `component::STACKS`, where each is a list of components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stack(&'static str);

impl Stack {
    pub fn parse(name: &str) -> Result<Stack, crate::error::Allowed> {
        crate::component::STACKS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| Stack(n))
            .ok_or_else(|| Stack::allowed().into())
    }

    /// "one of \"lemp\", \"lamp\", ..."
    pub fn allowed() -> String {
        let names: Vec<String> = crate::component::STACKS
            .iter()
            .map(|(n, _)| format!("\"{n}\""))
            .collect();
        format!("one of {}", names.join(", "))
    }

    pub fn name(self) -> &'static str {
        self.0
    }
}

/// A site: one object, with its names, stack, application, database, zone and certificate, served
/// by some of the web hosts, isolated from the other sites on them (its own Unix user, PHP pool,
/// logs and database account).
#[derive(Debug, Clone)]
pub struct Site {
    /// The site's short name: its Unix user and group, its PHP pool, its log and state directories.
    pub name: String,
    /// Where the inventory has it, for keys in messages and for its secrets.
    pub at: crate::secret::SiteRef,
    /// The web hosts that serve it, by name (`sites.hosts`; default every web host).
    pub hosts: Vec<String>,
    pub database: Database,
    pub dns: Dns,
    pub domain: DomainName,
    /// Names relative to the domain (`www`, or `@` for the apex), first is the primary.
    pub server_names: Vec<String>,
    pub stack: Stack,
    pub document_root: String,
    pub app: App,
    /// What `[site.app]` says besides the source (defaults without it).
    pub app_options: AppOptions,
    /// An override of the PHP version the host's release ships; checked against it.
    pub php_version: Option<String>,
    /// How a request proves the application works (`[site.health_check]`).
    pub health_check: AppCheck,
    /// Nginx keeps PHP's answers for a second (`site.micro_cache`).
    pub micro_cache: bool,
    /// HTTPS (`[site.tls]`): where it ends, the web server (or the load balancers) listens on
    /// 443 and HTTP redirects to it.
    pub tls: Option<Tls>,
}

/// The request the health checks send to the site, and what the answer must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCheck {
    pub path: String,
    pub status: u16,
    /// A text the page must contain; for the demo app, by default, the database row.
    pub expect: Option<String>,
}

impl Site {
    /// Fully qualified names the web server answers to, in inventory order.
    pub fn fqdns(&self) -> Vec<String> {
        fqdns(&self.domain, &self.server_names)
    }

    /// The inventory key of this site's `table` (`site`, `database`, `dns`; `sites[N]...`).
    pub fn key(&self, table: &str) -> String {
        self.at.key(table)
    }

    /// Whether `host` serves this site.
    pub fn served_by(&self, host: &Host) -> bool {
        self.hosts.contains(&host.name)
    }
}

/// `[site.app]`: how the application is deployed and what it needs.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The release's subdirectory served as the document root (`None`: the release itself).
    pub public: Option<String>,
    /// The PHP file (relative to the document root) that answers paths that are not files.
    pub front_controller: String,
    /// PHP extensions: (name, the Debian package suffix that ships it, `None` when PHP has it built in).
    pub extensions: Vec<(String, Option<&'static str>)>,
    /// Directories of the application kept across releases (relative, `/`-separated).
    pub shared: Vec<String>,
    pub release_command: Option<String>,
    pub keep: usize,
    /// PHP settings for the site's PHP (`php_admin_value`).
    pub php: Vec<(String, String)>,
    pub configs: Vec<AppConfig>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            public: None,
            front_controller: "index.php".into(),
            extensions: Vec::new(),
            shared: Vec::new(),
            release_command: None,
            keep: 5,
            php: Vec::new(),
            configs: Vec::new(),
        }
    }
}

impl AppOptions {
    /// The URL path at which the web server serves `path` (relative to the release): `None` when
    /// it lies outside the served directory (the release, or its `public` subdirectory).
    pub fn served_at(&self, path: &str) -> Option<String> {
        match &self.public {
            None => Some(format!("/{path}")),
            Some(p) if path == p => Some("/".into()),
            Some(p) => path
                .strip_prefix(&format!("{p}/"))
                .map(|rest| format!("/{rest}")),
        }
    }
}

/// A file of the application rendered from the user's template with the site's settings.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Relative to the release.
    pub path: String,
    /// The template file, for messages.
    pub file: String,
    pub template: String,
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
    /// Shared by every render of the inventory (one per candidate release, then the host's).
    pub content: std::sync::Arc<Vec<u8>>,
    /// Its sha256, hashed once when read.
    pub sha: String,
    pub executable: bool,
}

impl AppFile {
    pub fn new(path: String, content: Vec<u8>, executable: bool) -> AppFile {
        AppFile {
            sha: crate::render::manifest::sha256_hex(&content),
            path,
            content: std::sync::Arc::new(content),
            executable,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    /// Its password is `SecretKey::DatabasePassword` in `Spec::secrets`.
    pub user: String,
}

/// Its password is `SecretKey::ReplicationPassword` in `Spec::secrets`.
#[derive(Debug, Clone)]
pub struct Replication {
    pub user: String,
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

/// Reads and validates an inventory file. The file is read like a password file (capped, and a
/// FIFO is waited for a bounded time), so `-i <(generate-inventory)` works and `-i /dev/zero` fails.
pub fn load(path: &Path, sources: &dyn Sources) -> Result<Spec, SpecErrors> {
    let whole_file = |message: String| SpecErrors::whole_file(path, message);
    let bytes = read_capped(path, INVENTORY_LIMIT, FIFO_WAIT)
        .map_err(|e| whole_file(format!("cannot read the inventory: {e}")))?;
    if bytes.len() > INVENTORY_LIMIT {
        return Err(whole_file(format!(
            "the inventory is longer than {} MiB; allowed: an inventory file of at most that size",
            INVENTORY_LIMIT >> 20
        )));
    }
    let text = syntax::decode(&bytes, path).map_err(|e| SpecErrors(vec![e]))?;
    let mut spec = Spec::parse(text, path, sources)?;
    // What `ssh HOST` would take from ~/.ssh/config (User, Port, ConnectTimeout) is known from
    // here on, so the rest of provision sees the user it will log in as (sudo or not).
    let errors = crate::transport::fill_from_ssh_config(spec.hosts.iter_mut().map(|h| &mut h.ssh));
    if !errors.is_empty() {
        return Err(SpecErrors(
            errors
                .into_iter()
                .map(|e| SpecError {
                    file: e.file,
                    line: e.line,
                    column: usize::from(e.line > 0),
                    key: e.keyword,
                    message: e.message,
                })
                .collect(),
        ));
    }
    Ok(spec)
}

impl Spec {
    /// Validates an inventory's text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path, sources: &dyn Sources) -> Result<Spec, SpecErrors> {
        // A UTF-8 byte order mark is not part of the TOML; editors do not show it as a column.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let map = SourceMap::new(path, text);
        let tree = syntax::parse(&map).map_err(SpecErrors)?;
        let mut reader = reader::Reader::new(&map);
        let raw = RawInventory::read(&mut reader, reader::Table::root(&tree));
        let raw = match raw {
            Some(raw) if reader.errors.is_empty() => raw,
            _ => return Err(sorted(reader.errors)),
        };
        let mut c = check::Checker::new(&map, sources, path);
        match c.spec(raw, path) {
            Some(spec) if c.errors.is_empty() => Ok(spec),
            _ => Err(sorted(c.errors)),
        }
    }

    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.has(role))
    }

    /// The hosts that front others (send them requests): the load balancers.
    pub fn fronting_hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts_with(Role::Lb)
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

    /// The sites `host` serves (as a web host), in inventory order.
    pub fn sites_on<'a>(&'a self, host: &'a Host) -> impl Iterator<Item = &'a Site> + 'a {
        self.sites.iter().filter(move |s| s.served_by(host))
    }

    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The web hosts that serve `site`.
    pub fn hosts_of<'a>(&'a self, site: &'a Site) -> impl Iterator<Item = &'a Host> + 'a {
        self.hosts.iter().filter(move |h| site.served_by(h))
    }

    /// True when every web host is also the database host: MariaDB then listens on 127.0.0.1 only.
    pub fn db_is_local(&self) -> bool {
        let db = self.db_primary();
        self.hosts_with(Role::Web).all(|w| w.name == db.name)
            && self.hosts_with(Role::DbReplica).next().is_none()
    }
}

/// Errors in file order (a stable sort: two at one position keep the order they were found in).
fn sorted(mut errors: Vec<SpecError>) -> SpecErrors {
    errors.sort_by_key(|e| (e.line, e.column));
    SpecErrors(errors)
}

/// The fully qualified names of `server_names` (relative to `domain`; `@` is the domain itself).
pub fn fqdns(domain: &crate::names::DomainName, server_names: &[String]) -> Vec<String> {
    server_names
        .iter()
        .map(|n| {
            if n == "@" {
                domain.to_string()
            } else {
                format!("{n}.{domain}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
