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
mod php;
mod schedule;
mod tls;
pub mod zone;

pub use out::{Cx, Out, PathBuilder, Scope, SiteCx};
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

/// The components provision knows, in dependency order, and which of them each host runs.
pub struct Registry {
    components: Vec<&'static dyn Component>,
    roles: Vec<(Role, Vec<&'static str>)>,
}

impl Registry {
    pub fn standard() -> Registry {
        Registry::new(
            vec![
                // First: sshd and the ruleset go live (and are confirmed with a new connection)
                // before services listen anew.
                &hardening::HARDENING,
                &firewall::FIREWALL,
                &mariadb::MARIADB,
                &mariadb::REPLICA,
                &backup::BACKUP,
                &php::PHP,
                &php::PHP_FPM,
                // Before the web servers: its validator gives their staged configuration the
                // certificate files only it makes, and its step serves one before they reload.
                &acme::ACME,
                &apache::APACHE,
                &nginx::NGINX,
                &app::APP,
                &bind::BIND,
                &haproxy::HAPROXY,
                &keepalived::KEEPALIVED,
            ],
            ROLES.iter().map(|(r, c)| (*r, c.to_vec())).collect(),
        )
    }

    /// `components` in any order: they are sorted so that each comes after what it declares.
    pub fn new(
        components: Vec<&'static dyn Component>,
        roles: Vec<(Role, Vec<&'static str>)>,
    ) -> Registry {
        Registry {
            components: topological(components),
            roles,
        }
    }

    /// The same registry with one more component on every host of `role` (tests, extensions).
    pub fn with(mut self, c: &'static dyn Component, role: Role) -> Registry {
        match self.roles.iter_mut().find(|(r, _)| *r == role) {
            Some((_, list)) => list.push(c.name()),
            None => self.roles.push((role, vec![c.name()])),
        }
        let mut all = self.components;
        all.push(c);
        self.components = topological(all);
        self
    }

    pub fn all(&self) -> &[&'static dyn Component] {
        &self.components
    }

    /// The components a host runs, in dependency order: those of every site's stack it serves,
    /// and of its roles.
    pub fn for_host(&self, spec: &Spec, host: &Host) -> Vec<&'static dyn Component> {
        let mut names: Vec<&str> = Vec::new();
        if host.has(Role::Web) {
            for site in spec.sites_on(host) {
                names.extend(stack_components(site.stack.name()));
            }
        }
        for (role, list) in &self.roles {
            if host.has(*role) {
                names.extend(list.iter());
            }
        }
        self.components
            .iter()
            .filter(|c| names.contains(&c.name()))
            .copied()
            .collect()
    }

    /// Of a host's `components`, those `site`'s stack has, in dependency order.
    pub fn for_site(
        &self,
        site: &crate::spec::Site,
        components: &[&'static dyn Component],
    ) -> Vec<&'static dyn Component> {
        let names = stack_components(site.stack.name());
        components
            .iter()
            .filter(|c| names.contains(&c.name()))
            .copied()
            .collect()
    }

    /// Names in dependency order.
    pub fn order(&self) -> Vec<String> {
        self.components
            .iter()
            .map(|c| c.name().to_string())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&'static dyn Component> {
        self.components.iter().find(|c| c.name() == name).copied()
    }

    /// Hosts grouped so that every host comes after the hosts whose components its own come after
    /// (web hosts after the database primary, the load balancer after the web hosts). Hosts of one
    /// group share no such relation and can be worked on in parallel.
    pub fn tiers<'a>(&self, spec: &'a Spec, hosts: &[&'a Host]) -> Vec<Vec<&'a Host>> {
        let comps: Vec<Vec<&str>> = spec
            .hosts
            .iter()
            .map(|h| self.for_host(spec, h).iter().map(|c| c.name()).collect())
            .collect();
        // What each host's components come after and it does not have itself: host b must be
        // done before host a when b has one of those (a's own components are ordered on a
        // itself). Worked out once per host, not per pair and round: with 50 hosts the pairwise
        // closures were most of a one-host no-op's CPU.
        let mut closures: std::collections::HashMap<&str, Vec<String>> = Default::default();
        let needs: Vec<Vec<String>> = comps
            .iter()
            .map(|own| {
                let mut out: Vec<String> = Vec::new();
                for ca in own {
                    let deps = closures.entry(ca).or_insert_with(|| self.closure(ca));
                    for dep in deps.iter() {
                        if !own.contains(&dep.as_str()) && !out.contains(dep) {
                            out.push(dep.clone());
                        }
                    }
                }
                out
            })
            .collect();
        let n = spec.hosts.len();
        let before: Vec<Vec<usize>> = (0..n)
            .map(|a| {
                (0..n)
                    .filter(|&b| a != b && needs[a].iter().any(|d| comps[b].contains(&d.as_str())))
                    .collect()
            })
            .collect();
        let mut level = vec![0usize; n];
        // Relations among components are acyclic, so levels settle within n rounds.
        for _ in 0..n {
            let mut moved = false;
            for a in 0..n {
                for &b in &before[a] {
                    if level[a] <= level[b] {
                        level[a] = level[b] + 1;
                        moved = true;
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let top = level.iter().copied().max().unwrap_or(0);
        (0..=top)
            .map(|l| {
                spec.hosts
                    .iter()
                    .enumerate()
                    .filter(|(i, h)| level[*i] == l && hosts.iter().any(|x| x.name == h.name))
                    .map(|(_, h)| h)
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect()
    }

    /// Every component `name` comes after, directly or not.
    fn closure(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            if let Some(c) = self.get(&n) {
                for dep in c.after() {
                    if !out.iter().any(|o| o == dep) {
                        out.push(dep.to_string());
                        todo.push(dep.to_string());
                    }
                }
            }
        }
        out
    }
}

/// Stable topological sort by `after`: a component never precedes what it comes after; otherwise
/// the given order is kept. Unknown names in `after` are ignored (a component that is not there
/// imposes nothing).
fn topological(mut todo: Vec<&'static dyn Component>) -> Vec<&'static dyn Component> {
    let mut out: Vec<&'static dyn Component> = Vec::new();
    while !todo.is_empty() {
        let ready = todo.iter().position(|c| {
            c.after()
                .iter()
                .all(|dep| !todo.iter().any(|t| t.name() == *dep))
        });
        // A cycle would be a programming error in the registry; keep going in the given order.
        let i = ready.unwrap_or(0);
        out.push(todo.remove(i));
    }
    out
}

#[cfg(test)]
mod tests;
