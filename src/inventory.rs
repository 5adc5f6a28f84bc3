//! The inventory file as written: raw types that mirror the TOML one to one, and how each is read
//! from the parsed TOML tree.
//!
//! Every value that gets validated later is `Spanned`, so a validation error can point at the exact
//! line and column the user wrote. Reading checks only the shape (kinds of values, known keys,
//! required keys); what the values mean is checked in `spec`. The `allowed` texts here are what a
//! user sees when a value has the wrong kind or is missing.

use crate::spec::reader::{Bounds, Reader, Table};
use std::ops::Range;
use toml::Spanned;

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

/// `[hardening]`: sshd, kernel and login defaults, security updates and their reboots.
#[derive(Debug)]
pub struct RawHardening {
    pub span: Range<usize>,
    pub reboot: Option<Spanned<String>>,
    pub reboot_spacing: Option<Spanned<i64>>,
}

pub const REBOOT_SPACING: Bounds = Bounds { min: 5, max: 720 };

/// `[backup]`: a nightly dump of the database.
#[derive(Debug)]
pub struct RawBackup {
    pub keep_days: Option<Spanned<i64>>,
    pub time: Option<Spanned<String>>,
}

pub const KEEP_DAYS: Bounds = Bounds { min: 1, max: 3650 };

/// `[firewall]`: an nftables ruleset on every host; SSH only from `admin_sources`.
#[derive(Debug)]
pub struct RawFirewall {
    pub admin_sources: Spanned<Vec<Spanned<String>>>,
}

/// `[lb]`: the floating address two load balancers share.
#[derive(Debug)]
pub struct RawLb {
    pub span: Range<usize>,
    pub floating_address: Option<Spanned<String>>,
    pub virtual_router_id: Option<Spanned<i64>>,
    pub interface: Option<Spanned<String>>,
}

pub const ROUTER_ID: Bounds = Bounds { min: 1, max: 255 };

/// One site with its database and zone: `[[sites]]` with `[sites.database]` and `[sites.dns]`,
/// or the one-site form's three tables.
#[derive(Debug)]
pub struct RawSiteDef {
    pub site: RawSite,
    pub database: RawDatabase,
    pub dns: RawDns,
}

/// `[replication]`: the account replicas follow the primary with, for every site's database.
#[derive(Debug)]
pub struct RawReplication {
    pub span: Range<usize>,
    pub user: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawSite {
    /// Where the table starts, for problems of the table as a whole.
    pub span: Range<usize>,
    /// `[[sites]]` only: the site's short name (its Unix user, its pool); default from the domain.
    pub name: Option<Spanned<String>>,
    /// `[[sites]]` only: the web hosts that serve it; default every web host.
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub domain: Spanned<String>,
    pub server_names: Option<Spanned<Vec<Spanned<String>>>>,
    pub stack: Spanned<String>,
    pub document_root: Option<Spanned<String>>,
    pub app_dir: Option<Spanned<String>>,
    pub php_version: Option<Spanned<String>>,
    pub health_check: Option<RawHealthCheck>,
    pub app: Option<RawApp>,
    pub micro_cache: Option<Spanned<bool>>,
    pub tls: Option<RawTls>,
}

/// `[site.tls]`: HTTPS, with the user's certificate or one the host makes.
#[derive(Debug)]
pub struct RawTls {
    pub span: Range<usize>,
    pub certificate: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub self_signed: Option<Spanned<bool>>,
    pub acme: Option<RawAcme>,
    pub hsts: Option<Spanned<bool>>,
}

/// `[site.tls.acme]`: a certificate from an ACME CA (Let's Encrypt by default), asked for and
/// renewed on the host.
#[derive(Debug)]
pub struct RawAcme {
    pub span: Range<usize>,
    pub contact: Option<Spanned<String>>,
    pub directory: Option<Spanned<String>>,
    pub challenge: Option<Spanned<String>>,
    pub names: Option<Spanned<Vec<Spanned<String>>>>,
    pub ca_bundle: Option<Spanned<String>>,
    pub test_ca: Option<Spanned<bool>>,
}

/// `[site.app]`: the user's application and what it needs.
#[derive(Debug)]
pub struct RawApp {
    pub span: Range<usize>,
    pub source: Option<Spanned<String>>,
    pub git: Option<Spanned<String>>,
    pub git_ref: Option<Spanned<String>>,
    pub public: Option<Spanned<String>>,
    pub front_controller: Option<Spanned<String>>,
    pub extensions: Option<Spanned<Vec<Spanned<String>>>>,
    pub shared: Option<Spanned<Vec<Spanned<String>>>>,
    pub release_command: Option<Spanned<String>>,
    pub keep: Option<Spanned<i64>>,
    pub php: Vec<crate::spec::reader::UserEntry>,
    pub config: Vec<RawAppConfig>,
}

/// `[[site.app.config]]`: a file of the application rendered from the user's template.
#[derive(Debug)]
pub struct RawAppConfig {
    pub span: Range<usize>,
    pub template: Spanned<String>,
    pub path: Spanned<String>,
}

pub const KEEP_RELEASES: Bounds = Bounds { min: 2, max: 100 };

/// `[site.health_check]`: how a request proves the application works.
#[derive(Debug)]
pub struct RawHealthCheck {
    pub path: Option<Spanned<String>>,
    pub status: Option<Spanned<i64>>,
    pub expect: Option<Spanned<String>>,
}

pub const HTTP_STATUS: Bounds = Bounds { min: 100, max: 599 };

#[derive(Debug)]
pub struct RawDatabase {
    pub span: Range<usize>,
    pub name: Spanned<String>,
    pub user: Spanned<String>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub replication_user: Option<Spanned<String>>,
    pub replication_password_env: Option<Spanned<String>>,
    pub replication_password_file: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawDns {
    pub span: Range<usize>,
    pub ttl: Option<Spanned<i64>>,
    pub soa_contact: Spanned<String>,
    pub nameservers: Vec<Spanned<String>>,
    pub records: Vec<RawRecord>,
}

#[derive(Debug)]
pub struct RawRecord {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub value: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
}

#[derive(Debug)]
pub struct RawHost {
    pub span: Range<usize>,
    pub name: Spanned<String>,
    pub public_address: Spanned<String>,
    pub private_address: Option<Spanned<String>>,
    pub roles: Spanned<Vec<Spanned<String>>>,
    pub ssh: RawSsh,
    /// The host's OS release, for `render` (a host's own release is a fact for `plan`).
    pub release: Option<Spanned<String>>,
    /// Read only by the test lab (`tests/lab/lab`); accepted here so lab inventories stay valid.
    pub lab: Option<RawLab>,
}

#[derive(Debug)]
pub struct RawSsh {
    pub address: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub user: Option<Spanned<String>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<i64>>,
    pub proxy_jump: Option<Spanned<String>>,
    pub config: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawLab {
    /// Defaults to "systemd" in the lab.
    pub flavour: Option<Spanned<String>>,
    /// The Debian release of the lab host's image; the lab picks its default.
    pub release: Option<Spanned<String>>,
    /// "outer" (default), "inner" (reachable only through a bastion) or "bastion" (on both).
    pub network: Option<Spanned<String>>,
    /// The lab host's IP address when `ssh.address` is a Host alias of an ssh_config.
    pub address: Option<Spanned<String>>,
}

impl RawInventory {
    /// Reads the whole file; `None` when any shape error was recorded in `r`.
    pub fn read(r: &mut Reader, mut top: Table) -> Option<RawInventory> {
        let many = top.has("sites");
        let (one, list) = if many {
            for key in ["site", "database", "dns"] {
                if top.has(key) {
                    r.conflict(&top, key, "sites", "the sites as [[sites]] tables (each with [sites.database] and [sites.dns]), or the one site of [site], [database] and [dns], not both");
                }
            }
            let list = r.table_list(
                &mut top,
                "sites",
                "[[sites]] tables, one per site, each with domain and stack, [sites.database] and [sites.dns]",
            );
            (None, list)
        } else {
            let site = r.req_table(
                &mut top,
                "site",
                "a [site] table with domain and stack, or [[sites]] tables",
            );
            let database = r.req_table(
                &mut top,
                "database",
                "a [database] table with name, user and password_env or password_file",
            );
            let dns = r.req_table(&mut top, "dns", "a [dns] table with soa_contact");
            (Some((site, database, dns)), Some(Vec::new()))
        };
        let replication = r.opt_table(
            &mut top,
            "replication",
            "a [replication] table with user and password_env or password_file",
        );
        let lb = r.opt_table(
            &mut top,
            "lb",
            "an [lb] table with floating_address and virtual_router_id",
        );
        let firewall = r.opt_table(
            &mut top,
            "firewall",
            "a [firewall] table with admin_sources",
        );
        let backup = r.opt_table(
            &mut top,
            "backup",
            "a [backup] table with keep_days and time",
        );
        let hardening = r.opt_table(
            &mut top,
            "hardening",
            "a [hardening] table with reboot and reboot_spacing",
        );
        let hosts = r.table_list(&mut top, "hosts", "[[hosts]] tables, one per host");
        r.finish(top);
        let hardening = hardening.map(|h| h.and_then(|t| RawHardening::read(r, t)));
        let backup = backup.map(|b| b.and_then(|t| RawBackup::read(r, t)));
        let firewall = firewall.map(|f| f.and_then(|t| RawFirewall::read(r, t)));
        let replication = replication.map(|t| t.and_then(|t| RawReplication::read(r, t)));
        let sites: Option<Vec<RawSiteDef>> = match (one, list) {
            (Some((site, database, dns)), _) => {
                let site = site.and_then(|t| RawSite::read(r, t, false));
                let database = database.and_then(|t| RawDatabase::read(r, t));
                let dns = dns.and_then(|t| RawDns::read(r, t));
                Some(vec![RawSiteDef {
                    site: site?,
                    database: database?,
                    dns: dns?,
                }])
            }
            (None, list) => list.and_then(|list| {
                list.into_iter()
                    .map(|t| RawSiteDef::read(r, t))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect()
            }),
        };
        if many && sites.as_ref().is_some_and(Vec::is_empty) {
            r.fail_at(
                0..0,
                "sites",
                "found no [[sites]] table; allowed: one or more".into(),
            );
            return None;
        }
        let lb = lb.map(|l| l.and_then(|t| RawLb::read(r, t)));
        let hosts = hosts.map(|list| {
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

impl RawSiteDef {
    /// One `[[sites]]` table: the site's keys, and its `database` and `dns` tables.
    fn read(r: &mut Reader, mut t: Table) -> Option<RawSiteDef> {
        let database = r.req_table(
            &mut t,
            "database",
            "a [sites.database] table with name, user and password_env or password_file",
        );
        let dns = r.req_table(&mut t, "dns", "a [sites.dns] table with soa_contact");
        let database = database.and_then(|d| RawDatabase::read(r, d));
        let dns = dns.and_then(|d| RawDns::read(r, d));
        let site = RawSite::read(r, t, true);
        Some(RawSiteDef {
            site: site?,
            database: database?,
            dns: dns?,
        })
    }
}

impl RawReplication {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawReplication> {
        let user = r.opt_str(&mut t, "user", SQL_IDENT);
        let password_env = r.opt_str(&mut t, "password_env", ENV_NAME);
        let password_file = r.opt_str(&mut t, "password_file", LOCAL_PATH);
        let span = t.span.clone();
        r.finish(t);
        Some(RawReplication {
            span,
            user: user?,
            password_env: password_env?,
            password_file: password_file?,
        })
    }
}

impl RawHardening {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawHardening> {
        let reboot = r.opt_str(
            &mut t,
            "reboot",
            "\"never\", or the time of day of the first host's reboot as HH:MM, like \"03:00\"",
        );
        let reboot_spacing = r.opt_int(&mut t, "reboot_spacing", REBOOT_SPACING);
        let span = t.span.clone();
        r.finish(t);
        Some(RawHardening {
            span,
            reboot: reboot?,
            reboot_spacing: reboot_spacing?,
        })
    }
}

impl RawBackup {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawBackup> {
        let keep_days = r.opt_int(&mut t, "keep_days", KEEP_DAYS);
        let time = r.opt_str(
            &mut t,
            "time",
            "the time of day of the nightly dump, host time, like \"03:15\"",
        );
        r.finish(t);
        Some(RawBackup {
            keep_days: keep_days?,
            time: time?,
        })
    }
}

impl RawFirewall {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawFirewall> {
        let admin_sources = r.req_str_list(
            &mut t,
            "admin_sources",
            "networks SSH is let in from, like \"203.0.113.0/24\"",
        );
        r.finish(t);
        Some(RawFirewall {
            admin_sources: admin_sources?,
        })
    }
}

impl RawLb {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawLb> {
        let floating_address = r.opt_str(
            &mut t,
            "floating_address",
            "an address with its prefix length, like \"203.0.113.50/24\"",
        );
        let virtual_router_id = r.opt_int(&mut t, "virtual_router_id", ROUTER_ID);
        let interface = r.opt_str(
            &mut t,
            "interface",
            "a network interface name like \"eth0\"",
        );
        let span = t.span.clone();
        r.finish(t);
        Some(RawLb {
            span,
            floating_address: floating_address?,
            virtual_router_id: virtual_router_id?,
            interface: interface?,
        })
    }
}

impl RawSite {
    /// `many`: a `[[sites]]` table, which also takes `name` and `hosts`.
    fn read(r: &mut Reader, mut t: Table, many: bool) -> Option<RawSite> {
        let (name, hosts) = if many {
            (
                r.opt_str(
                    &mut t,
                    "name",
                    "the site's short name: lowercase letters, digits and '-', starting with a letter, like \"shop\"",
                ),
                r.opt_str_list(&mut t, "hosts", "the name of a host with the web role"),
            )
        } else {
            (Some(None), Some(None))
        };
        let domain = r.req_str(&mut t, "domain", "the site's DNS name, like \"foobar.com\"");
        let server_names = r.opt_str_list(&mut t, "server_names", RELATIVE_NAME);
        let stack = r.req_str(&mut t, "stack", &crate::spec::Stack::allowed());
        let document_root = r.opt_str(
            &mut t,
            "document_root",
            "an absolute path like \"/var/www/foobar.com\"",
        );
        let app_dir = r.opt_str(&mut t, "app_dir", LOCAL_PATH);
        let php_version = r.opt_str(
            &mut t,
            "php_version",
            "a PHP version in quotes, like \"8.4\"",
        );
        let health_check = r.opt_table(
            &mut t,
            "health_check",
            "a table: [site.health_check] with path, status, expect",
        );
        let micro_cache = r.opt_bool(&mut t, "micro_cache");
        let tls = r.opt_table(
            &mut t,
            "tls",
            "a table: [site.tls] with self_signed = true, certificate and key, or acme = { contact = \"...\" }; and hsts",
        );
        let app = r.opt_table(
            &mut t,
            "app",
            "a table: [site.app] with source (or git and ref), public, front_controller, extensions, shared, release_command, keep, [site.app.php], [[site.app.config]]",
        );
        let span = t.span.clone();
        r.finish(t);
        let health_check = health_check.map(|h| h.and_then(|h| RawHealthCheck::read(r, h)));
        let app = app.map(|a| a.and_then(|a| RawApp::read(r, a)));
        let tls = tls.map(|a| a.and_then(|a| RawTls::read(r, a)));
        Some(RawSite {
            span,
            name: name?,
            hosts: hosts?,
            domain: domain?,
            server_names: server_names?,
            stack: stack?,
            document_root: document_root?,
            app_dir: app_dir?,
            php_version: php_version?,
            health_check: health_check?,
            app: app?,
            micro_cache: micro_cache?,
            tls: tls?,
        })
    }
}

impl RawTls {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawTls> {
        let certificate = r.opt_str(
            &mut t,
            "certificate",
            "a PEM file with the site's certificate, then its intermediates; relative to the inventory's directory or absolute",
        );
        let key = r.opt_str(
            &mut t,
            "key",
            "a PEM file with the certificate's private key, not encrypted; relative to the inventory's directory or absolute",
        );
        let self_signed = r.opt_bool(&mut t, "self_signed");
        let acme = r.opt_table(
            &mut t,
            "acme",
            "a table: acme = { contact = \"you@example.com\" } with directory, challenge, names, ca_bundle, test_ca",
        );
        let hsts = r.opt_bool(&mut t, "hsts");
        let span = t.span.clone();
        r.finish(t);
        let acme = acme.map(|a| a.and_then(|a| RawAcme::read(r, a)));
        Some(RawTls {
            span,
            certificate: certificate?,
            key: key?,
            self_signed: self_signed?,
            acme: acme?,
            hsts: hsts?,
        })
    }
}

impl RawAcme {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawAcme> {
        let contact = r.opt_str(
            &mut t,
            "contact",
            "an e-mail address the CA writes to about the certificates",
        );
        let directory = r.opt_str(
            &mut t,
            "directory",
            "the CA's directory URL (https://...), or \"letsencrypt\" (the default) or \"staging\"",
        );
        let challenge = r.opt_str(&mut t, "challenge", "\"http-01\" or \"dns-01\"");
        let names = r.opt_str_list(
            &mut t,
            "names",
            "a name of the site (site.domain or one of site.server_names)",
        );
        let ca_bundle = r.opt_str(
            &mut t,
            "ca_bundle",
            "a PEM file with the roots the CA's directory URL is served with (a private or test CA); relative to the inventory's directory or absolute",
        );
        let test_ca = r.opt_bool(&mut t, "test_ca");
        let span = t.span.clone();
        r.finish(t);
        Some(RawAcme {
            span,
            contact: contact?,
            directory: directory?,
            challenge: challenge?,
            names: names?,
            ca_bundle: ca_bundle?,
            test_ca: test_ca?,
        })
    }
}

impl RawApp {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawApp> {
        let source = r.opt_str(
            &mut t,
            "source",
            "the application: a directory, or a .tar, .tar.gz or .tgz file, relative to the inventory's directory or absolute",
        );
        let git = r.opt_str(
            &mut t,
            "git",
            "a git repository on this machine, relative to the inventory's directory or absolute",
        );
        let git_ref = r.opt_str(
            &mut t,
            "ref",
            "a branch, tag or commit of the git repository, like \"v1.2\"",
        );
        let front_controller = r.opt_str(
            &mut t,
            "front_controller",
            "the PHP file that answers every path that is not a file, like \"index.php\"",
        );
        let public = r.opt_str(
            &mut t,
            "public",
            "the directory of the application served as the document root, like \"public\"",
        );
        let extensions = r.opt_str_list(&mut t, "extensions", "a PHP extension like \"intl\"");
        let shared = r.opt_str_list(
            &mut t,
            "shared",
            "a directory of the application kept across releases, like \"storage\"",
        );
        let release_command = r.opt_str(
            &mut t,
            "release_command",
            "a shell command run in each new release before it goes live",
        );
        let keep = r.opt_int(&mut t, "keep", KEEP_RELEASES);
        let php = r.opt_table(&mut t, "php", "a table of PHP settings: [site.app.php]");
        let config = r.table_list(
            &mut t,
            "config",
            "tables: [[site.app.config]] with template and path",
        );
        let span = t.span.clone();
        r.finish(t);
        let php = match php {
            Some(Some(p)) => r.str_map(p, "a PHP setting's value, like \"256M\""),
            Some(None) => Some(Vec::new()),
            None => None,
        };
        let config = config.map(|list| {
            list.into_iter()
                .filter_map(|mut c| {
                    let template = r.req_str(
                        &mut c,
                        "template",
                        "the template file, relative to the inventory's directory or absolute",
                    );
                    let path = r.req_str(
                        &mut c,
                        "path",
                        "where the file goes in the application, like \"wp-config.php\"",
                    );
                    let span = c.span.clone();
                    r.finish(c);
                    Some(RawAppConfig {
                        span,
                        template: template?,
                        path: path?,
                    })
                })
                .collect::<Vec<_>>()
        });
        Some(RawApp {
            span,
            source: source?,
            git: git?,
            git_ref: git_ref?,
            public: public?,
            front_controller: front_controller?,
            extensions: extensions?,
            shared: shared?,
            release_command: release_command?,
            keep: keep?,
            php: php?,
            config: config?,
        })
    }
}

impl RawHealthCheck {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawHealthCheck> {
        let path = r.opt_str(&mut t, "path", "a URL path like \"/health\"");
        let status = r.opt_int(&mut t, "status", HTTP_STATUS);
        let expect = r.opt_str(&mut t, "expect", "a text the page must contain");
        r.finish(t);
        Some(RawHealthCheck {
            path: path?,
            status: status?,
            expect: expect?,
        })
    }
}

impl RawDatabase {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawDatabase> {
        let name = r.req_str(&mut t, "name", SQL_IDENT);
        let user = r.req_str(&mut t, "user", SQL_IDENT);
        let password_env = r.opt_str(&mut t, "password_env", ENV_NAME);
        let password_file = r.opt_str(&mut t, "password_file", LOCAL_PATH);
        let replication_user = r.opt_str(&mut t, "replication_user", SQL_IDENT);
        let replication_password_env = r.opt_str(&mut t, "replication_password_env", ENV_NAME);
        let replication_password_file = r.opt_str(&mut t, "replication_password_file", LOCAL_PATH);
        let span = t.span.clone();
        r.finish(t);
        Some(RawDatabase {
            span,
            name: name?,
            user: user?,
            password_env: password_env?,
            password_file: password_file?,
            replication_user: replication_user?,
            replication_password_env: replication_password_env?,
            replication_password_file: replication_password_file?,
        })
    }
}

impl RawDns {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawDns> {
        let ttl = r.opt_int(&mut t, "ttl", TTL);
        let soa_contact = r.req_str(
            &mut t,
            "soa_contact",
            "an address like \"hostmaster@foobar.com\"",
        );
        let nameservers = r.opt_str_list(
            &mut t,
            "nameservers",
            "a name server's DNS name, like \"ns1.example.net\"",
        );
        let records = r.table_list(
            &mut t,
            "records",
            "[[dns.records]] tables with name, type and value",
        );
        let span = t.span.clone();
        r.finish(t);
        let records = records.map(|list| {
            list.into_iter()
                .map(|t| RawRecord::read(r, t))
                .collect::<Vec<_>>()
        });
        Some(RawDns {
            span,
            ttl: ttl?,
            soa_contact: soa_contact?,
            nameservers: nameservers?.map(|l| l.into_inner()).unwrap_or_default(),
            records: records?.into_iter().collect::<Option<_>>()?,
        })
    }
}

impl RawRecord {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawRecord> {
        let name = r.req_str(&mut t, "name", RELATIVE_NAME);
        let kind = r.req_str(&mut t, "type", RECORD_TYPES);
        let value = r.req_str(
            &mut t,
            "value",
            "the record's value in quotes, like \"203.0.113.10\" or \"10 mail\"",
        );
        let ttl = r.opt_int(&mut t, "ttl", TTL);
        r.finish(t);
        Some(RawRecord {
            name: name?,
            kind: kind?,
            value: value?,
            ttl: ttl?,
        })
    }
}

impl RawHost {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawHost> {
        let name = r.req_str(&mut t, "name", "a host name like \"web-01\"");
        let public_address = r.req_str(&mut t, "public_address", ADDRESS);
        let private_address = r.opt_str(&mut t, "private_address", ADDRESS);
        let roles = r.req_str_list(&mut t, "roles", ROLES);
        let ssh = r.req_table(
            &mut t,
            "ssh",
            "a table: [hosts.ssh] or ssh = { address = \"...\" }",
        );
        let release = r.opt_str(&mut t, "release", "a release name like \"trixie\"");
        let lab = r.opt_table(&mut t, "lab", "a table: [hosts.lab]");
        let span = t.span.clone();
        r.finish(t);
        let ssh = ssh.and_then(|s| RawSsh::read(r, s));
        let lab = lab.map(|l| l.and_then(|l| RawLab::read(r, l)));
        Some(RawHost {
            span,
            name: name?,
            public_address: public_address?,
            private_address: private_address?,
            roles: roles?,
            ssh: ssh?,
            release: release?,
            lab: lab?,
        })
    }
}

impl RawSsh {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawSsh> {
        let address = r.req_str(&mut t, "address", "an IP address or a DNS name");
        let port = r.opt_int(&mut t, "port", PORT);
        let user = r.opt_str(&mut t, "user", "a Unix user name like \"root\"");
        let identity_file = r.opt_str(&mut t, "identity_file", LOCAL_PATH);
        let known_hosts = r.opt_str(&mut t, "known_hosts", LOCAL_PATH);
        let connect_timeout = r.opt_int(&mut t, "connect_timeout", CONNECT_TIMEOUT);
        let proxy_jump = r.opt_str(&mut t, "proxy_jump", PROXY_JUMP);
        let config = r.opt_str(&mut t, "config", SSH_CONFIG);
        r.finish(t);
        Some(RawSsh {
            address: address?,
            port: port?,
            user: user?,
            identity_file: identity_file?,
            known_hosts: known_hosts?,
            connect_timeout: connect_timeout?,
            proxy_jump: proxy_jump?,
            config: config?,
        })
    }
}

impl RawLab {
    fn read(r: &mut Reader, mut t: Table) -> Option<RawLab> {
        let flavour = r.opt_str(&mut t, "flavour", "\"systemd\" or \"plain\"");
        let release = r.opt_str(&mut t, "release", "\"bookworm\" or \"trixie\"");
        let network = r.opt_str(&mut t, "network", LAB_NETWORK);
        let address = r.opt_str(&mut t, "address", ADDRESS);
        r.finish(t);
        Some(RawLab {
            flavour: flavour?,
            release: release?,
            network: network?,
            address: address?,
        })
    }
}
