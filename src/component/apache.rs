//! Apache, with the threaded event MPM, handing `.php` to each site's own PHP-FPM pool through
//! `proxy_fcgi`: in `lamp` as the web server in front; in `nginx-apache` as the application server
//! behind Nginx, on loopback, logging the client address through `mod_remoteip`. Modules are
//! managed as `mods-enabled` links, exactly what `a2enmod` leaves.

use super::{Component, Cx, Out, Scope, SiteCx};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Site;
use serde_json::{json, Map, Value};

/// Apache's port behind Nginx in the nginx-apache stack (loopback only).
const BACKEND_PORT: u16 = 8080;

pub struct Apache;
pub static APACHE: Apache = Apache;

/// Whether Apache is the web server in front on this host (`lamp`), rather than the application
/// server behind Nginx (`nginx-apache`): the sites of one host agree on it (see `spec`).
fn in_front(cx: &Cx) -> bool {
    cx.spec.sites_on(cx.host).any(|s| s.stack.name() == "lamp")
}

/// Whether Apache ends TLS for `site`: it is in front, and no load balancer ends it.
fn ends_tls(cx: &Cx, site: &Site) -> bool {
    site.stack.name() == "lamp" && super::tls::on_web(cx.spec, site)
}

impl Component for Apache {
    fn name(&self) -> &'static str {
        "apache"
    }
    fn domain_limit(&self) -> Option<super::DomainLimit> {
        Some(super::DomainLimit::file(
            "the self-signed certificate Apache reads",
            super::tls::FILE_SUFFIX,
        ))
    }

    fn after(&self) -> &'static [&'static str] {
        &["php-fpm", "mariadb"]
    }

    fn context(&self, _site: &SiteCx, ctx: &mut Map<String, Value>) {
        ctx.insert("apache".into(), json!({ "port": BACKEND_PORT }));
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let v = super::php::version(cx)?;
        let front = in_front(cx);
        let any_tls = cx.spec.sites_on(cx.host).any(|s| ends_tls(cx, s));
        out.service("apache2", "apache2", "/run/apache2/apache2.pid", "apache2");
        // Listening addresses and modules only take effect on a restart.
        out.file(
            "/etc/apache2/ports.conf",
            cx.render(
                "apache/ports.conf",
                &[
                    ("ends_tls", any_tls.into()),
                    ("in_front", front.into()),
                    ("apache", json!({ "port": BACKEND_PORT })),
                ],
            )?,
        )
        .notify(Handler::restart("apache2"))
        .checked_by("apache2");
        let mut files = out.scope(Handler::reload("apache2"), "apache2");
        status_site(cx, &mut files, front)?;
        retired_files(cx, &mut files);
        let php_mod = format!("php{v}");
        let mut mods = out.scope(Handler::restart("apache2"), "apache2");
        for (name, with_conf, enabled) in modules(&php_mod, front, any_tls) {
            module(&mut mods, name, with_conf, enabled);
        }
        out.validator(
            "apache2",
            ". /etc/apache2/envvars && mkdir -p \"$APACHE_RUN_DIR\" \"$APACHE_LOCK_DIR\" \"$APACHE_LOG_DIR\" && apache2 -d {root}/etc/apache2 -f apache2.conf -t",
            &["/etc/apache2"],
        );
        Ok(())
    }

    fn render_site(&self, cx: &Cx, site: &Site, out: &mut Out) -> Result<(), RenderError> {
        let domain = site.domain.as_str();
        let tls = ends_tls(cx, site);
        if tls {
            super::tls::install(
                cx,
                site,
                out,
                "/etc/apache2",
                Handler::reload("apache2"),
                "apache2",
            )?;
        }
        let mut files = out.scope(Handler::reload("apache2"), "apache2");
        files.file(
            format!("/etc/apache2/sites-available/{domain}.conf"),
            cx.render("apache/site.conf", &[("ends_tls", tls.into())])?,
        );
        files.link(
            format!("/etc/apache2/sites-enabled/{domain}.conf"),
            format!("../sites-available/{domain}.conf"),
        );
        Ok(())
    }
}

/// Enables (or disables) a module the Debian way: `mods-enabled/X.load` (and `.conf`) linking to
/// `mods-available`.
/// In front, the loopback VirtualHost with server-status and every pool's status; behind Nginx, none.
fn status_site(cx: &Cx, files: &mut Scope, front: bool) -> Result<(), RenderError> {
    let status = "/etc/apache2/sites-available/provision-status.conf";
    let status_on = "/etc/apache2/sites-enabled/provision-status.conf";
    if front {
        let pools: Vec<Value> = cx
            .spec
            .sites_on(cx.host)
            .map(|s| json!({ "site": s.name, "socket": super::php::socket(cx.release.php, s) }))
            .collect();
        files.file(
            status,
            cx.render("apache/status.conf", &[("fpm", pools.into())])?,
        );
        files.link(status_on, "../sites-available/provision-status.conf");
    } else {
        files.absent(status_on);
        files.absent(status);
    }
    Ok(())
}

/// What Apache no longer serves: mod_php's settings, Debian's default site, and sites that left.
fn retired_files(cx: &Cx, files: &mut Scope) {
    // Every site's PHP runs in its own PHP-FPM pool: mod_php (which ran every site as
    // www-data, in Apache's processes) and its prefork MPM's limits are gone.
    files.absent("/etc/apache2/conf-enabled/provision-mpm.conf");
    files.absent("/etc/apache2/conf-available/provision-mpm.conf");
    files.absent("/etc/apache2/sites-enabled/000-default.conf");
    super::app::vhosts_gone(cx, files, "/etc/apache2");
}

/// Apache's modules: `(name, with a .conf, enabled)`; mod_php (`php_mod`) and the prefork MPM
/// stay disabled.
fn modules(php_mod: &str, front: bool, any_tls: bool) -> Vec<(&str, bool, bool)> {
    let mut modules: Vec<(&str, bool, bool)> = vec![
        (php_mod, true, false),
        ("mpm_prefork", true, false),
        ("mpm_event", true, true),
        ("proxy", true, true),
        ("proxy_fcgi", false, true),
    ];
    if front {
        modules.extend([
            // server-status on the loopback status VirtualHost.
            ("status", true, true),
            // Cache headers and compression of static files.
            ("expires", false, true),
            ("deflate", true, true),
        ]);
    } else {
        modules.push(("remoteip", false, true));
    }
    // TLS (mod_ssl and its session cache), the redirect to HTTPS and HSTS; left as they are
    // without TLS, as other sites of the host may use them.
    if any_tls {
        modules.extend([
            ("ssl", true, true),
            ("socache_shmcb", false, true),
            ("rewrite", false, true),
            ("headers", false, true),
        ]);
    }
    modules
}

fn module(mods: &mut Scope, name: &str, with_conf: bool, enabled: bool) {
    let exts: &[&str] = if with_conf {
        &["load", "conf"]
    } else {
        &["load"]
    };
    for ext in exts {
        let path = format!("/etc/apache2/mods-enabled/{name}.{ext}");
        if enabled {
            mods.link(path, format!("../mods-available/{name}.{ext}"));
        } else {
            mods.absent(path);
        }
    }
}
