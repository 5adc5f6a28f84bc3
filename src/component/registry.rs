//! The `Registry`: the components provision knows, sorted so that each comes after what it
//! declares, which of them each host runs (its roles' and its sites' stacks'), and the tiers of
//! hosts an apply changes one after another.

use super::{
    acme, apache, app, backup, bind, firewall, haproxy, hardening, keepalived, mariadb, nginx, php,
    stack_components, Component, ROLES,
};
use crate::spec::{Host, Role, Spec};

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
