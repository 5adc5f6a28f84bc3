//! Nginx: the main config (its own, with relative includes so a staged copy validates), the site,
//! and the removal of Debian's default site. In `lemp` it passes PHP to PHP-FPM; in `nginx-apache`
//! it serves static files and proxies the rest to Apache.

use super::{Component, Cx, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Site;

pub struct Nginx;
pub static NGINX: Nginx = Nginx;

impl Component for Nginx {
    fn name(&self) -> &'static str {
        "nginx"
    }
    fn domain_limit(&self) -> Option<super::DomainLimit> {
        Some(super::DomainLimit::file(
            "the self-signed certificate Nginx reads",
            super::tls::FILE_SUFFIX,
        ))
    }

    fn after(&self) -> &'static [&'static str] {
        // The web server in front comes up after what it passes requests to.
        &["apache", "php-fpm"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        out.service("nginx", "nginx", "/run/nginx.pid", "nginx");
        let mut files = out.scope(Handler::reload("nginx"), "nginx");
        let (workers, why) = crate::tuning::nginx_workers(cx.host_size());
        let main = cx.render(
            "nginx/nginx.conf",
            &[(
                "tune",
                serde_json::json!({ "workers": workers, "why": why }),
            )],
        )?;
        // Sized from the facts: always read back, so the plan compares with what the host has.
        files.file("/etc/nginx/nginx.conf", main).from_previous();
        let pools: Vec<serde_json::Value> = cx
            .spec
            .sites_on(cx.host)
            .map(|s| {
                serde_json::json!({
                    "site": s.name,
                    "socket": super::php::socket(cx.release.php, s),
                })
            })
            .collect();
        files.file(
            "/etc/nginx/sites-available/provision-status.conf",
            cx.render("nginx/status.conf", &[("fpm", pools.into())])?,
        );
        files.link(
            "/etc/nginx/sites-enabled/provision-status.conf",
            "../sites-available/provision-status.conf",
        );
        files.absent("/etc/nginx/sites-enabled/default");
        super::app::vhosts_gone(cx, &mut files, "/etc/nginx");
        out.validator(
            "nginx",
            "nginx -t -q -c {root}/etc/nginx/nginx.conf",
            &["/etc/nginx"],
        );
        Ok(())
    }

    fn render_site(&self, cx: &Cx, site: &Site, out: &mut Out) -> Result<(), RenderError> {
        let domain = site.domain.as_str();
        let mut files = out.scope(Handler::reload("nginx"), "nginx");
        files.file(
            format!("/etc/nginx/sites-available/{domain}.conf"),
            cx.render("nginx/site.conf", &[])?,
        );
        files.link(
            format!("/etc/nginx/sites-enabled/{domain}.conf"),
            format!("../sites-available/{domain}.conf"),
        );
        // Nginx is in front of everything else on a web host: TLS ends here unless load balancers
        // end it.
        if super::tls::on_web(cx.spec, site) {
            super::tls::install(
                cx,
                site,
                out,
                "/etc/nginx",
                Handler::reload("nginx"),
                "nginx",
            )?;
        }
        Ok(())
    }
}
