//! `[hardening]`: the host as a whole. sshd takes keys only, the kernel's network and the login
//! defaults are tightened, and security updates install themselves (unattended-upgrades). A host
//! that needs a reboot for an update takes it at its own time of day, its slot: hosts that share a
//! role never share a slot, so no two web hosts (nor both balancers, nor both database hosts) are
//! down together, as long as a reboot takes less than `reboot_spacing`.

use super::check::Checker;
use super::{Host, Role, Spec};
use crate::inventory::{RawHardening, REBOOT_SPACING};
use crate::transport::ssh_config::parse_jumps;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// When the first slot starts (host time, hour and minute); `None`: never reboot by itself.
    pub reboot: Option<(u8, u8)>,
    /// Minutes between one slot and the next.
    pub spacing: u32,
    /// Each host's slot, in inventory order (see `slots`): computed once, when the inventory is
    /// checked, not for every host rendered.
    pub slots: Vec<usize>,
}

const MINUTES_A_DAY: u32 = 24 * 60;

/// Roles whose hosts stand in for each other: two of one group down together is an outage (the
/// primary and its replica are one group, as are web and app).
fn group(r: Role) -> u8 {
    match r {
        Role::Lb => 0,
        Role::Web | Role::App => 1,
        Role::Db | Role::DbReplica => 2,
        Role::Dns => 3,
    }
}

/// Slots, one per host in inventory order: the lowest slot that no earlier host sharing a role
/// group with it has (greedy colouring; hosts with no group in common may share one).
pub fn slots(hosts: &[Host]) -> Vec<usize> {
    let groups = |h: &Host| -> Vec<u8> { h.roles.iter().map(|r| group(*r)).collect() };
    let mut out: Vec<usize> = Vec::with_capacity(hosts.len());
    for (i, h) in hosts.iter().enumerate() {
        let mine = groups(h);
        let taken: Vec<usize> = hosts[..i]
            .iter()
            .zip(&out)
            .filter(|(other, _)| groups(other).iter().any(|g| mine.contains(g)))
            .map(|(_, s)| *s)
            .collect();
        out.push((0..).find(|s| !taken.contains(s)).unwrap_or(0));
    }
    out
}

impl Spec {
    /// When `host` reboots for an update (hour, minute, host time), if it ever does by itself.
    pub fn reboot_time(&self, host: &Host) -> Option<(u8, u8)> {
        let h = self.hardening.as_ref()?;
        let (hour, minute) = h.reboot?;
        let i = self.hosts.iter().position(|x| x.name == host.name)?;
        let slot = *h.slots.get(i)? as u32;
        let at = (u32::from(hour) * 60 + u32::from(minute) + slot * h.spacing) % MINUTES_A_DAY;
        Some(((at / 60) as u8, (at % 60) as u8))
    }

    /// Whether another host of the inventory reaches its sshd through `host` (its `proxy_jump`
    /// names it): such a host keeps TCP forwarding, which a jump needs.
    pub fn is_jump_host(&self, host: &Host) -> bool {
        let names = [
            Some(host.name.as_str()),
            Some(host.ssh.address.as_str()),
            host.ssh.alias.as_deref(),
        ];
        let public = host.public_address.to_string();
        self.hosts.iter().filter(|h| h.name != host.name).any(|h| {
            h.ssh.proxy_jump.as_deref().is_some_and(|v| {
                parse_jumps(v).is_ok_and(|jumps| {
                    jumps
                        .iter()
                        .any(|j| j.host == public || names.contains(&Some(j.host.as_str())))
                })
            })
        })
    }
}

impl Checker<'_> {
    pub(super) fn hardening(&mut self, raw: &RawHardening, hosts: &[Host]) -> Option<Hardening> {
        let spacing = match &raw.reboot_spacing {
            Some(k) => self.int(k, "hardening.reboot_spacing", REBOOT_SPACING)? as u32,
            None => 30,
        };
        let reboot = match &raw.reboot {
            Some(v) if v.get_ref() == "never" => None,
            Some(v) => Some(self.check(v, "hardening.reboot", |s| {
                super::backup::parse_time(s).map_err(|_| {
                    "\"never\", or the time of day of the first host's reboot as HH:MM, like \"03:00\"".into()
                })
            })?),
            None => Some((3, 0)),
        };
        let slots = slots(hosts);
        if reboot.is_some() {
            let needed = slots.iter().max().map_or(1, |m| *m as u32 + 1);
            if needed * spacing > MINUTES_A_DAY {
                let at = raw
                    .reboot_spacing
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or(raw.span.clone());
                self.fail(
                    at,
                    "hardening.reboot_spacing",
                    format!(
                        "found {spacing} minutes for {needed} reboot slots (hosts sharing a role reboot one at a time), {} minutes in all; allowed: at most {} minutes, so that the slots fit in a day",
                        needed * spacing,
                        MINUTES_A_DAY / needed
                    ),
                );
                return None;
            }
        }
        Some(Hardening {
            reboot,
            spacing,
            slots,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::Spec;

    const HOSTS: &str = r#"
[[hosts]]
name = "lb1"
public_address = "203.0.113.1"
roles = ["lb", "dns"]
ssh = { address = "203.0.113.1" }
[[hosts]]
name = "lb2"
public_address = "203.0.113.2"
roles = ["lb"]
ssh = { address = "203.0.113.2" }
[[hosts]]
name = "web1"
public_address = "203.0.113.3"
roles = ["web", "app"]
ssh = { address = "203.0.113.3" }
[[hosts]]
name = "web2"
public_address = "203.0.113.4"
roles = ["web", "app"]
ssh = { address = "10.0.0.4", proxy_jump = "root@203.0.113.1:22" }
[[hosts]]
name = "web3"
public_address = "203.0.113.7"
roles = ["web", "app"]
ssh = { address = "203.0.113.7" }
[[hosts]]
name = "db1"
public_address = "203.0.113.5"
roles = ["db"]
ssh = { address = "203.0.113.5" }
[[hosts]]
name = "db2"
public_address = "203.0.113.6"
roles = ["db-replica"]
ssh = { address = "203.0.113.6" }
"#;

    fn spec(hardening: &str) -> Result<Spec, String> {
        let text = format!(
            "[site]\ndomain = \"foobar.com\"\nstack = \"lemp\"\n\n[database]\nname = \"foobar\"\nuser = \"foobar\"\npassword_env = \"DB_PW\"\nreplication_password_env = \"DB_PW\"\n\n[dns]\nsoa_contact = \"hostmaster@foobar.com\"\n\n[lb]\nfloating_address = \"203.0.113.50/24\"\nvirtual_router_id = 51\n\n{hardening}\n{HOSTS}"
        );
        crate::spec::tests::parse(&text).map_err(|e| e.to_string())
    }

    fn times(s: &Spec) -> Vec<String> {
        s.hosts
            .iter()
            .map(|h| match s.reboot_time(h) {
                Some((hh, mm)) => format!("{}={hh:02}:{mm:02}", h.name),
                None => format!("{}=never", h.name),
            })
            .collect()
    }

    #[test]
    fn hosts_sharing_a_role_group_never_share_a_reboot_slot() {
        let s = spec("[hardening]\nreboot = \"23:40\"\nreboot_spacing = 15").unwrap();
        assert_eq!(
            times(&s),
            [
                "lb1=23:40",
                "lb2=23:55",
                "web1=23:40",
                "web2=23:55",
                "web3=00:10",
                "db1=23:40",
                "db2=23:55"
            ]
        );
        let s = spec("[hardening]").unwrap();
        assert_eq!(times(&s)[..2], ["lb1=03:00", "lb2=03:30"]);
        let s = spec("[hardening]\nreboot = \"never\"").unwrap();
        assert!(times(&s).iter().all(|t| t.ends_with("=never")));
    }

    #[test]
    fn a_host_others_jump_through_is_known() {
        let s = spec("[hardening]").unwrap();
        let jump: Vec<bool> = s.hosts.iter().map(|h| s.is_jump_host(h)).collect();
        assert_eq!(jump, [true, false, false, false, false, false, false]);
    }

    #[test]
    fn bad_hardening_values_are_located() {
        let e = spec("[hardening]\nreboot = \"3:00\"").unwrap_err();
        assert!(
            e.contains("hardening.reboot") && e.contains("\"never\", or the time of day"),
            "{e}"
        );
        let e = spec("[hardening]\nreboot_spacing = 481").unwrap_err();
        assert!(
            e.contains("hardening.reboot_spacing")
                && e.contains("3 reboot slots")
                && e.contains("at most 480 minutes"),
            "{e}"
        );
        let e = spec("[hardening]\nreboot_spacing = 721").unwrap_err();
        assert!(e.contains("a whole number from 5 to 720"), "{e}");
        let e = spec("[hardening]\nreboots = \"03:00\"").unwrap_err();
        assert!(e.contains("reboots"), "{e}");
    }
}
