//! The application: the document root and its code (the built-in demo page, or the user's files),
//! and its database settings in a PHP file outside the document root. The demo page reads a row from
//! the database, so its health check proves web server → PHP → database.

use super::{Component, Cx, Out, SiteCx};
use crate::desired::HealthCheck;
use crate::render::RenderError;
use crate::spec::{App, Spec};
use serde_json::{json, Map, Value};

pub struct AppComponent;
pub static APP: AppComponent = AppComponent;

pub fn config_path(spec: &Spec) -> String {
    format!("/etc/provision/sites/{}/config.php", spec.site.domain)
}

pub fn demo_message(spec: &Spec) -> String {
    format!(
        "Hello from MariaDB: the database of {} answers",
        spec.site.domain
    )
}

/// The site's page through `address`, as `[site.health_check]` says: by default `/` answers 200,
/// and with the demo app it shows the database row.
pub fn site_check(cx: &Cx, address: &str) -> HealthCheck {
    let spec = cx.spec;
    let c = &spec.site.health_check;
    let expect = match (&c.expect, &spec.site.app) {
        (Some(e), _) => Some(e.clone()),
        (None, App::Demo) => Some(demo_message(spec)),
        (None, App::Files(_)) => None,
    };
    HealthCheck::Http {
        address: address.to_string(),
        port: 80,
        host_header: spec.site.fqdns()[0].clone(),
        path: c.path.clone(),
        status: c.status,
        expect,
    }
}

impl Component for AppComponent {
    fn name(&self) -> &'static str {
        "app"
    }

    fn after(&self) -> &'static [&'static str] {
        // The code reads the database: its hosts go after the primary's.
        &["mariadb"]
    }

    fn context(&self, site: &SiteCx, ctx: &mut Map<String, Value>) {
        let spec = site.spec;
        let db_host = if spec.db_is_local() {
            "localhost".to_string()
        } else {
            spec.db_primary().internal_address().to_string()
        };
        ctx.insert(
            "app".into(),
            json!({ "db_host": db_host, "config_path": config_path(spec) }),
        );
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let spec = cx.spec;
        let root = &spec.site.document_root;
        out.dir(root.clone());
        match &spec.site.app {
            App::Demo => {
                out.file(
                    format!("{root}/index.php"),
                    cx.render("app/index.php", &[])?,
                )
                .code()
                .checked_by("php-lint");
            }
            App::Files(files) => {
                for f in files {
                    let p = out
                        .file(format!("{root}/{}", f.path), f.content.clone())
                        .mode(if f.executable { 0o755 } else { 0o644 })
                        .code();
                    if f.path.ends_with(".php") {
                        p.checked_by("php-lint");
                    }
                }
            }
        }
        out.dir("/etc/provision");
        out.dir("/etc/provision/sites");
        out.dir(format!("/etc/provision/sites/{}", spec.site.domain))
            .mode(0o750)
            .owned("root", "www-data");
        out.file(config_path(spec), cx.render("app/config.php", &[])?)
            .mode(0o640)
            .owned("root", "www-data")
            .sensitive()
            .code()
            .checked_by("php-lint");
        out.check(site_check(cx, &cx.host.ssh.address));
        Ok(())
    }
}
