//! The checker: turns the raw inventory into a `Spec`, recording every problem with its position
//! instead of stopping at the first. The sections live in `site`, `database`, `hosts` and `dns`;
//! this file has the shared helpers and the order they run in.

use super::sources::{FileKey, Sources};
use super::Spec;
use crate::error::{shown, SourceMap, SpecError};
use crate::inventory::RawInventory;
use crate::secret::Secrets;
use crate::spec::reader::Bounds;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) struct Checker<'a> {
    pub(super) map: &'a SourceMap<'a>,
    pub errors: Vec<SpecError>,
    /// Allowed, but worth saying.
    pub warnings: Vec<SpecError>,
    pub sources: &'a dyn Sources,
    /// The inventory's directory: relative paths in it are relative to this.
    base: PathBuf,
    inventory: PathBuf,
    /// The secrets read so far, each registered as it is read.
    pub secrets: Secrets,
}

/// A file the inventory names that must never be deployed as part of the application: a password
/// file, an SSH key, the inventory itself.
pub(super) struct Protected {
    pub key: FileKey,
    /// How to name it in a message: `the password file secrets/db (database.password_file)`.
    pub what: String,
}

impl<'a> Checker<'a> {
    pub fn new(map: &'a SourceMap<'a>, sources: &'a dyn Sources, inventory: &Path) -> Self {
        let base = match inventory.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Checker {
            map,
            errors: Vec::new(),
            warnings: Vec::new(),
            sources,
            base,
            inventory: inventory.to_path_buf(),
            secrets: Secrets::default(),
        }
    }

    pub fn fail(&mut self, span: Range<usize>, key: &str, message: String) {
        self.errors.push(self.map.error(span, key, message));
    }

    /// Runs `parse` on a string value; on failure records "found X; allowed: Y".
    pub fn check<T>(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, crate::error::Allowed>,
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

    pub fn int(&mut self, v: &Spanned<i64>, key: &str, bounds: Bounds) -> Option<i64> {
        let n = *v.get_ref();
        if (bounds.min..=bounds.max).contains(&n) {
            Some(n)
        } else {
            self.fail(v.span(), key, format!("found {n}; allowed: {bounds}"));
            None
        }
    }

    /// A path as written in the inventory, for the transport (which expands `~/` itself).
    pub fn local_path(&self, p: &str) -> PathBuf {
        if p.starts_with("~/") || Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            // Through components, so `app_dir = "."` is shown as `.`, not `./.`.
            self.base.join(p).components().collect()
        }
    }

    /// A path provision opens itself (password files, the application directory): `~/` is the
    /// user's home, as in a shell, instead of a directory named `~`.
    pub fn opened_path(&self, p: &str) -> PathBuf {
        match (p.strip_prefix("~/"), self.sources.env_var("HOME")) {
            (Some(rest), Some(home)) if !home.is_empty() => Path::new(&home).join(rest),
            _ => self.local_path(p),
        }
    }

    pub fn spec(&mut self, raw: RawInventory, path: &Path) -> Option<Spec> {
        let protected = self.protected(&raw);
        let site = self.site(&raw.site, &protected);
        let database = self.database(&raw.database, &raw.hosts);
        let hosts = self.hosts(&raw.hosts);
        let dns = self.dns(&raw.dns, site.as_ref().map(|s| &s.domain));
        if let Some(hosts) = &hosts {
            self.topology(&raw, hosts, dns.as_ref());
        }
        if let (Some(site), Some(dns), Some(hosts)) = (&site, &dns, &hosts) {
            self.zone(&raw, site, dns, hosts);
        }
        let lb = self.lb(&raw, hosts.as_deref());
        let backup = match &raw.backup {
            Some(b) => self.backup(b).map(Some),
            None => Some(None),
        };
        let firewall = match &raw.firewall {
            Some(f) => self.firewall(f).map(Some),
            None => Some(None),
        };
        let hardening = match (&raw.hardening, &hosts) {
            (Some(h), Some(list)) => self.hardening(h, list).map(Some),
            (Some(_), None) => None,
            (None, _) => Some(None),
        };
        if let Some(site) = &site {
            self.app_salt(&site.domain);
        }
        let warnings = std::mem::take(&mut self.warnings);
        Some(Spec {
            source: path.to_path_buf(),
            site: site?,
            database: database?,
            dns: dns?,
            lb: lb?,
            firewall: firewall?,
            backup: backup?,
            hardening: hardening?,
            hosts: hosts?,
            secrets: std::mem::take(&mut self.secrets),
            warnings,
        })
    }

    /// The files the inventory names, as far as they exist: what cannot be found on disk cannot be
    /// inside the application directory either.
    fn protected(&self, raw: &RawInventory) -> Vec<Protected> {
        let mut named: Vec<(PathBuf, String)> = vec![(
            self.inventory.clone(),
            format!("the inventory file {}", self.inventory.display()),
        )];
        let d = &raw.database;
        for (f, key) in [
            (&d.password_file, "database.password_file"),
            (
                &d.replication_password_file,
                "database.replication_password_file",
            ),
        ] {
            if let Some(f) = f {
                let p = self.opened_path(f.get_ref());
                named.push((
                    p.clone(),
                    format!("the password file {} ({key})", p.display()),
                ));
            }
        }
        if let Some(k) = raw.site.tls.as_ref().and_then(|t| t.key.as_ref()) {
            let p = self.opened_path(k.get_ref());
            named.push((
                p.clone(),
                format!("the TLS key {} (site.tls.key)", p.display()),
            ));
        }
        for (i, h) in raw.hosts.iter().enumerate() {
            for (f, what, key) in [
                (&h.ssh.identity_file, "the SSH key", "identity_file"),
                (&h.ssh.known_hosts, "the known_hosts file", "known_hosts"),
            ] {
                if let Some(f) = f {
                    let p = self.opened_path(f.get_ref());
                    let label = format!("{what} {} (hosts[{i}].ssh.{key})", p.display());
                    named.push((p, label));
                }
            }
        }
        named
            .into_iter()
            .filter_map(|(p, what)| {
                let key = self.sources.file_key(&p).ok()?;
                Some(Protected { key, what })
            })
            .collect()
    }
}
