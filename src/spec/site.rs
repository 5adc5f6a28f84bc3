//! `[site]`: the domain and the names it answers to, the stack, the document root and the
//! application's files. Names derived from the domain (config files, the PHP-FPM socket) are
//! checked here too, so a domain that is valid DNS but too long for them fails at validate.

use super::check::{Checker, Protected};
use super::{AppCheck, Host, Role, Site, Stack};
use crate::error::shown;
use crate::inventory::{RawSite, RawSiteDef};
use crate::names::*;
use toml::Spanned;

/// System directories a document root must not be, or be inside of: provision would own, chmod and
/// fill them, and the web server would serve them. `/etc/provision` and `/var/lib/provision`,
/// which provision manages, are inside `/etc` and `/var/lib`.
const SYSTEM_DIRS: [&str; 22] = [
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/tmp",
    "/root",
    "/var/lib",
    "/var/log",
    "/var/cache",
    "/var/spool",
    "/var/backups",
    "/var/tmp",
    "/var/mail",
];
const MANAGED_DIRS: [&str; 2] = ["/etc/provision", "/var/lib/provision"];

const DOCUMENT_ROOT_ALLOWED: &str = "a directory of the site's own, such as /var/www/<name>, \
/srv/<name>, /opt/<name> or /home/<user>/<name>: not /, not a system directory (/etc, /usr, /bin, \
/sbin, /lib, /lib32, /lib64, /libx32, /boot, /dev, /proc, /sys, /run, /tmp, /root, /var/lib, \
/var/log, /var/cache, /var/spool, /var/backups, /var/tmp, /var/mail) or anything inside one, not a \
directory that contains one (like /var), and not /home or a home directory itself";

/// Why a document root (already a clean absolute path) is refused, if it is.
pub fn document_root_problem(p: &str) -> Option<String> {
    let inside = |dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    if let Some(dir) = SYSTEM_DIRS.iter().find(|d| inside(d)) {
        return Some(format!("inside the system directory {dir}"));
    }
    let contains = |dir: &str| p == "/" || dir.starts_with(&format!("{p}/"));
    if let Some(dir) = SYSTEM_DIRS
        .iter()
        .chain(&MANAGED_DIRS)
        .find(|d| contains(d))
    {
        return Some(format!("it contains {dir}"));
    }
    // `/home` holds everyone's home, `/home/<user>` is one: chowning either to root breaks logins.
    if inside("/home") && p.split('/').count() <= 3 {
        return Some("a home directory itself, or the directory of homes".into());
    }
    None
}

impl Checker<'_> {
    /// One site with its database and zone, checked with the one-site form's keys (`spec` gives
    /// a `[[sites]]` table's errors its own keys); `hosts` are the inventory's, when they checked.
    pub(super) fn site(
        &mut self,
        def: &RawSiteDef,
        protected: &[Protected],
        hosts: Option<&[Host]>,
    ) -> Option<Site> {
        let s = &def.site;
        let domain = self.check(&s.domain, "site.domain", DomainName::parse_zone);
        let stack = self.check(&s.stack, "site.stack", Stack::parse);
        let domain = match (domain, stack) {
            (Some(d), Some(stack)) => self.domain_fits(&s.domain, d, stack),
            (d, _) => d,
        };
        let server_names = self.server_names(s, domain.as_ref());
        let document_root = match (&s.document_root, &domain) {
            (Some(d), _) => self.document_root(d),
            (None, Some(dom)) => Some(format!("/var/www/{dom}")),
            (None, None) => None,
        };
        let php_version = match &s.php_version {
            Some(v) => self
                .check(v, "site.php_version", parse_php_version)
                .map(Some),
            None => Some(None),
        };
        let app = self.app(s, protected);
        let health_check = self.health_check(s.health_check.as_ref());
        let micro_cache = self.micro_cache(s, stack.as_ref());
        let tls = match &s.tls {
            Some(t) => Some(self.site_tls(t, domain.as_ref(), server_names.as_deref())?),
            None => None,
        };
        let database = self.database(&def.database);
        let dns = self.dns(&def.dns, domain.as_ref());
        let name = self.site_name(s, domain.as_ref());
        let served = self.served_by(s, hosts);
        if let (Some(t), Some(raw), Some(hs), Some(on)) = (&tls, &s.tls, hosts, &served) {
            self.acme_hosts(t, raw, hs, on);
        }
        if let (Some(d), Some(_)) = (&domain, &database) {
            self.derived_secrets(d, tls.as_ref());
        }
        // Every check above has run (and recorded its errors): taking the pair apart first is fine.
        let (app, app_options) = app?;
        Some(Site {
            name: name?,
            at: self.at,
            hosts: served?,
            database: database?,
            dns: dns?,
            domain: domain?,
            server_names: server_names?,
            stack: stack?,
            document_root: document_root?,
            app,
            app_options,
            php_version: php_version?,
            health_check: health_check?,
            micro_cache: micro_cache?,
            tls,
        })
    }

    /// Micro-caching is Nginx's: a stack without Nginx has none.
    fn micro_cache(&mut self, s: &RawSite, stack: Option<&Stack>) -> Option<bool> {
        match (&s.micro_cache, stack) {
            (Some(m), Some(st)) if *m.get_ref() && st.name() == "lamp" => {
                self.fail(
                    m.span(),
                    "site.micro_cache",
                    "found true with stack \"lamp\", which has no Nginx to cache in; allowed: false, or stack \"lemp\" or \"nginx-apache\"".into(),
                );
                None
            }
            (Some(m), _) => Some(*m.get_ref()),
            (None, _) => Some(false),
        }
    }

    /// `[site.tls]`, checked against the names the site answers to (when they are valid).
    fn site_tls(
        &mut self,
        t: &crate::inventory::RawTls,
        domain: Option<&DomainName>,
        server_names: Option<&[String]>,
    ) -> Option<super::Tls> {
        let names = match (domain, server_names) {
            (Some(d), Some(n)) => Some(super::fqdns(d, n)),
            _ => None,
        };
        self.tls(t, domain.map(|d| d.as_str()), names.as_deref())
    }

    /// The secrets provision derives for a site whose database password is known: the
    /// application's salt, and the TSIG key of a certificate asked for over DNS-01.
    fn derived_secrets(&mut self, domain: &DomainName, tls: Option<&super::Tls>) {
        self.app_salt(domain);
        if let Some(t) = tls {
            if matches!(&t.cert, super::TlsCert::Acme(a) if a.challenge == super::tls::Challenge::Dns01)
            {
                self.acme_tsig(domain);
            }
        }
    }

    /// The site's short name (`sites.name`), or one made from the domain: `foobar.com` is
    /// `foobar-com`. It names the site's Unix user and group, so it must be one.
    fn site_name(&mut self, s: &RawSite, domain: Option<&DomainName>) -> Option<String> {
        match (&s.name, domain) {
            (Some(n), _) => self.check(n, "site.name", parse_site_name),
            (None, Some(d)) => {
                let made: String = d.as_str().replace('.', "-").chars().take(32).collect();
                let made = made.trim_end_matches('-').to_string();
                match parse_site_name(&made) {
                    Ok(n) => Some(n),
                    Err(allowed) => {
                        self.fail(
                            s.domain.span(),
                            "site.name",
                            format!(
                                "the name made from the domain, {}, cannot name the site; allowed: set name, {allowed}",
                                shown(&made)
                            ),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    /// The web hosts that serve the site: `sites.hosts`, each a host with the `web` role, or by
    /// default every web host.
    fn served_by(&mut self, s: &RawSite, hosts: Option<&[Host]>) -> Option<Vec<String>> {
        let hosts = hosts?;
        let Some(list) = &s.hosts else {
            return Some(
                hosts
                    .iter()
                    .filter(|h| h.has(Role::Web))
                    .map(|h| h.name.clone())
                    .collect(),
            );
        };
        let web: Vec<&str> = hosts
            .iter()
            .filter(|h| h.has(Role::Web))
            .map(|h| h.name.as_str())
            .collect();
        if list.get_ref().is_empty() {
            self.fail(list.span(), "site.hosts", format!("found an empty list; allowed: the names of web hosts that serve the site ({}), or no hosts key for all of them", web.join(", ")));
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, n) in list.get_ref().iter().enumerate() {
            let key = format!("site.hosts[{i}]");
            let name = n.get_ref();
            let why = if out.contains(name) {
                Some("it is named twice".to_string())
            } else {
                match hosts.iter().find(|h| h.name == *name) {
                    None => Some("no [[hosts]] entry has that name".to_string()),
                    Some(h) if !h.has(Role::Web) => {
                        Some("that host has no \"web\" role".to_string())
                    }
                    Some(_) => None,
                }
            };
            match why {
                Some(why) => {
                    self.fail(
                        n.span(),
                        &key,
                        format!(
                            "found {} ({why}); allowed: a web host of the inventory: {}",
                            shown(name),
                            web.join(", ")
                        ),
                    );
                    ok = false;
                }
                None => out.push(name.clone()),
            }
        }
        ok.then_some(out)
    }

    /// `[site.health_check]`: a path of the site, a status, a text. Without it: `/`, 200, and with
    /// the demo app its database row.
    fn health_check(&mut self, h: Option<&crate::inventory::RawHealthCheck>) -> Option<AppCheck> {
        let Some(h) = h else {
            return Some(AppCheck {
                path: "/".into(),
                status: 200,
                expect: None,
            });
        };
        let path = match &h.path {
            Some(p) => self.check(p, "site.health_check.path", |v| {
                // It lands in haproxy.cfg and an HTTP request line: no quotes, spaces or escapes.
                let ok = v.starts_with('/')
                    && v.len() <= 1024
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/?=&%+:,@!*()".contains(&b));
                if ok {
                    Ok(v.to_string())
                } else {
                    Err("a URL path starting with \"/\" of letters, digits and - . _ ~ / ? = & % + : , @ ! * ( ), at most 1024 characters".into())
                }
            })?,
            None => "/".into(),
        };
        let status = match &h.status {
            Some(st) => self.int(
                st,
                "site.health_check.status",
                crate::inventory::HTTP_STATUS,
            )? as u16,
            None => 200,
        };
        let expect = match &h.expect {
            Some(e) => Some(self.check(e, "site.health_check.expect", |v| {
                if v.is_empty() || v.len() > 1024 || v.chars().any(char::is_control) {
                    Err("1 to 1024 printable characters".into())
                } else {
                    Ok(v.to_string())
                }
            })?),
            None => None,
        };
        Some(AppCheck {
            path,
            status,
            expect,
        })
    }

    /// A domain valid in DNS can still be too long for the names the components derive from it
    /// (file names, a socket path): the strictest limit of the components this site can use.
    fn domain_fits(
        &mut self,
        v: &Spanned<String>,
        d: DomainName,
        stack: Stack,
    ) -> Option<DomainName> {
        let len = d.as_str().len();
        match crate::component::domain_limit(stack.name()) {
            Some(limit) if len > limit.max => {
                self.fail(
                    v.span(),
                    "site.domain",
                    format!(
                        "found a domain of {len} characters with stack \"{}\"; allowed: at most {} characters: {}",
                        stack.name(),
                        limit.max,
                        limit.why
                    ),
                );
                None
            }
            _ => Some(d),
        }
    }

    fn server_names(&mut self, s: &RawSite, domain: Option<&DomainName>) -> Option<Vec<String>> {
        let Some(list) = &s.server_names else {
            return Some(vec!["www".to_string()]);
        };
        if list.get_ref().is_empty() {
            self.fail(
                list.span(),
                "site.server_names",
                "found an empty list; allowed: one or more names like \"www\" or \"@\"".into(),
            );
            return None;
        }
        let mut names: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, n) in list.get_ref().iter().enumerate() {
            let key = format!("site.server_names[{i}]");
            match self.check(n, &key, |v| {
                let name = parse_relative_name(v)?;
                fqdn_fits(&name, domain)?;
                Ok(name)
            }) {
                Some(v) if names.contains(&v) => {
                    self.fail(
                        n.span(),
                        &key,
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

    fn document_root(&mut self, d: &Spanned<String>) -> Option<String> {
        let path = self.check(d, "site.document_root", parse_host_path)?;
        match document_root_problem(&path) {
            None => Some(path),
            Some(why) => {
                self.fail(
                    d.span(),
                    "site.document_root",
                    format!(
                        "found {} ({why}); allowed: {DOCUMENT_ROOT_ALLOWED}",
                        shown(&path)
                    ),
                );
                None
            }
        }
    }
}

/// Debian's own accounts and groups, and provision's: a site's user must be none of them.
const SYSTEM_ACCOUNTS: [&str; 32] = [
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "nogroup",
    "messagebus",
    "sshd",
    "mysql",
    "bind",
    "haproxy",
    "adm",
    "staff",
    "users",
    "sudo",
    "shadow",
    "utmp",
    "tty",
    "disk",
];

/// A site's short name: a Unix user name of Debian's kind (lowercase letters, digits and `-`,
/// starting with a letter, at most 32 characters), not an account the system has.
pub fn parse_site_name(v: &str) -> Result<String, crate::error::Allowed> {
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && !v.ends_with('-')
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err("a name of lowercase letters, digits and '-', starting with a letter, at most 32 characters, like \"shop\" (it names the site's Unix user)".into());
    }
    if SYSTEM_ACCOUNTS.contains(&v) || v.starts_with("systemd-") {
        return Err(format!(
            "a name that is not a system account ({} and systemd-*)",
            SYSTEM_ACCOUNTS.join(", ")
        )
        .into());
    }
    Ok(v.to_string())
}
