//! The inventory file as written: raw types that mirror the TOML one to one, and how each is read
//! from the parsed TOML tree.
//!
//! Every value that gets validated later is `Spanned`, so a validation error can point at the exact
//! line and column the user wrote. Reading checks only the shape (kinds of values, known keys,
//! required keys); what the values mean is checked in `spec`. The `allowed` texts here are what a
//! user sees when a value has the wrong kind or is missing.
//!
//! One file per theme: the site and what hangs off it (`site`, `app`, `database`, `dns`), the
//! hosts (`host`), the tables about every host (`cluster`); this file reads the top level.

mod app;
mod cluster;
mod database;
mod dns;
mod host;
mod site;

pub use app::{RawApp, RawAppConfig, KEEP_RELEASES};
pub use cluster::{
    RawBackup, RawFirewall, RawHardening, RawLb, KEEP_DAYS, REBOOT_SPACING, ROUTER_ID,
};
pub use database::{RawDatabase, RawReplication};
pub use dns::{RawDns, RawRecord};
pub use host::{RawHost, RawLab, RawSsh};
pub use site::{RawAcme, RawHealthCheck, RawSite, RawSiteDef, RawTls, HTTP_STATUS};

use crate::spec::reader::{Bounds, Reader, Table};

pub const PORT: Bounds = Bounds { min: 1, max: 65535 };
pub const TTL: Bounds = Bounds {
    min: 60,
    max: 604_800,
};
pub const CONNECT_TIMEOUT: Bounds = Bounds { min: 1, max: 300 };

pub const ROLES: &str = "one of \"lb\", \"web\", \"app\", \"db\", \"db-replica\", \"dns\"";
pub const RECORD_TYPES: &str = "one of A, AAAA, CNAME, MX, TXT, NS";
const RELATIVE_NAME: &str =
    "a name relative to the domain, like \"www\", or \"@\" for the domain itself";
const LOCAL_PATH: &str = "a file path, relative to the inventory's directory or absolute";
const SQL_IDENT: &str = "a SQL identifier like \"foobar\"";
const ENV_NAME: &str = "the name of an environment variable, like \"DB_PASSWORD\"";
const ADDRESS: &str = "an IP address like \"203.0.113.10\"";
pub const PROXY_JUMP: &str =
    "jump hosts like \"bastion\" or \"user@bastion:2222,inner-jump\" (ssh -J), or \"none\"";
pub const SSH_CONFIG: &str = "an ssh_config file (like ssh -F), or \"none\" to read none";
pub const LAB_NETWORK: &str = "\"outer\", \"inner\" or \"bastion\"";

#[derive(Debug)]
pub struct RawInventory {
    /// `[[sites]]`, or the one site of `[site]` + `[database]` + `[dns]`.
    pub sites: Vec<RawSiteDef>,
    /// True when the sites come from `[[sites]]` (keys are then `sites[N]....`).
    pub many: bool,
    /// `[replication]`: the replication account of the `[[sites]]` form (the one-site form keeps it
    /// in `[database]`).
    pub replication: Option<RawReplication>,
    pub lb: Option<RawLb>,
    pub firewall: Option<RawFirewall>,
    pub backup: Option<RawBackup>,
    pub hardening: Option<RawHardening>,
    pub hosts: Vec<RawHost>,
}

/// The site tables of the top level, taken before they are read: the one-site form's three, or
/// the `[[sites]]` list. `None` in a place: that table has a shape error already recorded.
enum SiteTables<'a, 'i> {
    One {
        site: Option<Table<'a, 'i>>,
        database: Option<Table<'a, 'i>>,
        dns: Option<Table<'a, 'i>>,
    },
    Many(Option<Vec<Table<'a, 'i>>>),
}

/// The other tables of the top level, taken before any is read. Outer `None`: a shape error.
struct TopTables<'a, 'i> {
    replication: Option<Option<Table<'a, 'i>>>,
    lb: Option<Option<Table<'a, 'i>>>,
    firewall: Option<Option<Table<'a, 'i>>>,
    backup: Option<Option<Table<'a, 'i>>>,
    hardening: Option<Option<Table<'a, 'i>>>,
    hosts: Option<Vec<Table<'a, 'i>>>,
}

impl RawInventory {
    /// Reads the whole file; `None` when any shape error was recorded in `r`.
    pub fn read(r: &mut Reader, mut top: Table) -> Option<RawInventory> {
        let many = top.has("sites");
        let sites = SiteTables::take(r, &mut top, many);
        let tables = TopTables::take(r, &mut top);
        r.finish(top);
        let hardening = tables
            .hardening
            .map(|h| h.and_then(|t| RawHardening::read(r, t)));
        let backup = tables.backup.map(|b| b.and_then(|t| RawBackup::read(r, t)));
        let firewall = tables
            .firewall
            .map(|f| f.and_then(|t| RawFirewall::read(r, t)));
        let replication = tables
            .replication
            .map(|t| t.and_then(|t| RawReplication::read(r, t)));
        let sites = sites.read(r);
        if many && sites.as_ref().is_some_and(Vec::is_empty) {
            r.fail_at(
                0..0,
                "sites",
                "found no [[sites]] table; allowed: one or more".into(),
            );
            return None;
        }
        let lb = tables.lb.map(|l| l.and_then(|t| RawLb::read(r, t)));
        let hosts = tables.hosts.map(|list| {
            list.into_iter()
                .map(|t| RawHost::read(r, t))
                .collect::<Vec<_>>()
        });
        Some(RawInventory {
            sites: sites?,
            many,
            replication: replication?,
            lb: lb?,
            firewall: firewall?,
            backup: backup?,
            hardening: hardening?,
            hosts: hosts?.into_iter().collect::<Option<_>>()?,
        })
    }
}

impl<'a, 'i> SiteTables<'a, 'i> {
    /// `many`: the file has `[[sites]]`, and then none of the one-site form's tables.
    fn take(r: &mut Reader, top: &mut Table<'a, 'i>, many: bool) -> Self {
        if !many {
            return SiteTables::One {
                site: r.req_table(
                    top,
                    "site",
                    "a [site] table with domain and stack, or [[sites]] tables",
                ),
                database: r.req_table(
                    top,
                    "database",
                    "a [database] table with name, user and password_env or password_file",
                ),
                dns: r.req_table(top, "dns", "a [dns] table with soa_contact"),
            };
        }
        for key in ["site", "database", "dns"] {
            if top.has(key) {
                r.conflict(top, key, "sites", "the sites as [[sites]] tables (each with [sites.database] and [sites.dns]), or the one site of [site], [database] and [dns], not both");
            }
        }
        SiteTables::Many(r.table_list(
            top,
            "sites",
            "[[sites]] tables, one per site, each with domain and stack, [sites.database] and [sites.dns]",
        ))
    }

    /// Every site read, each one's errors recorded; `None` if any had one.
    fn read(self, r: &mut Reader) -> Option<Vec<RawSiteDef>> {
        match self {
            SiteTables::One {
                site,
                database,
                dns,
            } => {
                let site = site.and_then(|t| RawSite::read(r, t, false));
                let database = database.and_then(|t| RawDatabase::read(r, t));
                let dns = dns.and_then(|t| RawDns::read(r, t));
                Some(vec![RawSiteDef {
                    site: site?,
                    database: database?,
                    dns: dns?,
                }])
            }
            SiteTables::Many(list) => list.and_then(|list| {
                list.into_iter()
                    .map(|t| RawSiteDef::read(r, t))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect()
            }),
        }
    }
}

impl<'a, 'i> TopTables<'a, 'i> {
    fn take(r: &mut Reader, top: &mut Table<'a, 'i>) -> Self {
        TopTables {
            replication: r.opt_table(
                top,
                "replication",
                "a [replication] table with user and password_env or password_file",
            ),
            lb: r.opt_table(
                top,
                "lb",
                "an [lb] table with floating_address and virtual_router_id",
            ),
            firewall: r.opt_table(top, "firewall", "a [firewall] table with admin_sources"),
            backup: r.opt_table(top, "backup", "a [backup] table with keep_days and time"),
            hardening: r.opt_table(
                top,
                "hardening",
                "a [hardening] table with reboot and reboot_spacing",
            ),
            hosts: r.table_list(top, "hosts", "[[hosts]] tables, one per host"),
        }
    }
}
