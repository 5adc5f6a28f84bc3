//! The firewall (`[firewall]`): an nftables table of provision's own on every host, letting in only
//! what the host's roles serve: SSH from the admin networks, 80/443 on web and lb hosts, 53 on dns
//! hosts, MariaDB on database hosts from the web hosts and the other database hosts, VRRP between
//! the load balancers. Checked with `nft -c` like any config; put live by the `firewall` step, a
//! guarded handler: its generation is rolled back by the host itself unless a NEW SSH connection
//! confirms it (see `script::apply_script` and `apply::execute`), so a ruleset that would lock the
//! operator out undoes itself, `/etc/nftables.conf` included.

use super::{Component, Cx, Need, Out};
use crate::desired::Handler;
use crate::facts::SYSTEMD_TEST;
use crate::render::RenderError;
use crate::spec::{Host, Role};
use serde_json::json;
use std::net::IpAddr;

pub struct Firewall;
pub static FIREWALL: Firewall = Firewall;

/// The step that puts the ruleset live; a generation that runs it is guarded (see the module doc).
pub const STEP: &str = "firewall";

/// Loads provision's table from `/etc/nftables.conf`, atomically (the file replaces only that
/// table). Where the file is not provision's (a rollback put the host's own back, or removed
/// provision's), provision's table goes: the host is as it was before provision's first ruleset.
fn step_command() -> String {
    format!("if grep -qs '^table inet provision' /etc/nftables.conf; then\n\
     \x20   nft -f /etc/nftables.conf || exit 1\n\
     \x20   if command -v systemctl > /dev/null && {SYSTEMD_TEST}; then systemctl enable --quiet nftables 2> /dev/null || true; fi\n\
     else\n\
     \x20   nft delete table inet provision 2> /dev/null || true\n\
     fi\n")
}

/// Addresses of `hosts` split by family, as nftables writes them.
fn split(hosts: &[IpAddr]) -> (Vec<String>, Vec<String>) {
    let mut v4: Vec<String> = hosts
        .iter()
        .filter(|a| a.is_ipv4())
        .map(|a| a.to_string())
        .collect();
    let mut v6: Vec<String> = hosts
        .iter()
        .filter(|a| a.is_ipv6())
        .map(|a| a.to_string())
        .collect();
    for v in [&mut v4, &mut v6] {
        v.sort();
        v.dedup();
    }
    (v4, v6)
}

impl Component for Firewall {
    fn name(&self) -> &'static str {
        "firewall"
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let Some(fw) = &cx.spec.firewall else {
            return Ok(());
        };
        let spec = cx.spec;
        let host: &Host = cx.host;
        let nets = |v6: bool| -> Vec<String> {
            fw.admin_sources
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .map(|(a, p)| format!("{a}/{p}"))
                .collect()
        };
        let (admin4, admin6) = (nets(false), nets(true));
        let is_db = host.has(Role::Db) || host.has(Role::DbReplica);
        let db_clients: Vec<IpAddr> = if is_db {
            spec.hosts
                .iter()
                .filter(|h| h.name != host.name)
                .filter(|h| h.has(Role::Web) || h.has(Role::Db) || h.has(Role::DbReplica))
                .map(|h| h.internal_address())
                .collect()
        } else {
            Vec::new()
        };
        let (db4, db6) = split(&db_clients);
        let peers: Vec<IpAddr> = if host.has(Role::Lb) {
            spec.hosts_with(Role::Lb)
                .filter(|h| h.name != host.name)
                .flat_map(|h| [h.public_address, h.internal_address()])
                .collect()
        } else {
            Vec::new()
        };
        let (vrrp4, vrrp6) = split(&peers);
        let rules = cx.render(
            "nftables/nftables.conf",
            &[(
                "fw",
                json!({
                    "admin4": admin4,
                    "admin6": admin6,
                    "ssh_port": host.ssh.port,
                    "web": host.has(Role::Web) || host.has(Role::Lb),
                    "dns": host.has(Role::Dns),
                    "db4": db4,
                    "db6": db6,
                    "vrrp4": vrrp4,
                    "vrrp6": vrrp6,
                }),
            )],
        )?;
        out.package("nftables");
        out.file("/etc/nftables.conf", rules)
            .mode(0o755)
            .notify(Handler::run(STEP))
            .checked_by("nftables");
        out.validator("nftables", "nft -c -f {root}/etc/nftables.conf", &[]);
        out.step(STEP, step_command(), None);
        out.guarded(Handler::run(STEP), "the new firewall");
        Ok(())
    }

    fn probe_beside(&self, cx: &Cx) -> Option<super::Beside> {
        cx.spec.firewall.as_ref()?;
        // Loaded or not: a host that rebooted without nftables.service (no systemd), or a ruleset
        // flushed by hand, needs the step again.
        Some(super::Beside::Status(
            "nft list table inet provision".into(),
        ))
    }

    fn needs(&self, cx: &Cx, lines: &[String]) -> Vec<Need> {
        if cx.spec.firewall.is_none() || lines.iter().any(|l| l == "exit 0") {
            return Vec::new();
        }
        vec![Need {
            handler: Handler::run(STEP),
            reason: "provision's nftables table is not loaded".into(),
        }]
    }
}
