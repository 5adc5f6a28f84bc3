//! `[[hosts]]`: a host, how provision reaches it over SSH, and what the test lab reads of it.

use super::{
    ADDRESS, CONNECT_TIMEOUT, LAB_NETWORK, LOCAL_PATH, PORT, PROXY_JUMP, ROLES, SSH_CONFIG,
};
use crate::spec::reader::{Reader, Table};
use std::ops::Range;
use toml::Spanned;

#[derive(Debug)]
pub struct RawHost {
    pub span: Range<usize>,
    pub name: Spanned<String>,
    pub public_address: Spanned<String>,
    pub private_address: Option<Spanned<String>>,
    pub roles: Spanned<Vec<Spanned<String>>>,
    pub ssh: RawSsh,
    /// The host's OS release, for `render` (a host's own release is a fact for `plan`).
    pub release: Option<Spanned<String>>,
    /// Read only by the test lab (`tests/lab/lab`); accepted here so lab inventories stay valid.
    pub lab: Option<RawLab>,
}

#[derive(Debug)]
pub struct RawSsh {
    pub address: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub user: Option<Spanned<String>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<i64>>,
    pub proxy_jump: Option<Spanned<String>>,
    pub config: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawLab {
    /// Defaults to "systemd" in the lab.
    pub flavour: Option<Spanned<String>>,
    /// The Debian release of the lab host's image; the lab picks its default.
    pub release: Option<Spanned<String>>,
    /// "outer" (default), "inner" (reachable only through a bastion) or "bastion" (on both).
    pub network: Option<Spanned<String>>,
    /// The lab host's IP address when `ssh.address` is a Host alias of an ssh_config.
    pub address: Option<Spanned<String>>,
}

impl RawHost {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawHost> {
        let name = r.req_str(&mut t, "name", "a host name like \"web-01\"");
        let public_address = r.req_str(&mut t, "public_address", ADDRESS);
        let private_address = r.opt_str(&mut t, "private_address", ADDRESS);
        let roles = r.req_str_list(&mut t, "roles", ROLES);
        let ssh = r.req_table(
            &mut t,
            "ssh",
            "a table: [hosts.ssh] or ssh = { address = \"...\" }",
        );
        let release = r.opt_str(&mut t, "release", "a release name like \"trixie\"");
        let lab = r.opt_table(&mut t, "lab", "a table: [hosts.lab]");
        let span = t.span.clone();
        r.finish(t);
        let ssh = ssh.and_then(|s| RawSsh::read(r, s));
        let lab = lab.map(|l| l.and_then(|l| RawLab::read(r, l)));
        Some(RawHost {
            span,
            name: name?,
            public_address: public_address?,
            private_address: private_address?,
            roles: roles?,
            ssh: ssh?,
            release: release?,
            lab: lab?,
        })
    }
}

impl RawSsh {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawSsh> {
        let address = r.req_str(&mut t, "address", "an IP address or a DNS name");
        let port = r.opt_int(&mut t, "port", PORT);
        let user = r.opt_str(&mut t, "user", "a Unix user name like \"root\"");
        let identity_file = r.opt_str(&mut t, "identity_file", LOCAL_PATH);
        let known_hosts = r.opt_str(&mut t, "known_hosts", LOCAL_PATH);
        let connect_timeout = r.opt_int(&mut t, "connect_timeout", CONNECT_TIMEOUT);
        let proxy_jump = r.opt_str(&mut t, "proxy_jump", PROXY_JUMP);
        let config = r.opt_str(&mut t, "config", SSH_CONFIG);
        r.finish(t);
        Some(RawSsh {
            address: address?,
            port: port?,
            user: user?,
            identity_file: identity_file?,
            known_hosts: known_hosts?,
            connect_timeout: connect_timeout?,
            proxy_jump: proxy_jump?,
            config: config?,
        })
    }
}

impl RawLab {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawLab> {
        let flavour = r.opt_str(&mut t, "flavour", "\"systemd\" or \"plain\"");
        let release = r.opt_str(&mut t, "release", "\"bookworm\" or \"trixie\"");
        let network = r.opt_str(&mut t, "network", LAB_NETWORK);
        let address = r.opt_str(&mut t, "address", ADDRESS);
        r.finish(t);
        Some(RawLab {
            flavour: flavour?,
            release: release?,
            network: network?,
            address: address?,
        })
    }
}
