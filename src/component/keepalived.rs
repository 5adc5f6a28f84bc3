//! keepalived on two `lb` hosts: VRRP between them (unicast, no multicast needed) holds the site's
//! floating address on the host whose HAProxy is alive. The first load balancer of the inventory
//! has the higher priority; `nopreempt` keeps the address where it is after a failover, so it does
//! not flap back. The address goes on the interface holding the hosts' public addresses (where the
//! clients arrive; the VRRP adverts go there too), learned from each host unless `[lb] interface`
//! names it.

use super::{Component, Cx, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Role;
use serde_json::json;

pub struct Keepalived;
pub static KEEPALIVED: Keepalived = Keepalived;

/// What `render` writes when neither the inventory nor the host says which interface (plan and
/// apply always know: they learn it from the host).
const UNKNOWN_INTERFACE: &str = "eth0";

/// keepalived reads its settings again: SIGHUP, so the instance keeps its state and the address
/// stays where it is (a restart gives it up). A step of its own rather than the service's reload:
/// on a host without systemd, Debian's init script has no `status` (a service reload falls back
/// to a restart there) and its restart starts the new daemon while the old one is still stopping,
/// which leaves none running (seen on Debian 12).
const RELOAD: &str = "keepalived-reload";
const RELOAD_COMMAND: &str = concat!(
    "if ",
    crate::facts::systemd_test!(),
    "; then systemctl reload-or-restart keepalived; \
     elif { read -r pid < /run/keepalived.pid && kill -0 \"$pid\"; } 2> /dev/null; then kill -HUP \"$pid\"; \
     else service keepalived start; fi"
);

/// The interface holding `address`, from `ip -o addr show` lines.
pub fn interface_of(lines: &[String], address: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let mut it = l.split_whitespace();
        let _index = it.next()?;
        let name = it
            .next()?
            .split('@')
            .next()?
            .trim_end_matches(':')
            .to_string();
        let _family = it.next()?;
        let cidr = it.next()?;
        (cidr.split('/').next()? == address).then_some(name)
    })
}

/// The interface the floating address goes on: the one `[lb] interface` names (which the host
/// must have), else the one the host holds its public address on, else `UNKNOWN_INTERFACE`.
fn interface(cx: &Cx, lb: &crate::spec::Lb) -> Result<String, RenderError> {
    let lines = cx.now.facts(KEEPALIVED.name());
    if let (Some(named), Some(lines)) = (&lb.interface, &lines) {
        if !lines.iter().any(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.split('@').next() == Some(named))
        }) {
            return Err(RenderError::Template {
                host: cx.host.name.clone(),
                message: format!("[lb] interface {named}: the host has no such interface"),
            });
        }
    }
    let learned = lines.and_then(|lines| interface_of(&lines, &cx.host.public_address.to_string()));
    Ok(lb
        .interface
        .clone()
        .or(learned)
        .unwrap_or_else(|| UNKNOWN_INTERFACE.to_string()))
}

/// The template's values: this balancer, its peer, and the first of them has the higher priority.
fn values(cx: &Cx, lb: &crate::spec::Lb, interface: &str) -> serde_json::Value {
    let peers: Vec<_> = cx.spec.hosts_with(Role::Lb).collect();
    let peer = peers
        .iter()
        .find(|h| h.name != cx.host.name)
        .map(|h| h.public_address.to_string())
        .unwrap_or_default();
    let first = peers.first().is_some_and(|h| h.name == cx.host.name);
    json!({
        "instance": format!("site_{}", lb.virtual_router_id),
        "interface": interface,
        "router_id": lb.virtual_router_id,
        "priority": if first { 150 } else { 100 },
        "self": cx.host.public_address.to_string(),
        "peer": peer,
        "floating": lb.floating_address.to_string(),
        "prefix": lb.prefix_len,
    })
}

/// keepalived -t checks that the script exists and the interface too: the staged script is
/// pointed at, and where the interface is not there (render --check on another machine) the
/// check runs in a network namespace of its own that has one by that name.
fn validator_command(interface: &str) -> String {
    format!(
        "f=$(mktemp) && sed -e \"s|/etc/keepalived/|{{root}}/etc/keepalived/|g\" {{root}}/etc/keepalived/keepalived.conf > \"$f\" && \
         if ip link show {i} > /dev/null 2>&1; then keepalived -t -f \"$f\"; \
         else unshare -n sh -c \"ip link add {i} type veth peer name pv-check0 && ip link set {i} up && keepalived -t -f $f\"; fi; \
         rc=$?; rm -f \"$f\"; exit $rc",
        i = crate::quote::shell_word(interface),
    )
}

impl Component for Keepalived {
    fn name(&self) -> &'static str {
        "keepalived"
    }

    fn after(&self) -> &'static [&'static str] {
        // The address comes to a host whose balancer already answers.
        &["haproxy"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        // One load balancer has no one to share an address with.
        let Some(lb) = &cx.spec.lb else {
            return Ok(());
        };
        let interface = interface(cx, lb)?;
        out.service(
            "keepalived",
            "keepalived",
            "/run/keepalived.pid",
            "keepalived",
        );
        out.step(RELOAD, RELOAD_COMMAND, None);
        let mut files = out.scope(Handler::run(RELOAD), "keepalived");
        // Depends on the host's interfaces: read back every time, so the facts pass renders it.
        files
            .file(
                "/etc/keepalived/keepalived.conf",
                cx.render(
                    "keepalived/keepalived.conf",
                    &[("lb", values(cx, lb, &interface))],
                )?,
            )
            .from_previous();
        files
            .file(
                "/etc/keepalived/check-haproxy",
                cx.render("keepalived/check-haproxy", &[])?,
            )
            .mode(0o755);
        out.validator("keepalived", validator_command(&interface), &[]);
        for site in &cx.spec.sites {
            for c in super::app::site_checks(
                site,
                &lb.floating_address.to_string(),
                super::tls::on_lb(cx.spec, site),
            ) {
                out.check(c);
            }
        }
        Ok(())
    }

    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some("ip -o addr show".into())
    }

    fn report(&self, cx: &Cx, lines: &[String]) -> Vec<super::Report> {
        let Some(lb) = &cx.spec.lb else {
            return Vec::new();
        };
        let vip = lb.floating_address.to_string();
        let holds = interface_of(lines, &vip).is_some();
        vec![super::Report {
            ok: true,
            text: if holds {
                format!("holds the floating address {vip}")
            } else {
                format!("stands by for the floating address {vip}")
            },
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_holding_an_address_is_found() {
        let lines: Vec<String> = [
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever",
            "2: host0@if31    inet 198.18.0.20/24 brd 198.18.0.255 scope global host0\\       valid_lft forever",
            "2: host0@if31    inet 198.18.0.19/24 scope global secondary host0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            interface_of(&lines, "198.18.0.20").as_deref(),
            Some("host0")
        );
        assert_eq!(interface_of(&lines, "10.0.0.1"), None);
    }
}
