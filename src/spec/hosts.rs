//! `[[hosts]]`: each host's name, addresses, roles and SSH endpoint, then the role combinations
//! the hosts make together.

use super::check::Checker;
use super::{Host, Role, Ssh, SshConfigFile, SshUnset};
use crate::error::shown;
use crate::inventory::{
    RawHost, RawInventory, RawLab, RawSsh, CONNECT_TIMEOUT, LAB_NETWORK, PORT, PROXY_JUMP, ROLES,
};
use crate::names::*;
use crate::transport::ssh_config::parse_jumps;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use toml::Spanned;

impl Checker<'_> {
    pub(super) fn hosts(&mut self, raw: &[RawHost]) -> Option<Vec<Host>> {
        let mut hosts = Vec::new();
        let mut ok = true;
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut endpoints: BTreeMap<(String, u16), usize> = BTreeMap::new();
        for (i, h) in raw.iter().enumerate() {
            let key = |f: &str| format!("hosts[{i}].{f}");
            let name = self.check(&h.name, &key("name"), parse_host_name);
            if let Some(n) = &name {
                if let Some(first) = names.insert(n.clone(), i) {
                    self.fail(
                        h.name.span(),
                        &key("name"),
                        format!(
                            "found {} again (first at hosts[{first}]); allowed: unique host names",
                            shown(n)
                        ),
                    );
                    ok = false;
                }
            }
            let public = self.check(&h.public_address, &key("public_address"), |v| {
                v.parse::<IpAddr>()
                    .map_err(|_| "an IPv4 or IPv6 address".into())
            });
            let private = match &h.private_address {
                Some(p) => Some(self.check(p, &key("private_address"), |v| {
                    v.parse::<IpAddr>()
                        .map_err(|_| "an IPv4 or IPv6 address".into())
                })?),
                None => None,
            };
            let mut roles = BTreeSet::new();
            for (j, r) in h.roles.get_ref().iter().enumerate() {
                match self.check(r, &key(&format!("roles[{j}]")), |v| {
                    Role::ALL
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, r)| *r)
                        .ok_or_else(|| ROLES.into())
                }) {
                    Some(role) => {
                        roles.insert(role);
                    }
                    None => ok = false,
                }
            }
            if h.roles.get_ref().is_empty() {
                self.fail(
                    h.roles.span(),
                    &key("roles"),
                    format!("found an empty list; allowed: one or more roles, each {ROLES}"),
                );
                ok = false;
            }
            let ssh = self.ssh(&h.ssh, i);
            if let Some(s) = &ssh {
                if let Some(first) = endpoints.insert((s.address.clone(), s.port), i) {
                    self.fail(h.ssh.address.span(), &key("ssh.address"), format!("{}:{} is already hosts[{first}]; allowed: one inventory host per SSH endpoint", s.address, s.port));
                    ok = false;
                }
            }
            if let Some(lab) = &h.lab {
                self.lab(lab, i);
            }
            let release = match &h.release {
                Some(r) => match self.check(r, &key("release"), crate::release::Release::parse) {
                    Some(r) => Some(r),
                    None => {
                        ok = false;
                        None
                    }
                },
                None => None,
            };
            match (name, public, ssh) {
                (Some(name), Some(public_address), Some(ssh)) => hosts.push(Host {
                    name,
                    public_address,
                    private_address: private,
                    roles,
                    ssh,
                    release,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(hosts)
    }

    fn ssh(&mut self, s: &RawSsh, i: usize) -> Option<Ssh> {
        let key = |f: &str| format!("hosts[{i}].ssh.{f}");
        let address = self.check(&s.address, &key("address"), parse_ssh_address);
        let port = match &s.port {
            Some(p) => self.int(p, &key("port"), PORT).map(|p| p as u16),
            None => Some(22),
        };
        let user = match &s.user {
            Some(u) => self.check(u, &key("user"), parse_unix_user),
            None => Some("root".to_string()),
        };
        let mut path = |v: &Option<Spanned<String>>, k: &str| -> Option<Option<PathBuf>> {
            match v {
                Some(p) => self
                    .check(p, &key(k), parse_local_path)
                    .map(|p| Some(self.local_path(&p))),
                None => Some(None),
            }
        };
        let identity_file = path(&s.identity_file, "identity_file");
        let known_hosts = path(&s.known_hosts, "known_hosts");
        let connect_timeout_secs = match &s.connect_timeout {
            Some(t) => self
                .int(t, &key("connect_timeout"), CONNECT_TIMEOUT)
                .map(|t| t as u32),
            None => Some(10),
        };
        let proxy_jump = match &s.proxy_jump {
            Some(j) => self
                .check(j, &key("proxy_jump"), |v| {
                    parse_jumps(v).map_err(|_| PROXY_JUMP.into())
                })
                .map(|_| Some(j.get_ref().clone())),
            None => Some(None),
        };
        let config = match &s.config {
            Some(c) if c.get_ref() == "none" => Some(SshConfigFile::None),
            Some(c) => self
                .check(c, &key("config"), parse_local_path)
                .map(|p| SshConfigFile::File(self.local_path(&p))),
            None => Some(SshConfigFile::User),
        };
        Some(Ssh {
            address: address?,
            alias: None,
            port: port?,
            user: user?,
            identity_file: identity_file?,
            known_hosts: known_hosts?,
            connect_timeout_secs: connect_timeout_secs?,
            proxy_jump: proxy_jump?,
            config: config?,
            unset: SshUnset {
                port: s.port.is_none(),
                user: s.user.is_none(),
                connect_timeout: s.connect_timeout.is_none(),
            },
        })
    }

    /// Role combinations that cannot work, reported at the host's `roles` key.
    pub(super) fn topology(&mut self, raw: &RawInventory, hosts: &[Host]) {
        let span_of = |i: usize| raw.hosts[i].roles.span();
        let whole = raw
            .sites
            .first()
            .map(|s| s.site.stack.span())
            .unwrap_or(0..0);
        if hosts.is_empty() {
            self.fail(
                whole,
                "hosts",
                "no hosts; allowed: one or more [[hosts]] tables".into(),
            );
            return;
        }
        for (i, h) in hosts.iter().enumerate() {
            let key = format!("hosts[{i}].roles");
            if h.has(Role::Web) != h.has(Role::App) {
                self.fail(span_of(i), &key, "roles \"web\" and \"app\" go together on one host: the web server reaches PHP on the same machine; allowed: both or neither".into());
            }
            if h.has(Role::Lb) && h.has(Role::Web) {
                self.fail(span_of(i), &key, "an \"lb\" host cannot also be \"web\": both listen on port 80; allowed: lb and web on different hosts".into());
            }
            if h.has(Role::Db) && h.has(Role::DbReplica) {
                self.fail(
                    span_of(i),
                    &key,
                    "a host cannot be both \"db\" and \"db-replica\"; allowed: one of them".into(),
                );
            }
        }
        let count = |r: Role| hosts.iter().filter(|h| h.has(r)).count();
        let first_span = span_of(0);
        if count(Role::Web) == 0 {
            self.fail(
                first_span.clone(),
                "hosts[*].roles",
                "no host has the \"web\" role; allowed: at least one web host to serve the site"
                    .into(),
            );
        }
        match count(Role::Db) {
            1 => {}
            0 => self.fail(
                first_span.clone(),
                "hosts[*].roles",
                "no host has the \"db\" role; allowed: exactly one database primary".into(),
            ),
            _ => {
                let i = hosts
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| h.has(Role::Db))
                    .nth(1)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                self.fail(span_of(i), &format!("hosts[{i}].roles"), "a second \"db\" host; allowed: exactly one database primary (use \"db-replica\" for the others)".into());
            }
        }
        if count(Role::Lb) > 2 {
            let i = hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.has(Role::Lb))
                .nth(2)
                .map(|(i, _)| i)
                .unwrap_or(0);
            self.fail(
                span_of(i),
                &format!("hosts[{i}].roles"),
                "a third \"lb\" host; allowed: one load balancer, or two sharing a floating address".into(),
            );
        }
        if count(Role::Lb) >= 1 && count(Role::Web) == 1 {
            let i = hosts.iter().position(|h| h.has(Role::Lb)).unwrap_or(0);
            let w = self.map.error(
                span_of(i),
                &format!("hosts[{i}].roles"),
                "a load balancer in front of one web host: nothing is redundant; add a second web host".into(),
            );
            self.warnings.push(w);
        }
        if count(Role::Lb) == 1 && count(Role::Web) == 0 {
            let i = hosts.iter().position(|h| h.has(Role::Lb)).unwrap_or(0);
            self.fail(span_of(i), &format!("hosts[{i}].roles"), "an \"lb\" host with no \"web\" hosts to balance; allowed: lb together with one or more web hosts".into());
        }
        for (i, def) in raw.sites.iter().enumerate() {
            if count(Role::Dns) == 0 && def.dns.nameservers.is_empty() {
                let at = crate::secret::SiteRef {
                    index: i as u16,
                    many: raw.many,
                };
                self.fail(def.dns.soa_contact.span(), &format!("{}.nameservers", at.key("dns")), "no name server: no host has the \"dns\" role and dns.nameservers is empty; allowed: one of them".into());
            }
        }
    }

    /// `[hosts.lab]`, read only by the test lab, checked here so a typo fails at validate.
    fn lab(&mut self, lab: &RawLab, i: usize) {
        if let Some(f) = &lab.flavour {
            self.check(f, &format!("hosts[{i}].lab.flavour"), |v| match v {
                "systemd" | "plain" => Ok(()),
                _ => Err("\"systemd\" or \"plain\"".into()),
            });
        }
        if let Some(r) = &lab.release {
            self.check(r, &format!("hosts[{i}].lab.release"), |v| match v {
                "bookworm" | "trixie" => Ok(()),
                _ => Err("\"bookworm\" (Debian 12) or \"trixie\" (Debian 13)".into()),
            });
        }
        if let Some(n) = &lab.network {
            self.check(n, &format!("hosts[{i}].lab.network"), |v| match v {
                "outer" | "inner" | "bastion" => Ok(()),
                _ => Err(LAB_NETWORK.into()),
            });
        }
        if let Some(a) = &lab.address {
            self.check(a, &format!("hosts[{i}].lab.address"), |v| {
                v.parse::<std::net::Ipv4Addr>()
                    .map(|_| ())
                    .map_err(|_| "the lab host's IPv4 address, like \"198.18.0.130\"".into())
            });
        }
    }
}
