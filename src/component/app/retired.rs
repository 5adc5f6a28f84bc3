//! Sites that left the inventory: what a web host keeps of each (its record, under `RETIRED`)
//! and what goes (its configuration; each component removes its own part, with `gone_because`).

use super::config_dir;
use crate::component::{Cx, Out, Scope};
use crate::spec::Site;

/// The site's record on a web host that serves it (no secret): what provision knows of a site
/// once it left the inventory.
pub(super) fn record_path(site: &Site) -> String {
    format!("{}/site", config_dir(site))
}

/// Where the record of a site that left the inventory is kept, for `provision delete-site`.
pub const RETIRED: &str = crate::host_state::state_path!("/retired");

/// A site this host served that the inventory no longer has: its domain and its record's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    pub domain: String,
    pub record: Vec<(String, String)>,
}

impl Gone {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.record
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The sites this host served (their records, from the app component's probe) that it does not
/// serve now: each one's vhost, pool and configuration go, its data stays (see `render`).
pub fn gone(cx: &Cx) -> Vec<Gone> {
    let Some(lines) = cx.now.facts("app") else {
        return Vec::new();
    };
    let mut out: Vec<Gone> = Vec::new();
    for line in &lines {
        let mut f = line.splitn(3, ' ');
        let (Some(domain), Some(k), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        // Only names provision could have written: they reach paths and commands.
        if crate::names::DomainName::parse(domain).is_err()
            || cx
                .spec
                .sites_on(cx.host)
                .any(|s| s.domain.as_str() == domain)
        {
            continue;
        }
        match out.iter_mut().find(|g| g.domain == domain) {
            Some(g) => g.record.push((k.to_string(), v.to_string())),
            None => out.push(Gone {
                domain: domain.to_string(),
                record: vec![(k.to_string(), v.to_string())],
            }),
        }
    }
    out
}

/// The site's record: what a host keeps of it once it leaves the inventory (no secret).
pub(super) fn record(site: &Site) -> String {
    format!(
        "name {}\ndocument_root {}\ndatabase {}\ndatabase_user {}\n",
        site.name, site.document_root, site.database.name, site.database.user
    )
}

/// The reason a path of a gone site goes.
pub fn gone_because(g: &Gone) -> String {
    format!("site {} left the inventory", g.domain)
}

/// The vhost, and its link, of each site that left, in a web server's directory (`/etc/nginx`,
/// `/etc/apache2`): `sites-available/DOMAIN.conf` and `sites-enabled/DOMAIN.conf`.
pub fn vhosts_gone(cx: &Cx, files: &mut Scope, dir: &str) {
    for g in gone(cx) {
        for sub in ["sites-enabled", "sites-available"] {
            files
                .absent(format!("{dir}/{sub}/{}.conf", g.domain))
                .because(gone_because(&g));
        }
    }
}

/// Each gone site's configuration goes and its record is kept (see `AppComponent::render`).
pub(super) fn render(cx: &Cx, out: &mut Out) {
    for g in gone(cx) {
        let kept = format!(
            "{}; kept: its document root{}, uploads, database{} and Unix user{} (provision delete-site --domain {} removes them, after a backup)",
            gone_because(&g),
            g.get("document_root").map(|d| format!(" {d}")).unwrap_or_default(),
            g.get("database").map(|d| format!(" {d}")).unwrap_or_default(),
            g.get("name").map(|d| format!(" {d}")).unwrap_or_default(),
            g.domain
        );
        out.absent(format!("/etc/provision/sites/{}", g.domain))
            .because(kept);
        out.dir(RETIRED).mode(0o700);
        let record: String = g.record.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        out.file(format!("{RETIRED}/{}", g.domain), record)
            .mode(0o600)
            .because(format!(
                "{}: its record, for provision delete-site",
                gone_because(&g)
            ));
    }
}
