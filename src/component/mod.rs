//! Components: one per service or concern (nginx, apache, php-fpm, mariadb, bind, haproxy, the
//! application). A component owns, in one file, everything provision knows about its service: its
//! packages, the files it renders and their validators, its services and what they come after, its
//! facts (a probe snippet and a pure reading of its output), its converge steps beyond files, and its
//! health checks. The generic pipeline (render → facts → plan → apply) asks the components and names
//! no service itself.
//!
//! Adding a service is one file here plus its templates: implement `Component`, add it to
//! `Registry::standard` and to the stack or role it belongs to in `STACKS` / `ROLES`.

mod acme;
mod apache;
pub mod app;
pub mod backup;
mod bind;
pub mod firewall;
mod haproxy;
pub mod hardening;
mod keepalived;
mod mariadb;
mod nginx;
pub use mariadb::switchover;
mod out;
pub(crate) mod php;
mod registry;
mod schedule;
mod tls;
pub mod zone;

pub use out::{Cx, Out, PathBuilder, Scope, SiteCx};
pub use registry::Registry;
pub use tls::context as tls_context;

use crate::desired::Handler;
use crate::health::CheckFailed;
use crate::spec::{Host, Role, Spec};
use crate::transport::Output;
use serde_json::{Map, Value};

/// A stack is a list of components, run on every host with the `web` role.
pub const STACKS: &[(&str, &[&str])] = &[
    (
        "lemp",
        &[
            "hardening",
            "firewall",
            "nginx",
            "php",
            "php-fpm",
            "acme",
            "app",
        ],
    ),
    (
        "lamp",
        &[
            "hardening",
            "firewall",
            "apache",
            "php",
            "php-fpm",
            "acme",
            "app",
        ],
    ),
    (
        "nginx-apache",
        &[
            "hardening",
            "firewall",
            "nginx",
            "apache",
            "php",
            "php-fpm",
            "acme",
            "app",
        ],
    ),
];

/// The components of a stack (none for a name that is not one).
pub fn stack_components(stack: &str) -> &'static [&'static str] {
    STACKS
        .iter()
        .find(|(n, _)| *n == stack)
        .map(|(_, list)| *list)
        .unwrap_or(&[])
}

/// A role is a list of components; `web` takes the stacks of the sites it serves.
pub const ROLES: &[(Role, &[&str])] = &[
    (Role::Db, &["hardening", "firewall", "mariadb", "backup"]),
    (
        Role::DbReplica,
        &["hardening", "firewall", "mariadb-replica", "backup"],
    ),
    (Role::Dns, &["hardening", "firewall", "bind"]),
    (
        Role::Lb,
        &["hardening", "firewall", "acme", "haproxy", "keepalived"],
    ),
];

/// How long the site's domain may be for a component, because of a name it derives from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainLimit {
    pub max: usize,
    /// Which name, and its bound, in words for the "allowed:" of the error.
    pub why: String,
}

/// Longest a file name (one path component) may be, in bytes (Linux NAME_MAX).
pub const NAME_MAX: usize = 255;

impl DomainLimit {
    /// A file named `<domain><suffix>`: it must fit in a file name.
    pub fn file(what: &str, suffix: &str) -> DomainLimit {
        DomainLimit {
            max: NAME_MAX - suffix.len(),
            why: format!("{what} is named <domain>{suffix}, which must fit in a file name ({NAME_MAX} bytes)"),
        }
    }
}

/// The strictest domain limit of the components a site with `stack` can run (its stack's, and
/// every role's).
pub fn domain_limit(stack: &str) -> Option<DomainLimit> {
    let registry = Registry::standard();
    let mut names: Vec<&str> = STACKS
        .iter()
        .filter(|(n, _)| *n == stack)
        .flat_map(|(_, list)| list.iter().copied())
        .collect();
    names.extend(ROLES.iter().flat_map(|(_, list)| list.iter().copied()));
    names
        .iter()
        .filter_map(|n| registry.get(n).and_then(|c| c.domain_limit()))
        .min_by_key(|l| l.max)
}

/// How a host that fronts others (a load balancer) takes one of them out of service while it
/// changes: shell scripts run as root on the fronting host, each exiting 0 when done (also when
/// there is nothing to do yet, e.g. before the balancer runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    /// Stop sending it new requests and wait (bounded) until the ones it has are answered.
    pub close: String,
    /// Send it requests again.
    pub open: String,
    /// Keep it out: its change failed.
    pub fence: String,
}

/// A host a fronting host still sends requests to that the inventory no longer names (a web host
/// taken out of it): apply takes it out of service there before any host changes, as the hosts
/// that served it (the database's grants and ruleset) stop serving it in the same run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaving {
    pub target: String,
    /// A shell script run as root on the fronting host: stop sending it requests, wait (bounded)
    /// until the ones it has are answered, then keep it out for good (no health check either).
    pub close: String,
}

/// A command the facts probe starts in the background while it runs its own `find` and
/// `sha256sum` (most of a converged host's probe is waiting on a handful of processes; a host has
/// cores to spare). One simple command: no shell syntax around it, its words quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beside {
    /// Its standard output comes back to the component, as a snippet's does. One such command
    /// runs beside the rest of the probe; the probe prints nothing until it has ended.
    Output(String),
    /// Only its exit status comes back, as the line `exit N`.
    Status(String),
}

/// A line of `provision check` about a service, from its component's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub ok: bool,
    pub text: String,
}

/// A need a component reads from its facts: a handler to run and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub handler: Handler,
    pub reason: String,
}

pub trait Component: Sync {
    fn name(&self) -> &'static str;

    /// Components whose services must be up before this one's: on one host, their handlers run
    /// first; across hosts, their hosts are applied first.
    fn after(&self) -> &'static [&'static str] {
        &[]
    }

    /// How long the site's domain may be, when a name this component derives from it is bounded
    /// (a file name, a socket path). `validate` refuses longer domains.
    fn domain_limit(&self) -> Option<DomainLimit> {
        None
    }

    /// Site-wide values the templates read (`php.socket`, `db.name`, ...), whatever the host.
    fn context(&self, _site: &SiteCx, _ctx: &mut Map<String, Value>) {}

    /// What this component puts on a host it applies to, for the host as a whole (once, whatever
    /// sites the host serves: nginx.conf, the MariaDB server, the zones of every site).
    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), crate::render::RenderError>;

    /// What it puts on a web host for one site the host serves (a vhost, a PHP pool, the
    /// application): called once per site whose stack has this component, with `cx` showing
    /// that site's template values.
    fn render_site(
        &self,
        _cx: &Cx,
        _site: &crate::spec::Site,
        _out: &mut Out,
    ) -> Result<(), crate::render::RenderError> {
        Ok(())
    }

    /// A read-only shell snippet for the facts probe; its output lines come back to `needs`.
    fn probe(&self, _cx: &Cx) -> Option<String> {
        None
    }

    /// A read-only command for the probe to run beside its own work; what it says comes back to
    /// `needs` like a snippet's output.
    fn probe_beside(&self, _cx: &Cx) -> Option<Beside> {
        None
    }

    /// When this component fronts `target` (another host of the site), how to take `target` out
    /// of service while it changes: apply then changes such hosts a batch at a time.
    fn gate(&self, _cx: &Cx, _target: &Host) -> Option<Gate> {
        None
    }

    /// Pure: the hosts this component still fronts, by the probe's output lines, that the
    /// inventory no longer names.
    fn leaving(&self, _cx: &Cx, _lines: &[String]) -> Vec<Leaving> {
        Vec::new()
    }

    /// Pure: the hosts, by address, this component stops serving in this run because the
    /// inventory no longer names them (a web host's database account dropped), by the probe's
    /// output lines. Whoever fronts those hosts must take them out of service first, in the same
    /// run (`leaving`).
    fn stops_serving(&self, _cx: &Cx, _lines: &[String]) -> Vec<String> {
        Vec::new()
    }

    /// Pure: what needs a look by the probe's output lines that no change of an apply fixes (a
    /// certificate the CA did not give): `plan` says it.
    fn notices(&self, _cx: &Cx, _lines: &[String]) -> Vec<String> {
        Vec::new()
    }

    /// Pure: what the probe's output lines say about the service's health (`provision check`).
    fn report(&self, _cx: &Cx, _lines: &[String]) -> Vec<Report> {
        Vec::new()
    }

    /// Pure: what the probe's output lines say must be done (e.g. the database bootstrap when an
    /// account is missing).
    fn needs(&self, _cx: &Cx, _lines: &[String]) -> Vec<Need> {
        Vec::new()
    }

    /// Pure: reads the answer (exit status and output) to one of this component's
    /// `HealthCheck::Remote` checks: what passed, or why it did not.
    fn read_check(&self, _spec: &Spec, _answer: &Output) -> Result<String, CheckFailed> {
        Err(CheckFailed(format!(
            "the component {} reads no health check (a bug)",
            self.name()
        )))
    }
}

#[cfg(test)]
mod tests;
