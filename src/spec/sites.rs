//! What many sites must not share: each site is one object of its own on the hosts that serve it
//! (its Unix user, PHP pool, database and account, document root, zone, names), so two sites that
//! claim the same of any are refused here, as are stacks that cannot run on one host together.

use super::check::Checker;
use super::{Host, Site};
use crate::error::shown;
use crate::inventory::RawInventory;
use std::ops::Range;

/// Which web server a stack puts on port 80: sites of one host must agree on it.
fn front(stack: &str) -> &'static str {
    match stack {
        "lamp" => "Apache",
        _ => "Nginx",
    }
}

impl Checker<'_> {
    /// Every pair of sites, each problem reported at the later site's key.
    pub(super) fn across_sites(&mut self, raw: &RawInventory, sites: &[Site], hosts: &[Host]) {
        let span = |i: usize, what: &str| -> Range<usize> {
            let def = &raw.sites[i];
            match what {
                "name" => def.site.name.as_ref().map(|n| n.span()),
                "stack" => Some(def.site.stack.span()),
                "database.name" => Some(def.database.name.span()),
                "database.user" => Some(def.database.user.span()),
                "document_root" => def.site.document_root.as_ref().map(|d| d.span()),
                "server_names" => def.site.server_names.as_ref().map(|n| n.span()),
                _ => None,
            }
            .unwrap_or_else(|| def.site.domain.span())
        };
        for (j, b) in sites.iter().enumerate() {
            for a in &sites[..j] {
                let mut clash = |what: &str, key: &str, found: &str| {
                    self.fail(
                        span(j, what),
                        &format!("{}.{key}", b.key("site")),
                        format!(
                            "found {}, which {} already has; allowed: a {what} of the site's own",
                            shown(found),
                            a.key("site")
                        ),
                    );
                };
                if a.name == b.name {
                    clash("name", "name", &b.name);
                }
                if a.domain == b.domain {
                    clash("domain", "domain", b.domain.as_str());
                }
                if let Some(n) = b.fqdns().into_iter().find(|n| a.fqdns().contains(n)) {
                    clash("server_names", "server_names", &n);
                }
                if a.database.name == b.database.name {
                    clash("database.name", "database.name", &b.database.name);
                }
                if a.database.user.eq_ignore_ascii_case(&b.database.user) {
                    clash("database.user", "database.user", &b.database.user);
                }
                let (ra, rb) = (&a.document_root, &b.document_root);
                let inside = |x: &str, y: &str| x == y || x.starts_with(&format!("{y}/"));
                if inside(ra, rb) || inside(rb, ra) {
                    self.fail(
                        span(j, "document_root"),
                        &format!("{}.document_root", b.key("site")),
                        format!(
                            "found {}, which is {} the document root of {} ({}); allowed: a directory of the site's own, apart from every other site's",
                            shown(rb),
                            if ra == rb { "also" } else { "inside or around" },
                            a.key("site"),
                            shown(ra)
                        ),
                    );
                }
                self.one_front(span(j, "stack"), a, b, hosts);
            }
        }
        self.apart_sources(raw);
        for h in hosts.iter().filter(|h| h.has(super::Role::Web)) {
            if !sites.iter().any(|s| s.served_by(h)) {
                let w = self.map.error(
                    raw.sites[0].site.domain.span(),
                    "sites",
                    format!("web host {} serves no site", h.name),
                );
                self.warnings.push(w);
            }
        }
    }

    /// One site's application directory (on this machine) inside another's, or the same: the
    /// other's code and files would be deployed into it, and served as its.
    fn apart_sources(&mut self, raw: &RawInventory) {
        let source = |i: usize| {
            let s = &raw.sites[i].site;
            let (v, key) = match (&s.app_dir, s.app.as_ref().and_then(|a| a.source.as_ref())) {
                (Some(d), _) => (d, "app_dir"),
                (None, Some(src)) => (src, "app.source"),
                (None, None) => return None,
            };
            Some((v.clone(), key))
        };
        for j in 0..raw.sites.len() {
            let Some((vb, key)) = source(j) else { continue };
            let pb = self.opened_path(vb.get_ref());
            for i in 0..j {
                let Some((va, _)) = source(i) else { continue };
                let pa = self.opened_path(va.get_ref());
                if pb.starts_with(&pa) || pa.starts_with(&pb) {
                    let at = crate::secret::SiteRef {
                        index: j as u16,
                        many: raw.many,
                    };
                    let other = crate::secret::SiteRef {
                        index: i as u16,
                        many: raw.many,
                    };
                    self.fail(
                        vb.span(),
                        &format!("{}.{key}", at.key("site")),
                        format!(
                            "found {}, which is {} the application directory of {} ({}); allowed: a directory of the site's own, apart from every other site's",
                            shown(vb.get_ref()),
                            if pa == pb { "also" } else { "inside or around" },
                            other.key("site"),
                            shown(va.get_ref())
                        ),
                    );
                }
            }
        }
    }

    /// Sites whose stacks put different web servers on port 80 cannot share a host.
    fn one_front(&mut self, span: Range<usize>, a: &Site, b: &Site, hosts: &[Host]) {
        let (fa, fb) = (front(a.stack.name()), front(b.stack.name()));
        if fa == fb {
            return;
        }
        if let Some(h) = hosts.iter().find(|h| a.served_by(h) && b.served_by(h)) {
            self.fail(
                span,
                &format!("{}.stack", b.key("site")),
                format!(
                    "found \"{}\" on {}, which also serves {} with \"{}\": {fb} and {fa} would both take port 80; allowed: on one host, \"lemp\" and \"nginx-apache\" together (Nginx in front), or \"lamp\" sites alone (set hosts to keep them apart)",
                    b.stack.name(),
                    h.name,
                    a.key("site"),
                    a.stack.name()
                ),
            );
        }
    }
}
