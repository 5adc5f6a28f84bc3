//! The application: its code as an immutable release (`tree`) under the site's base directory,
//! put live by switching `<base>/current`; its config files rendered from the user's templates
//! (outside the release, linked into it: they hold the database password); its shared directories;
//! and the database settings of the demo page in a PHP file outside the document root. The demo
//! page reads a row from the database, so its health check proves web server → PHP → database.

use super::{Component, Cx, Out, SiteCx};
use crate::desired::HealthCheck;
use crate::render::RenderError;
use crate::secret::SecretKey;
use crate::spec::{App, AppConfig, Site};
use crate::tree::{Entry, Kind, Tree};
use serde_json::{json, Map, Value};

mod database;
mod retired;

pub use database::{data as database_data, sql as database_sql};
pub use retired::{gone, gone_because, vhosts_gone, Gone, RETIRED};
use retired::{record, record_path};

pub struct AppComponent;
pub static APP: AppComponent = AppComponent;

/// The site's configuration directory: readable by the site's own user only.
pub fn config_dir(site: &Site) -> String {
    format!("/etc/provision/sites/{}", site.domain)
}

pub fn config_path(site: &Site) -> String {
    format!("{}/config.php", config_dir(site))
}

/// Where the application's config files live; the release links to them.
fn configs_dir(site: &Site) -> String {
    format!("{}/app", config_dir(site))
}

/// The directory the web server serves: the live release (or its public subdirectory).
pub fn web_root(site: &Site) -> String {
    let base = &site.document_root;
    match &site.app_options.public {
        Some(p) => format!("{base}/current/{p}"),
        None => format!("{base}/current"),
    }
}

/// The URL paths of the config files inside the served directory (PHP ones: others are refused
/// by the inventory's checks): never a page, so the web server refuses them by path too, in front
/// of PHP. The front controller, should the user render it, stays a page.
fn config_urls(site: &Site) -> Vec<String> {
    let opts = &site.app_options;
    let front = format!("/{}", opts.front_controller);
    opts.configs
        .iter()
        .filter_map(|c| opts.served_at(&c.path))
        .filter(|url| *url != front)
        .collect()
}

pub fn demo_message(site: &Site) -> String {
    format!(
        "Hello from MariaDB: the database of {} answers",
        site.domain
    )
}

/// The site's page through `address`, as `[site.health_check]` says: by default `/` answers 200,
/// and with the demo app it shows the database row. Where TLS ends at `address` (`tls`): over
/// HTTPS, and plain HTTP must redirect there.
pub fn site_checks(site: &Site, address: &str, tls: bool) -> Vec<HealthCheck> {
    let page = site_check(site, address);
    if !tls {
        return vec![page];
    }
    let HealthCheck::Http {
        host_header, path, ..
    } = &page
    else {
        return vec![page];
    };
    let redirect = HealthCheck::Http {
        address: address.to_string(),
        port: 80,
        host_header: host_header.clone(),
        path: path.clone(),
        status: 301,
        expect: None,
        tls: false,
        location: Some(format!("https://{host_header}{path}")),
    };
    let mut page = page;
    if let HealthCheck::Http { port, tls, .. } = &mut page {
        (*port, *tls) = (443, true);
    }
    vec![page, redirect]
}

fn site_check(site: &Site, address: &str) -> HealthCheck {
    let c = &site.health_check;
    let expect = match (&c.expect, &site.app) {
        (Some(e), _) => Some(e.clone()),
        (None, App::Demo) => Some(demo_message(site)),
        (None, App::Files(_)) => None,
    };
    HealthCheck::Http {
        address: address.to_string(),
        port: 80,
        host_header: site.fqdns()[0].clone(),
        path: c.path.clone(),
        status: c.status,
        expect,
        tls: false,
        location: None,
    }
}

/// The relative directories `rels` with every ancestor of each, sorted, once each: `a/b` → `a`,
/// `a/b` (parents before children, as the paths are created in order).
fn with_ancestors<'a>(rels: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = rels
        .flat_map(|rel| {
            let parts: Vec<&str> = rel.split('/').collect();
            (1..=parts.len())
                .map(|n| parts[..n].join("/"))
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn render_config(cx: &Cx, c: &AppConfig, ctx: &tera::Context) -> Result<String, RenderError> {
    crate::render::templates::render_user_template(&c.file, &c.template, ctx).map_err(|e| {
        RenderError::Template {
            host: cx.host.name.clone(),
            message: e.to_string(),
        }
    })
}

/// A user's template may write a secret only in a form the redactor masks: as it is, or through
/// the escaping filters. Any other (`upper`, `truncate`, `escape_xml`, a slice...) would show in
/// plan's diff of the file. Rendered again with two sets of made-up secrets (`Secrets::stand_ins`),
/// the two texts, each masked, must be one; else the template is refused, naming the line.
fn masks_its_secrets(cx: &Cx, c: &AppConfig) -> Result<(), RenderError> {
    let real = &cx.spec.secrets;
    let mut texts = Vec::new();
    for seed in 0..2 {
        let stand_ins = real.stand_ins(seed);
        let mut values = real.swap_in_json(cx.values.clone(), &stand_ins);
        values["host"] = crate::render::host_values(cx.host);
        let ctx = tera::Context::from_serialize(&values).unwrap_or_default();
        let text = render_config(cx, c, &ctx)?;
        texts.push(stand_ins.redactor().redact(&text));
    }
    if texts[0] == texts[1] {
        return Ok(());
    }
    let same = texts[0]
        .lines()
        .zip(texts[1].lines())
        .take_while(|(a, b)| a == b)
        .count();
    Err(RenderError::Template {
        host: cx.host.name.clone(),
        message: format!(
            "the template {} writes a secret in a form provision cannot mask (line {} of {}), so plan would show it; allowed: a secret as it is, or through php_string, json_string, sql_string, shell_word or cnf_string",
            c.file,
            same + 1,
            c.path
        ),
    })
}

impl Component for AppComponent {
    fn name(&self) -> &'static str {
        "app"
    }

    fn after(&self) -> &'static [&'static str] {
        // The code reads the database: its hosts go after the primary's.
        &["mariadb"]
    }

    fn context(&self, cx: &SiteCx, ctx: &mut Map<String, Value>) {
        let (spec, site) = (cx.spec, cx.site);
        let db_host = if spec.db_is_local() {
            "localhost".to_string()
        } else {
            spec.db_primary().internal_address().to_string()
        };
        let base = &site.document_root;
        ctx.insert(
            "app".into(),
            json!({
                "db_host": db_host,
                "config_dir": config_dir(site),
                "config_path": config_path(site),
                "web_root": web_root(site),
                "base": base,
                "shared": format!("{base}/shared"),
                "php": site.app_options.php,
                "front_controller": site.app_options.front_controller,
                "config_urls": config_urls(site),
                "salt": cx.opts.secret(&spec.secrets, SecretKey::AppSalt(site.at)).unwrap_or_default(),
            }),
        );
    }

    /// The records of the sites under /etc/provision/sites: `<domain> <key> <value>` lines, all
    /// read by one `awk` when there is one (dash's builtins read a byte per system call: 8 ms for
    /// 50 sites).
    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some(
            "for f in /etc/provision/sites/*/site; do [ -f \"$f\" ] || continue; \
             awk '{ d = FILENAME; sub(/\\/site$/, \"\", d); sub(/.*\\//, \"\", d); print d, $0 }' /etc/provision/sites/*/site; break; done"
                .into(),
        )
    }

    /// A site this host no longer serves stops being served here (each component that served it
    /// removes its part, with the reason); its configuration goes, its record is kept under
    /// `RETIRED`, and its document root, uploads, database and user stay until
    /// `provision delete-site` removes them after a backup.
    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        retired::render(cx, out);
        Ok(())
    }

    /// The site's code, configuration and checks. Its base directory is the site user's, readable
    /// by the web server (group www-data) and by no other site; its configuration is readable by
    /// the site's user alone.
    fn render_site(&self, cx: &Cx, site: &Site, out: &mut Out) -> Result<(), RenderError> {
        let opts = &site.app_options;
        let base = &site.document_root;
        let mut entries = release_entries(cx, site)?;
        out.dir(base.clone())
            .mode(0o750)
            .owned(site.name.as_str(), "www-data");
        out.dir(format!("{base}/releases"));
        shared_dirs(site, out, &mut entries);
        site_config(cx, site, out)?;
        user_configs(cx, site, out, &mut entries)?;
        let mut tree = Tree::new(base, entries, opts.release_command.clone(), opts.keep);
        tree.check = Some(super::php::release_check(&super::php::version(cx)?));
        let (marker, id) = (tree.marker(), tree.id.clone());
        out.release(marker, tree);
        // The switch: one rename of a link. New code counts at once (PHP reloads: opcache and the
        // realpath cache start afresh).
        out.link(format!("{base}/current"), format!("releases/{id}"))
            .code();
        for c in site_checks(
            site,
            &cx.host.ssh.address,
            super::tls::on_web(cx.spec, site),
        ) {
            out.check(c);
        }
        Ok(())
    }
}

/// The release's files: the demo page, or the application's files but for what its shared
/// directories hold.
fn release_entries(cx: &Cx, site: &Site) -> Result<Vec<Entry>, RenderError> {
    let opts = &site.app_options;
    Ok(match &site.app {
        App::Demo => vec![Tree::file(
            "index.php",
            0o644,
            cx.render("app/index.php", &[])?.into_bytes(),
        )],
        App::Files(files) => files
            .iter()
            // A shared directory's content lives outside the releases.
            .filter(|f| {
                !opts
                    .shared
                    .iter()
                    .any(|s| f.path == *s || f.path.starts_with(&format!("{s}/")))
            })
            .map(|f| {
                let mode = if f.executable { 0o755 } else { 0o644 };
                Tree::hashed_file(&f.path, mode, f.sha.clone(), f.content.clone())
            })
            .collect(),
    })
}

/// The shared directories under `<base>/shared`, each linked from the release in its place.
fn shared_dirs(site: &Site, out: &mut Out, entries: &mut Vec<Entry>) {
    let opts = &site.app_options;
    let base = &site.document_root;
    let user = site.name.as_str();
    if opts.shared.is_empty() {
        return;
    }
    out.dir(format!("{base}/shared"));
    for d in with_ancestors(opts.shared.iter().map(String::as_str)) {
        // Only the shared directories themselves are the application's to write; what it
        // writes there keeps the web server's group (setgid), so it can be served.
        let writable = opts.shared.contains(&d);
        let p = out.dir(format!("{base}/shared/{d}"));
        if writable {
            p.mode(0o2750).owned(user, "www-data");
        }
    }
    // (Their content in the source was left out by `release_entries`.)
    for s in &opts.shared {
        entries.push(Entry {
            path: s.clone(),
            kind: Kind::Link(format!("{base}/shared/{s}")),
        });
    }
}

/// The site's configuration directory, its record and the database settings (`config.php`).
fn site_config(cx: &Cx, site: &Site, out: &mut Out) -> Result<(), RenderError> {
    let user = site.name.as_str();
    out.dir("/etc/provision");
    out.dir("/etc/provision/sites");
    out.dir(config_dir(site)).mode(0o750).owned("root", user);
    out.file(record_path(site), record(site))
        .mode(0o640)
        .owned("root", user);
    out.file(config_path(site), cx.render("app/config.php", &[])?)
        .mode(0o640)
        .owned("root", user)
        .sensitive()
        .code()
        .checked_by("php-lint");
    Ok(())
}

/// The user's config files, rendered outside the release (they hold secrets) and linked into it
/// in place of any file of the same path.
fn user_configs(
    cx: &Cx,
    site: &Site,
    out: &mut Out,
    entries: &mut Vec<Entry>,
) -> Result<(), RenderError> {
    let opts = &site.app_options;
    let user = site.name.as_str();
    if opts.configs.is_empty() {
        return Ok(());
    }
    let dir = configs_dir(site);
    out.dir(dir.clone()).mode(0o750).owned("root", user);
    let parents = opts.configs.iter().filter_map(|c| c.path.rsplit_once('/'));
    for d in with_ancestors(parents.map(|(parent, _)| parent)) {
        out.dir(format!("{dir}/{d}"))
            .mode(0o750)
            .owned("root", user);
    }
    for c in &opts.configs {
        let text = render_config(cx, c, cx.base)?;
        masks_its_secrets(cx, c)?;
        let path = format!("{dir}/{}", c.path);
        let p = out
            .file(path.clone(), text)
            .mode(0o640)
            .owned("root", user)
            .sensitive()
            .code();
        if c.path.ends_with(".php") {
            p.checked_by("php-lint");
        }
        entries.retain(|e| e.path != c.path);
        entries.push(Entry {
            path: c.path.clone(),
            kind: Kind::Link(path),
        });
    }
    Ok(())
}
