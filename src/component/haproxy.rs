//! HAProxy on the `lb` hosts: balances port 80 over every web host, with an HTTP health check that
//! sends the site's Host header.

use super::{Component, Cx, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Role;
use serde_json::json;
use std::net::IpAddr;

pub struct Haproxy;
pub static HAPROXY: Haproxy = Haproxy;

impl Component for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn after(&self) -> &'static [&'static str] {
        // The balancer goes live after the backends it sends traffic to.
        &["nginx", "apache", "app"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let spec = cx.spec;
        let backends: Vec<_> = spec
            .hosts_with(Role::Web)
            .map(|w| json!({ "name": w.name, "address": addr_port_host(w.internal_address()) }))
            .collect();
        out.service("haproxy", "haproxy", "/run/haproxy.pid", "haproxy");
        let cfg = cx.render(
            "haproxy/haproxy.cfg",
            &[(
                "lb",
                json!({
                    "backends": backends,
                    "check_path": spec.site.health_check.path,
                    "check_status": spec.site.health_check.status,
                }),
            )],
        )?;
        out.scope(Handler::reload("haproxy"), "haproxy")
            .file("/etc/haproxy/haproxy.cfg", cfg);
        out.validator(
            "haproxy",
            "haproxy -c -q -f {root}/etc/haproxy/haproxy.cfg",
            &[],
        );
        out.check(super::app::site_check(cx, &cx.host.ssh.address));
        Ok(())
    }
}

/// An address as HAProxy wants it before `:port`: IPv6 in brackets.
fn addr_port_host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}
