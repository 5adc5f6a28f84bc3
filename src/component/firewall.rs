//! The firewall (`[firewall]`): an nftables table of provision's own on every host, letting in only
//! what the host's roles serve: SSH from the admin networks, 80/443 on web and lb hosts, 53 on dns
//! hosts, MariaDB on database hosts from the web hosts and the other database hosts, VRRP between
//! the load balancers. Checked with `nft -c` like any config; put live by the `firewall` step with a
//! revert armed on the host, which only a NEW SSH connection made after it cancels (see
//! `apply::execute::confirm_firewall`): a ruleset that would lock the operator out undoes itself.

use super::{Component, Cx, Need, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::{Host, Role};
use serde_json::json;
use std::net::IpAddr;

pub struct Firewall;
pub static FIREWALL: Firewall = Firewall;

/// The step that loads the ruleset; the controller confirms it (see the module doc).
pub const STEP: &str = "firewall";
/// Where the step keeps its state on the host; the controller removes `armed` to confirm.
pub const STATE: &str = "/var/lib/provision/firewall";
/// Seconds after which the host puts the previous ruleset back unless a new connection confirmed.
pub const REVERT_SECS: u32 = 60;

/// The command that confirms a ruleset, run through a NEW connection: the revert is disarmed.
pub fn confirm_command() -> String {
    format!("rm -f {STATE}/armed && echo confirmed")
}

fn step_command() -> String {
    // The previous table (or none: then the revert drops provision's table) is kept for the
    // revert; the new one goes live atomically; a detached guard (its own session: it outlives
    // this script and a cut connection) reverts unless `armed` is gone or names a newer run.
    format!(
        "set -e\n\
         d={STATE}\n\
         mkdir -p \"$d\" && chmod 700 \"$d\"\n\
         {{ echo 'table inet provision'; echo 'delete table inet provision'; nft list table inet provision 2>/dev/null || true; }} > \"$d/revert.nft\"\n\
         nft -f /etc/nftables.conf\n\
         token=\"$(date +%s%N)-$$\"\n\
         echo \"$token\" > \"$d/armed\"\n\
         setsid sh -c 'sleep {REVERT_SECS}; [ \"$(cat \"$1/armed\" 2>/dev/null)\" = \"$2\" ] || exit 0; nft -f \"$1/revert.nft\"; rm -f \"$1/armed\"; date > \"$1/reverted\"' guard \"$d\" \"$token\" < /dev/null > /dev/null 2>&1 &\n\
         command -v systemctl > /dev/null && [ -d /run/systemd/system ] && systemctl enable --quiet nftables 2> /dev/null || true\n"
    )
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
