//! The way to a host: the inventory's `[hosts.ssh]` laid over the user's ssh_config, as a list of
//! SSH servers to go through (ProxyJump hosts, then the host itself), each with its own address,
//! user, keys, known_hosts and host-key policy.
//!
//! The inventory's values win over the ssh_config's for the host itself. Jump hosts are configured
//! as `ssh -J` configures them: by their own ssh_config entry (`Host bastion`), the `user@` and
//! `:port` written in the jump list, then the defaults (the local user name, port 22, like ssh);
//! only the first jump host's own ProxyJump is followed, as ssh does. Where a jump host's
//! ssh_config names no IdentityFile or UserKnownHostsFile, the inventory's `identity_file` and
//! `known_hosts` serve for it too, so one inventory key covers a whole lab or site.

use super::known_hosts::known_hosts_name;
use super::ssh_config::{
    expand, parse_jumps, ConfigError, HostConfig, Jump, SshConfig, Strict, Tokens, WordError,
};
use super::HostKeyPolicy;
use crate::spec::{Ssh, SshConfigFile};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// More hops than this is a ProxyJump loop in the ssh_config, most likely.
const MAX_HOPS: usize = 8;

/// Why no way to the host could be made of the inventory and the ssh_config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// An IdentityFile or UserKnownHostsFile with a `%` token that cannot be expanded.
    Token(WordError),
    /// A ProxyJump value that is not a jump list: the host's (`of` None) or a jump host's own.
    ProxyJump {
        value: String,
        of: Option<String>,
        error: WordError,
    },
    TooManyHops,
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::Token(e) => write!(f, "{e}"),
            RouteError::ProxyJump { value, of, error } => {
                write!(f, "ProxyJump {value:?}")?;
                if let Some(host) = of {
                    write!(f, " of {host}")?;
                }
                write!(f, ": allowed: {error}")
            }
            RouteError::TooManyHops => write!(
                f,
                "ProxyJump leads through more than {} jump hosts (a ProxyJump loop in the ssh_config?)",
                MAX_HOPS - 1
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// One SSH server on the way: a jump host, or the host itself (the last hop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// As it was named (an alias or an address), for the ssh_config and for messages.
    pub name: String,
    /// Where to connect: the ssh_config's HostName, else `name`.
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Keys to offer, in order; empty: ssh's default `~/.ssh/id_*` files.
    pub identity_files: Vec<PathBuf>,
    /// Offer only `identity_files` (from the agent too), not every key the agent holds.
    pub identities_only: bool,
    /// Where the host key is looked up; new keys are recorded in the first.
    pub known_hosts: Vec<PathBuf>,
    /// The host and port known_hosts knows the key under (HostKeyAlias: the alias, port 22).
    pub key_host: String,
    pub key_port: u16,
    pub strict: Option<Strict>,
    pub hash_known_hosts: bool,
    pub connect_timeout: Duration,
}

impl Hop {
    /// `user@host:port`, for messages.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.hostname, self.port)
    }

    /// The name the key has in known_hosts, for messages.
    pub fn key_name(&self) -> String {
        known_hosts_name(&self.key_host, self.key_port)
    }

    /// An unknown host key is accepted and recorded when the run (`--trust-new-hosts`) or the
    /// hop's StrictHostKeyChecking accepts new keys; a changed key never is.
    pub fn accepts_new_key(&self, policy: HostKeyPolicy) -> bool {
        policy == HostKeyPolicy::AcceptNew || self.strict == Some(Strict::AcceptNew)
    }
}

pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The local user name, ssh's default user for jump hosts (read once: getpwuid is not reentrant).
fn local_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
            return u;
        }
        // SAFETY: getpwuid's result is read at once, under the OnceLock.
        unsafe {
            let pw = libc::getpwuid(libc::getuid());
            if pw.is_null() {
                "root".to_string()
            } else {
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_string_lossy()
                    .into_owned()
            }
        }
    })
}

/// The ssh_config that applies to `ssh`; `None` when there is none to read.
pub fn config_for(ssh: &Ssh) -> Result<Option<SshConfig>, ConfigError> {
    let home = home();
    match &ssh.config {
        SshConfigFile::None => Ok(None),
        SshConfigFile::User => {
            let path = home.join(".ssh/config");
            if path.exists() {
                SshConfig::load(&path, &home).map(Some)
            } else {
                Ok(None)
            }
        }
        SshConfigFile::File(p) => {
            let p = PathBuf::from(super::ssh_config::expand_tilde(&p.to_string_lossy(), &home));
            SshConfig::load(&p, &home).map(Some)
        }
    }
}

/// Port, user and connect timeout the inventory left out, from each host's ssh_config (each file
/// read once). Returns the problems found in the files, if any.
pub fn fill_from_ssh_config<'a>(hosts: impl Iterator<Item = &'a mut Ssh>) -> Vec<ConfigError> {
    let mut read: Vec<(SshConfigFile, Option<SshConfig>)> = Vec::new();
    let mut errors = Vec::new();
    for ssh in hosts {
        let config = match read.iter().find(|(f, _)| *f == ssh.config) {
            Some((_, c)) => c.clone(),
            None => match config_for(ssh) {
                Ok(c) => {
                    read.push((ssh.config.clone(), c.clone()));
                    c
                }
                Err(e) => {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                    read.push((ssh.config.clone(), None));
                    continue;
                }
            },
        };
        if let Some(c) = config {
            let hc = c.lookup(ssh.alias.as_deref().unwrap_or(&ssh.address));
            apply(ssh, &hc);
            if let Some(h) = hc.hostname.filter(|h| *h != ssh.address) {
                ssh.alias = Some(std::mem::replace(&mut ssh.address, h));
            }
        }
    }
    errors
}

fn apply(ssh: &mut Ssh, hc: &HostConfig) {
    if ssh.unset.port {
        ssh.port = hc.port.unwrap_or(ssh.port);
    }
    if ssh.unset.user {
        ssh.user = hc.user.clone().unwrap_or_else(|| ssh.user.clone());
    }
    if ssh.unset.connect_timeout {
        ssh.connect_timeout_secs = hc.connect_timeout.unwrap_or(ssh.connect_timeout_secs);
    }
    ssh.unset = Default::default();
}

/// Every hop from this machine to the host, the host last.
pub fn route(ssh: &Ssh, config: Option<&SshConfig>) -> Result<Vec<Hop>, RouteError> {
    let empty = SshConfig::default();
    let config = config.unwrap_or(&empty);
    let home = home();
    // The name to look up is the one the inventory gave (`load` may have put HostName in its place).
    let name = ssh.alias.clone().unwrap_or_else(|| ssh.address.clone());
    let hc = config.lookup(&name);
    let mut target_ssh = ssh.clone();
    apply(&mut target_ssh, &hc);
    let ssh = &target_ssh;
    let hostname = hc.hostname.clone().unwrap_or_else(|| ssh.address.clone());
    let tokens = Tokens {
        host: &hostname,
        original: &name,
        port: ssh.port,
        remote_user: &ssh.user,
        local_user: local_user(),
        home: &home,
    };
    let mut identity_files: Vec<PathBuf> = ssh.identity_file.iter().cloned().collect();
    identity_files.extend(expand_all(&hc.identity_files, &tokens)?);
    let known_hosts = match &ssh.known_hosts {
        Some(k) => vec![k.clone()],
        None => known_hosts_files(hc.known_hosts.as_deref(), &tokens)?,
    };
    let target = Hop {
        name,
        hostname: hostname.clone(),
        port: ssh.port,
        user: ssh.user.clone(),
        identities_only: hc.identities_only.unwrap_or(false) || ssh.identity_file.is_some(),
        identity_files: identity_files
            .into_iter()
            .map(|p| expand_home(&p, &home))
            .collect(),
        known_hosts: known_hosts
            .into_iter()
            .map(|p| expand_home(&p, &home))
            .collect(),
        key_host: hc.host_key_alias.clone().unwrap_or(hostname.clone()),
        key_port: if hc.host_key_alias.is_some() {
            22
        } else {
            ssh.port
        },
        strict: hc.strict,
        hash_known_hosts: hc.hash_known_hosts.unwrap_or(false),
        connect_timeout: Duration::from_secs(u64::from(ssh.connect_timeout_secs)),
    };
    let jumps = match ssh.proxy_jump.as_deref().or(hc.proxy_jump.as_deref()) {
        Some(j) => parse_jumps(j).map_err(|error| RouteError::ProxyJump {
            value: j.to_string(),
            of: None,
            error,
        })?,
        None => Vec::new(),
    };
    let mut hops = chain(&jumps, ssh, config, &home, 0)?;
    hops.push(target);
    if hops.len() > MAX_HOPS {
        return Err(RouteError::TooManyHops);
    }
    Ok(hops)
}

/// The hops of a jump list: the first jump host's own way first, then the list in order.
fn chain(
    jumps: &[Jump],
    ssh: &Ssh,
    config: &SshConfig,
    home: &Path,
    depth: usize,
) -> Result<Vec<Hop>, RouteError> {
    if depth >= MAX_HOPS {
        return Err(RouteError::TooManyHops);
    }
    let mut hops = Vec::new();
    for (i, j) in jumps.iter().enumerate() {
        let hc = config.lookup(&j.host);
        if i == 0 {
            if let Some(own) = &hc.proxy_jump {
                let own = parse_jumps(own).map_err(|error| RouteError::ProxyJump {
                    value: own.clone(),
                    of: Some(j.host.clone()),
                    error,
                })?;
                hops.extend(chain(&own, ssh, config, home, depth + 1)?);
            }
        }
        hops.push(jump_hop(j, &hc, ssh, home)?);
        if hops.len() >= MAX_HOPS {
            return Err(RouteError::TooManyHops);
        }
    }
    Ok(hops)
}

fn jump_hop(j: &Jump, hc: &HostConfig, ssh: &Ssh, home: &Path) -> Result<Hop, RouteError> {
    let hostname = hc.hostname.clone().unwrap_or_else(|| j.host.clone());
    let port = j.port.or(hc.port).unwrap_or(22);
    let user = j
        .user
        .clone()
        .or(hc.user.clone())
        .unwrap_or_else(|| local_user().to_string());
    let tokens = Tokens {
        host: &hostname,
        original: &j.host,
        port,
        remote_user: &user,
        local_user: local_user(),
        home,
    };
    let mut identity_files = expand_all(&hc.identity_files, &tokens)?;
    let fallback_key = identity_files.is_empty() && ssh.identity_file.is_some();
    if fallback_key {
        identity_files.extend(ssh.identity_file.iter().cloned());
    }
    let known_hosts = match (&hc.known_hosts, &ssh.known_hosts) {
        (None, Some(k)) => vec![k.clone()],
        (k, _) => known_hosts_files(k.as_deref(), &tokens)?,
    };
    Ok(Hop {
        name: j.host.clone(),
        hostname: hostname.clone(),
        port,
        user,
        identity_files: identity_files
            .iter()
            .map(|p| expand_home(p, home))
            .collect(),
        identities_only: hc.identities_only.unwrap_or(false) || fallback_key,
        known_hosts: known_hosts.iter().map(|p| expand_home(p, home)).collect(),
        key_host: hc.host_key_alias.clone().unwrap_or(hostname),
        key_port: if hc.host_key_alias.is_some() {
            22
        } else {
            port
        },
        strict: hc.strict,
        hash_known_hosts: hc.hash_known_hosts.unwrap_or(false),
        connect_timeout: Duration::from_secs(u64::from(
            hc.connect_timeout.unwrap_or(ssh.connect_timeout_secs),
        )),
    })
}

fn expand_all(files: &[String], t: &Tokens) -> Result<Vec<PathBuf>, RouteError> {
    files
        .iter()
        .map(|f| expand(f, t).map(PathBuf::from).map_err(RouteError::Token))
        .collect()
}

/// UserKnownHostsFile's files, else ssh's default `~/.ssh/known_hosts`.
fn known_hosts_files(files: Option<&[String]>, t: &Tokens) -> Result<Vec<PathBuf>, RouteError> {
    match files {
        Some(f) => expand_all(f, t),
        None => Ok(vec![t.home.join(".ssh/known_hosts")]),
    }
}

/// `~/` in inventory paths (the spec keeps them as written).
pub fn expand_home(p: &Path, home: &Path) -> PathBuf {
    match p.strip_prefix("~") {
        Ok(rest) => home.join(rest),
        Err(_) => p.to_path_buf(),
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
