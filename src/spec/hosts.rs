//! `[[hosts]]`: each host's name, addresses, roles and SSH endpoint (the types, then their
//! checks), then the role combinations the hosts make together.

use super::check::Checker;
use crate::error::shown;
use crate::inventory::{
    RawHost, RawInventory, RawLab, RawSsh, CONNECT_TIMEOUT, LAB_NETWORK, PORT, PROXY_JUMP, ROLES,
};
use crate::names::*;
use crate::transport::ssh_config::parse_jumps;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Lb,
    Web,
    App,
    Db,
    DbReplica,
    Dns,
}

impl Role {
    pub const ALL: [(&'static str, Role); 6] = [
        ("lb", Role::Lb),
        ("web", Role::Web),
        ("app", Role::App),
        ("db", Role::Db),
        ("db-replica", Role::DbReplica),
        ("dns", Role::Dns),
    ];
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub public_address: IpAddr,
    pub private_address: Option<IpAddr>,
    pub roles: BTreeSet<Role>,
    pub ssh: Ssh,
    /// The release the inventory says the host runs (for `render`; `plan` learns it from the host
    /// and refuses when the two differ).
    pub release: Option<crate::release::Release>,
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The address other hosts of the site use to reach this one (database, backends).
    pub fn internal_address(&self) -> IpAddr {
        self.private_address.unwrap_or(self.public_address)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Ssh {
    /// An IP address, a DNS name, or a `Host` alias of the user's ssh_config. After `load`, an
    /// alias's HostName (`alias` keeps the alias): what provision reaches the host at, from the
    /// health checks too.
    pub address: String,
    /// The `Host` alias the inventory named, when the ssh_config gave it a HostName.
    pub alias: Option<String>,
    /// The inventory's; else, after `load`, the ssh_config's for `address`; else 22.
    pub port: u16,
    /// Likewise; else `root`.
    pub user: String,
    /// Resolved against the inventory's directory; `~/` expanded by the transport.
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    /// Like `port`; else 10.
    pub connect_timeout_secs: u32,
    /// Jump hosts as `ssh -J` takes them, or "none"; `None`: the ssh_config's ProxyJump.
    pub proxy_jump: Option<String>,
    pub config: SshConfigFile,
    /// What the inventory left to the ssh_config (and to the defaults above).
    #[serde(skip)]
    pub unset: SshUnset,
}

/// Which OpenSSH client configuration applies to a host (`hosts.ssh.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SshConfigFile {
    /// `~/.ssh/config`, when there is one.
    User,
    /// `"none"`, like `ssh -F none`.
    None,
    /// A file that must exist, like `ssh -F FILE`.
    File(PathBuf),
}

/// Which of `[hosts.ssh]`'s values with a default the inventory did not give.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SshUnset {
    pub port: bool,
    pub user: bool,
    pub connect_timeout: bool,
}

impl Checker<'_> {
    pub(super) fn hosts(&mut self, raw: &[RawHost]) -> Option<Vec<Host>> {
        let mut hosts = Vec::new();
        let mut ok = true;
        let mut claimed = Claimed::default();
        for (i, h) in raw.iter().enumerate() {
            match self.host(h, i, &mut claimed)? {
                Some(host) => hosts.push(host),
                None => ok = false,
            }
        }
        ok.then_some(hosts)
    }

    /// One `[[hosts]]` table, each mistake recorded: `Some(None)` when it has one. `None` when its
    /// private address is refused, which stops the reading of the hosts there.
    fn host(&mut self, h: &RawHost, i: usize, claimed: &mut Claimed) -> Option<Option<Host>> {
        let key = |f: &str| format!("hosts[{i}].{f}");
        let mut ok = true;
        let name = self.check(&h.name, &key("name"), parse_host_name);
        if let Some(n) = &name {
            if let Some(first) = claimed.names.insert(n.clone(), i) {
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
        let public = self.check(&h.public_address, &key("public_address"), parse_ip);
        let private = match &h.private_address {
            Some(p) => Some(self.check(p, &key("private_address"), parse_ip)?),
            None => None,
        };
        let roles = self.roles(h, i);
        let ssh = self.ssh(&h.ssh, i);
        if let Some(s) = &ssh {
            if let Some(first) = claimed.endpoints.insert((s.address.clone(), s.port), i) {
                self.fail(h.ssh.address.span(), &key("ssh.address"), format!("{}:{} is already hosts[{first}]; allowed: one inventory host per SSH endpoint", s.address, s.port));
                ok = false;
            }
        }
        if let Some(lab) = &h.lab {
            self.lab(lab, i);
        }
        let release = match &h.release {
            Some(r) => self
                .check(r, &key("release"), crate::release::Release::parse)
                .map(Some),
            None => Some(None),
        };
        Some(match (name, public, roles, ssh, release) {
            (Some(name), Some(public_address), Some(roles), Some(ssh), Some(release)) if ok => {
                Some(Host {
                    name,
                    public_address,
                    private_address: private,
                    roles,
                    ssh,
                    release,
                })
            }
            _ => None,
        })
    }

    /// A host's roles: at least one, each known.
    fn roles(&mut self, h: &RawHost, i: usize) -> Option<BTreeSet<Role>> {
        let mut roles = BTreeSet::new();
        let mut ok = true;
        for (j, r) in h.roles.get_ref().iter().enumerate() {
            match self.check(r, &format!("hosts[{i}].roles[{j}]"), parse_role) {
                Some(role) => {
                    roles.insert(role);
                }
                None => ok = false,
            }
        }
        if h.roles.get_ref().is_empty() {
            self.fail(
                h.roles.span(),
                &format!("hosts[{i}].roles"),
                format!("found an empty list; allowed: one or more roles, each {ROLES}"),
            );
            ok = false;
        }
        ok.then_some(roles)
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
            self.roles_combine(h, i, span_of(i));
        }
        self.role_counts(raw, hosts);
        self.name_servers(raw, hosts);
    }

    /// The roles one host has together.
    fn roles_combine(&mut self, h: &Host, i: usize, span: Range<usize>) {
        let key = format!("hosts[{i}].roles");
        if h.has(Role::Web) != h.has(Role::App) {
            self.fail(span.clone(), &key, "roles \"web\" and \"app\" go together on one host: the web server reaches PHP on the same machine; allowed: both or neither".into());
        }
        if h.has(Role::Lb) && h.has(Role::Web) {
            self.fail(span.clone(), &key, "an \"lb\" host cannot also be \"web\": both listen on port 80; allowed: lb and web on different hosts".into());
        }
        if h.has(Role::Db) && h.has(Role::DbReplica) {
            self.fail(
                span,
                &key,
                "a host cannot be both \"db\" and \"db-replica\"; allowed: one of them".into(),
            );
        }
    }

    /// How many hosts have each role: one database primary, at least one web host, at most two
    /// load balancers and some web hosts behind them.
    fn role_counts(&mut self, raw: &RawInventory, hosts: &[Host]) {
        let span_of = |i: usize| raw.hosts[i].roles.span();
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
                let i = nth_with(hosts, Role::Db, 1);
                self.fail(span_of(i), &format!("hosts[{i}].roles"), "a second \"db\" host; allowed: exactly one database primary (use \"db-replica\" for the others)".into());
            }
        }
        if count(Role::Lb) > 2 {
            let i = nth_with(hosts, Role::Lb, 2);
            self.fail(
                span_of(i),
                &format!("hosts[{i}].roles"),
                "a third \"lb\" host; allowed: one load balancer, or two sharing a floating address".into(),
            );
        }
        if count(Role::Lb) >= 1 && count(Role::Web) == 1 {
            let i = nth_with(hosts, Role::Lb, 0);
            let w = self.map.error(
                span_of(i),
                &format!("hosts[{i}].roles"),
                "a load balancer in front of one web host: nothing is redundant; add a second web host".into(),
            );
            self.warnings.push(w);
        }
        if count(Role::Lb) == 1 && count(Role::Web) == 0 {
            let i = nth_with(hosts, Role::Lb, 0);
            self.fail(span_of(i), &format!("hosts[{i}].roles"), "an \"lb\" host with no \"web\" hosts to balance; allowed: lb together with one or more web hosts".into());
        }
    }

    /// Each site's zone is served by a `dns` host or names its name servers.
    fn name_servers(&mut self, raw: &RawInventory, hosts: &[Host]) {
        let no_dns_host = !hosts.iter().any(|h| h.has(Role::Dns));
        for (i, def) in raw.sites.iter().enumerate() {
            if no_dns_host && def.dns.nameservers.is_empty() {
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

/// What the hosts read so far claim: names and SSH endpoints are each one host's.
#[derive(Default)]
struct Claimed {
    names: BTreeMap<String, usize>,
    endpoints: BTreeMap<(String, u16), usize>,
}

fn parse_ip(v: &str) -> Result<IpAddr, crate::error::Allowed> {
    v.parse::<IpAddr>()
        .map_err(|_| "an IPv4 or IPv6 address".into())
}

fn parse_role(v: &str) -> Result<Role, crate::error::Allowed> {
    Role::ALL
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, r)| *r)
        .ok_or_else(|| ROLES.into())
}

/// The index of the `n`th host (from 0) with `role`; 0 when there are fewer.
fn nth_with(hosts: &[Host], role: Role, n: usize) -> usize {
    hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.has(role))
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or(0)
}
