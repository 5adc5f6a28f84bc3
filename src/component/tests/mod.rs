//! The components' own tests: the registry's order, stacks, roles and tiers, and every role's
//! health check here; what components read from their probes in `probes`, the ACME component's
//! reading of its host in `acme`. The helpers below run a component on an example inventory.

use super::*;
use crate::spec::{Spec, SystemSources};
use std::path::Path;

mod acme;
mod probes;

fn lb_spec() -> Spec {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lb.toml"));
    crate::spec::load(path, &SystemSources).unwrap()
}

fn names(cs: &[&'static dyn Component]) -> Vec<&'static str> {
    cs.iter().map(|c| c.name()).collect()
}

#[test]
fn components_come_after_what_they_declare() {
    let r = Registry::standard();
    let order = r.order();
    let pos = |n: &str| order.iter().position(|o| o == n).unwrap();
    for c in r.all() {
        for dep in c.after() {
            assert!(pos(dep) < pos(c.name()), "{} before {dep}", c.name());
        }
    }
}

#[test]
fn a_stack_and_the_roles_give_each_host_its_components() {
    let spec = lb_spec();
    let r = Registry::standard();
    let of = |h: &str| names(&r.for_host(&spec, spec.host(h).unwrap()));
    // Hardening and the firewall are on every host (they render nothing without their tables),
    // first.
    let first = ["hardening", "firewall"];
    let with = |rest: &[&'static str]| [&first[..], rest].concat();
    // acme is in every stack and renders nothing for a site without `tls.acme`.
    assert_eq!(
        of("web-01"),
        with(&["php", "php-fpm", "acme", "nginx", "app"])
    );
    assert_eq!(of("db-01"), with(&["mariadb", "backup"]));
    assert_eq!(of("db-02"), with(&["mariadb-replica", "backup"]));
    assert_eq!(
        of("lb-01"),
        with(&["acme", "bind", "haproxy", "keepalived"])
    );
    assert_eq!(of("lb-02"), with(&["acme", "haproxy", "keepalived"]));
}

#[test]
fn host_tiers_follow_the_relations_between_components() {
    let spec = lb_spec();
    let r = Registry::standard();
    let all: Vec<&crate::spec::Host> = spec.hosts.iter().collect();
    let tiers: Vec<Vec<&str>> = r
        .tiers(&spec, &all)
        .iter()
        .map(|t| t.iter().map(|h| h.name.as_str()).collect())
        .collect();
    // The primary first; its replica and the web hosts after it; the balancer after the web hosts.
    assert_eq!(
        tiers,
        [
            vec!["db-01"],
            vec!["web-01", "web-02", "db-02"],
            vec!["lb-01", "lb-02"]
        ]
    );
}

#[test]
fn the_stacks_name_only_known_components() {
    let r = Registry::standard();
    for (stack, list) in STACKS {
        for c in *list {
            assert!(r.get(c).is_some(), "stack {stack}: unknown component {c}");
        }
    }
    for (role, list) in ROLES {
        for c in *list {
            assert!(r.get(c).is_some(), "role {role:?}: unknown component {c}");
        }
    }
}

/// What `report` says of `lines` on host `h` of the lb example.
fn report(component: &str, h: &str, lines: &[&str]) -> Vec<(bool, String)> {
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    on_lb_example(|spec, r, renderer| {
        let host = spec.host(h).unwrap();
        let c = r.all().iter().find(|c| c.name() == component).unwrap();
        renderer.with_cx(host, crate::release::CURRENT_STABLE, |cx| {
            c.report(cx, &lines)
                .into_iter()
                .map(|r| (r.ok, r.text))
                .collect()
        })
    })
}

/// Runs `f` with the lb example, the standard registry and a renderer of them.
fn on_lb_example<T>(f: impl FnOnce(&Spec, &Registry, &crate::render::Renderer) -> T) -> T {
    on_example("lb.toml", f)
}

/// Runs `f` with the example inventory `name`, the standard registry and a renderer of them.
fn on_example<T>(name: &str, f: impl FnOnce(&Spec, &Registry, &crate::render::Renderer) -> T) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventories")
        .join(name);
    let spec = crate::spec::load(&path, &SystemSources).unwrap();
    let r = Registry::standard();
    let templates = crate::render::templates::Templates::load(None).unwrap();
    let opts = crate::render::RenderOptions {
        reveal_secrets: false,
        today: 20261123,
    };
    let renderer = crate::render::Renderer::new(&r, &spec, &templates, &opts);
    f(&spec, &r, &renderer)
}

/// Every host is confirmed by a check of what it serves, run by apply after its change: the site's
/// page for web hosts and balancers, DNS answers, and what only a host can see (the database
/// reached from each web host, the replica's threads, the balancer's view of each web host).
#[test]
fn every_role_has_a_health_check() {
    use crate::desired::HealthCheck;
    on_lb_example(|spec, r, renderer| {
        for host in &spec.hosts {
            let d = renderer
                .host(
                    host,
                    crate::release::CURRENT_STABLE,
                    &crate::render::Unknown,
                )
                .unwrap();
            let remote: Vec<(&str, &str)> = d
                .checks
                .iter()
                .filter_map(|c| match c {
                    HealthCheck::Remote {
                        host, component, ..
                    } => Some((host.as_str(), component.as_str())),
                    _ => None,
                })
                .collect();
            for role in &host.roles {
                let checked = match role {
                    Role::Web | Role::App => d
                        .checks
                        .iter()
                        .any(|c| matches!(c, HealthCheck::Http { address, .. } if *address == host.ssh.address)),
                    Role::Dns => d.checks.iter().any(|c| matches!(c, HealthCheck::Dns { .. })),
                    Role::Db => spec
                        .hosts_with(Role::Web)
                        .all(|w| remote.contains(&(w.name.as_str(), "mariadb"))),
                    Role::DbReplica => remote.contains(&(host.name.as_str(), "mariadb-replica")),
                    Role::Lb => remote.contains(&(host.name.as_str(), "haproxy")),
                };
                assert!(
                    checked,
                    "{}: role {role:?} has no check: {:?}",
                    host.name, d.checks
                );
            }
            for (on, component) in remote {
                assert!(spec.host(on).is_some() && r.get(component).is_some());
            }
        }
    });
}
