//! Apache. In `lamp` it keeps the threaded event MPM and hands `.php` to PHP-FPM through
//! `proxy_fcgi`; in `nginx-apache` it is the application server behind Nginx, on loopback, running
//! PHP itself with mod_php (which needs the prefork MPM) and logging the client address through
//! `mod_remoteip`. Modules are managed as `mods-enabled` links, exactly what `a2enmod` leaves.

use super::{Component, Cx, Out, Scope, SiteCx};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Spec;
use serde_json::{json, Map, Value};

/// Apache's port behind Nginx in the nginx-apache stack (loopback only).
const BACKEND_PORT: u16 = 8080;

pub struct Apache;
pub static APACHE: Apache = Apache;

/// Without PHP-FPM in the stack, Apache runs the PHP code itself (mod_php).
fn runs_php_itself(spec: &Spec) -> bool {
    !super::STACKS
        .iter()
        .any(|(n, list)| *n == spec.site.stack.name() && list.contains(&"php-fpm"))
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

    /// With mod_php, each of Apache's processes is a PHP worker: their sizes, like PHP-FPM's.
    fn probe(&self, cx: &Cx) -> Option<String> {
        runs_php_itself(cx.spec).then(|| super::php::workers_probe("apache2"))
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let domain = cx.spec.site.domain.as_str();
        let v = super::php::version(cx)?;
        out.service("apache2", "apache2", "/run/apache2/apache2.pid", "apache2");
        // Apache ends TLS when it is the web server in front (no Nginx before it).
        let ends_tls = super::tls::on_web(cx.spec) && !runs_php_itself(cx.spec);
        if ends_tls {
            super::tls::install(
                cx,
                out,
                "/etc/apache2",
                Handler::reload("apache2"),
                "apache2",
            )?;
        }
        // Listening addresses and modules only take effect on a restart.
        out.file(
            "/etc/apache2/ports.conf",
            cx.render("apache/ports.conf", &[("ends_tls", ends_tls.into())])?,
        )
        .notify(Handler::restart("apache2"))
        .checked_by("apache2");
        let mut site = out.scope(Handler::reload("apache2"), "apache2");
        site.file(
            format!("/etc/apache2/sites-available/{domain}.conf"),
            cx.render("apache/site.conf", &[("ends_tls", ends_tls.into())])?,
        );
        // With mod_php, the prefork MPM's limits, in a file of their own: the probe reads it back
        // every time (the value kept when close), so it is small.
        const MPM: &str = "/etc/apache2/conf-available/provision-mpm.conf";
        const MPM_ENABLED: &str = "/etc/apache2/conf-enabled/provision-mpm.conf";
        if runs_php_itself(cx.spec) {
            let t = prefork_tuning(cx, MPM);
            let tune = json!({
                "why": t.why,
                "max_workers": t.max_children,
                "start_servers": t.start_servers,
                "min_spare": t.min_spare,
                "max_spare": t.max_spare,
            });
            site.file(MPM, cx.render("apache/mpm.conf", &[("tune", tune)])?)
                .from_previous();
            site.link(MPM_ENABLED, "../conf-available/provision-mpm.conf");
        } else {
            site.absent(MPM_ENABLED);
            site.absent(MPM);
        }
        site.link(
            format!("/etc/apache2/sites-enabled/{domain}.conf"),
            format!("../sites-available/{domain}.conf"),
        );
        site.absent("/etc/apache2/sites-enabled/000-default.conf");
        let php_mod = format!("php{v}");
        let modules: &[(&str, bool, bool)] = if runs_php_itself(cx.spec) {
            &[
                ("mpm_event", true, false),
                ("mpm_prefork", true, true),
                ("", true, true), // mod_php
                ("remoteip", false, true),
            ]
        } else {
            &[
                ("", true, false), // mod_php
                ("mpm_prefork", true, false),
                ("mpm_event", true, true),
                ("proxy", true, true),
                ("proxy_fcgi", false, true),
                // server-status on the loopback status VirtualHost.
                ("status", true, true),
                // Cache headers and compression of static files.
                ("expires", false, true),
                ("deflate", true, true),
            ]
        };
        // TLS (mod_ssl and its session cache), the redirect to HTTPS and HSTS; left as they are
        // without TLS, as other sites of the host may use them.
        let tls_modules: &[(&str, bool, bool)] = if ends_tls {
            &[
                ("ssl", true, true),
                ("socache_shmcb", false, true),
                ("rewrite", false, true),
                ("headers", false, true),
            ]
        } else {
            &[]
        };
        let mut mods = out.scope(Handler::restart("apache2"), "apache2");
        for (name, with_conf, enabled) in modules.iter().chain(tls_modules) {
            let name = if name.is_empty() {
                php_mod.as_str()
            } else {
                name
            };
            module(&mut mods, name, *with_conf, *enabled);
        }
        if runs_php_itself(cx.spec) {
            out.package(format!("libapache2-mod-php{v}"));
            super::php::opcache(cx, out, "apache2", Handler::reload("apache2"))?;
            out.reloads_code(Handler::reload("apache2"));
        }
        out.validator(
            "apache2",
            ". /etc/apache2/envvars && mkdir -p \"$APACHE_RUN_DIR\" \"$APACHE_LOCK_DIR\" \"$APACHE_LOG_DIR\" && apache2 -d {root}/etc/apache2 -f apache2.conf -t",
            &["/etc/apache2"],
        );
        Ok(())
    }
}

/// The prefork MPM's limits with mod_php: every process is a PHP worker, so they are sized like a
/// PHP-FPM pool (`php::workers`). Debian's stock MaxRequestWorkers, 150, is more PHP workers than
/// a small host holds.
fn prefork_tuning(cx: &Cx, path: &str) -> crate::tuning::PhpWorkers {
    super::php::workers(cx, path, "apache", "MaxRequestWorkers ", "# ")
}

/// Enables (or disables) a module the Debian way: `mods-enabled/X.load` (and `.conf`) linking to
/// `mods-available`.
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
