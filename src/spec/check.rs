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
    /// The site being checked: its secrets' keys, and the keys its errors are given.
    pub at: crate::secret::SiteRef,
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
            at: crate::secret::SiteRef::ONE,
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
        let hosts = self.hosts(&raw.hosts);
        let mut sites = Vec::new();
        let mut every_site = true;
        for (i, def) in raw.sites.iter().enumerate() {
            self.at = crate::secret::SiteRef {
                index: i as u16,
                many: raw.many,
            };
            let (errors, warnings) = (self.errors.len(), self.warnings.len());
            let site = self.site(def, &protected, hosts.as_deref());
            if let (Some(site), Some(hosts)) = (&site, &hosts) {
                self.zone(def, site, hosts);
            }
            self.rekey(errors, warnings);
            match site {
                Some(s) => sites.push(s),
                None => every_site = false,
            }
        }
        self.at = crate::secret::SiteRef::ONE;
        let replication = self.replication(&raw);
        if let Some(hosts) = &hosts {
            self.topology(&raw, hosts);
            if every_site {
                self.across_sites(&raw, &sites, hosts);
            }
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
        let warnings = std::mem::take(&mut self.warnings);
        Some(Spec {
            source: path.to_path_buf(),
            sites: every_site.then_some(sites)?,
            replication: replication?,
            lb: lb?,
            firewall: firewall?,
            backup: backup?,
            hardening: hardening?,
            hosts: hosts?,
            secrets: std::mem::take(&mut self.secrets),
            warnings,
        })
    }

    /// The errors and warnings recorded since (`errors`, `warnings`) were found checking the site
    /// `self.at` with the one-site form's keys (`site.domain`, `database.name`): in the
    /// `[[sites]]` form they are that site's (`sites[1].domain`, `sites[1].database.name`).
    fn rekey(&mut self, errors: usize, warnings: usize) {
        let at = self.at;
        if !at.many {
            return;
        }
        let rekey = |key: &mut String| {
            for table in ["site", "database", "dns", "app"] {
                let rest = match key.strip_prefix(table) {
                    Some(r) if r.is_empty() || r.starts_with('.') || r.starts_with('[') => r,
                    _ => continue,
                };
                // The one-site form's `app` values live under `site` in a [[sites]] table.
                let base = if table == "app" {
                    format!("{}.app", at.key("site"))
                } else {
                    at.key(table)
                };
                *key = format!("{base}{rest}");
                return;
            }
        };
        for e in &mut self.errors[errors..] {
            rekey(&mut e.key);
        }
        for w in &mut self.warnings[warnings..] {
            rekey(&mut w.key);
        }
    }

    /// The files the inventory names, as far as they exist: what cannot be found on disk cannot be
    /// inside the application directory either.
    fn protected(&self, raw: &RawInventory) -> Vec<Protected> {
        let mut named: Vec<(PathBuf, String)> = vec![(
            self.inventory.clone(),
            format!("the inventory file {}", self.inventory.display()),
        )];
        let mut secret_files: Vec<(&Option<Spanned<String>>, String)> = Vec::new();
        for (i, def) in raw.sites.iter().enumerate() {
            let at = crate::secret::SiteRef {
                index: i as u16,
                many: raw.many,
            };
            let d = &def.database;
            secret_files.push((
                &d.password_file,
                format!("{}.password_file", at.key("database")),
            ));
            secret_files.push((
                &d.replication_password_file,
                format!("{}.replication_password_file", at.key("database")),
            ));
            if let Some(k) = def.site.tls.as_ref().and_then(|t| t.key.as_ref()) {
                let p = self.opened_path(k.get_ref());
                named.push((
                    p.clone(),
                    format!("the TLS key {} ({}.tls.key)", p.display(), at.key("site")),
                ));
            }
        }
        if let Some(r) = &raw.replication {
            secret_files.push((&r.password_file, "replication.password_file".into()));
        }
        for (f, key) in secret_files {
            if let Some(f) = f {
                let p = self.opened_path(f.get_ref());
                named.push((
                    p.clone(),
                    format!("the password file {} ({key})", p.display()),
                ));
            }
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
