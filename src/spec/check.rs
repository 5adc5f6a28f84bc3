//! The checker: turns the raw inventory into a `Spec`, recording every problem with its position
//! instead of stopping at the first. The sections live in `site`, `database`, `hosts` and `dns`;
//! this file has the shared helpers and the order they run in.

use super::sources::Sources;
use super::Spec;
use crate::error::{shown, SourceMap, SpecError};
use crate::inventory::RawInventory;
use crate::spec::reader::Bounds;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) struct Checker<'a> {
    pub map: &'a SourceMap<'a>,
    pub errors: Vec<SpecError>,
    pub sources: &'a dyn Sources,
    pub base: PathBuf,
}

impl Checker<'_> {
    pub(super) fn fail(&mut self, span: std::ops::Range<usize>, key: &str, message: String) {
        self.errors.push(self.map.error(span, key, message));
    }

    /// Runs `parse` on a string value; on failure records "found X; allowed: Y".
    pub(super) fn check<T>(
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

    pub(super) fn int(&mut self, v: &Spanned<i64>, key: &str, bounds: Bounds) -> Option<i64> {
        let n = *v.get_ref();
        if (bounds.min..=bounds.max).contains(&n) {
            Some(n)
        } else {
            self.fail(v.span(), key, format!("found {n}; allowed: {bounds}"));
            None
        }
    }

    pub(super) fn local_path(&self, p: &str) -> PathBuf {
        if p.starts_with("~/") || Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn spec(&mut self, raw: RawInventory, path: &Path) -> Option<Spec> {
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
}
