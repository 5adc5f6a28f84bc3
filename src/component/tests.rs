use super::*;
use crate::spec::{Spec, SystemSources};
use std::path::Path;

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

#[test]
fn haproxy_reports_each_web_server_and_fails_without_an_answer() {
    let stat = [
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status",
        "site,FRONTEND,,,0,1,2000,3,0,0,0,0,0,,,,,OPEN",
        "web-foobar-com,web-01,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP",
        "web-foobar-com,web-02,0,0,0,1,,3,0,0,,0,,0,0,0,0,DOWN",
        "web-foobar-com,BACKEND,0,0,0,1,200,3,0,0,0,0,,0,0,0,0,UP",
    ];
    assert_eq!(
        report("haproxy", "lb-01", &stat),
        [
            (true, "backend web-01: UP".to_string()),
            (false, "backend web-02: DOWN".to_string())
        ]
    );
    let silent = report("haproxy", "lb-01", &[]);
    assert_eq!(silent.len(), 1);
    assert!(!silent[0].0, "{silent:?}");
}

#[test]
fn haproxy_lets_go_of_web_servers_the_inventory_no_longer_names() {
    let stat: Vec<String> = [
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status",
        "site,FRONTEND,,,0,1,2000,3,0,0,0,0,0,,,,,OPEN",
        "web-foobar-com,web-01,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP",
        "web-foobar-com,web-02,0,0,0,1,,3,0,0,,0,,0,0,0,0,DOWN",
        "web-foobar-com,web-03,0,0,2,1,,3,0,0,,0,,0,0,0,0,UP",
        "web-foobar-com,web-04,0,0,0,1,,3,0,0,,0,,0,0,0,0,MAINT",
        "web-foobar-com,web-05,0,0,0,1,,3,0,0,,0,,0,0,0,0,DRAIN",
        "web-foobar-com,x;shutdown,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP",
        "web-foobar-com,BACKEND,0,0,0,1,200,3,0,0,0,0,,0,0,0,0,UP",
    ]
    .map(String::from)
    .to_vec();
    let leaving = on_lb_example(|spec, r, renderer| {
        let c = r.get("haproxy").unwrap();
        renderer.with_cx(
            spec.host("lb-01").unwrap(),
            crate::release::CURRENT_STABLE,
            |cx| c.leaving(cx, &stat),
        )
    });
    // web-01 and web-02 are named; web-04 is out already; a name provision never writes is not
    // put in a runtime API command.
    let targets: Vec<&str> = leaving.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(targets, ["web-03", "web-05"]);
    let close = &leaving[0].close;
    let drain = close
        .find("set server web-foobar-com/web-03 state drain")
        .unwrap();
    let wait = close.find("show stat").unwrap();
    let maint = close
        .find("set server web-foobar-com/web-03 state maint")
        .unwrap();
    assert!(drain < wait && wait < maint, "{close}");
    // Nothing is said when no server is left over, or HAProxy did not answer.
    assert!(on_lb_example(|spec, r, renderer| {
        renderer.with_cx(
            spec.host("lb-01").unwrap(),
            crate::release::CURRENT_STABLE,
            |cx| r.get("haproxy").unwrap().leaving(cx, &stat[..4]),
        )
    })
    .is_empty());
}

#[test]
fn a_replica_that_does_not_follow_its_primary_fails_the_check() {
    assert!(!report("mariadb-replica", "db-02", &[])[0].0);
    let primary = format!("Master_Host: {}", lb_spec().db_primary().internal_address());
    let ok = report(
        "mariadb-replica",
        "db-02",
        &[
            &primary,
            "Slave_IO_Running: Yes",
            "Slave_SQL_Running: Yes",
            "Seconds_Behind_Master: 0",
            "Provision_Database: 1",
            "Provision_Seeded: yes",
        ],
    );
    assert!(ok[0].0, "{ok:?}");
}

#[test]
fn no_probe_snippet_ends_or_changes_the_probe() {
    // The probe runs every component's snippet in its own shell: an `exit` would cut the probe
    // short, a `set` would change the paths it asks about.
    let seen = on_lb_example(|spec, r, renderer| {
        let mut seen = 0;
        for host in &spec.hosts {
            for c in r.for_host(spec, host) {
                let snippet =
                    renderer.with_cx(host, crate::release::CURRENT_STABLE, |cx| c.probe(cx));
                if let Some(s) = snippet {
                    seen += 1;
                    let words: Vec<&str> = s
                        .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .collect();
                    for w in ["exit", "set", "return", "exec"] {
                        assert!(!words.contains(&w), "{} uses {w}: {s}", c.name());
                    }
                }
                // A background command is one simple command: the probe adds `&` and its
                // redirections, and shell syntax around it would put part of it in the
                // foreground (or print while the probe waits). Quoted words may hold anything.
                let beside = renderer.with_cx(host, crate::release::CURRENT_STABLE, |cx| {
                    c.probe_beside(cx)
                });
                if let Some(super::Beside::Output(cmd) | super::Beside::Status(cmd)) = beside {
                    seen += 1;
                    assert!(
                        !unquoted(&cmd).contains(|ch: char| ";&|<>()$`\n\"".contains(ch)),
                        "{}: {cmd}",
                        c.name()
                    );
                }
            }
        }
        seen
    });
    assert!(seen >= 6, "{seen}");
}

/// What sh reads as syntax in `cmd`: the characters outside single quotes, a backslash's
/// escaped character left out.
fn unquoted(cmd: &str) -> String {
    let (mut out, mut quoted, mut chars) = (String::new(), false, cmd.chars());
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (_, '\'') => quoted = !quoted,
            (false, '\\') => {
                chars.next();
            }
            (false, ch) => out.push(ch),
            (true, _) => {}
        }
    }
    out
}

/// The workers' probe, run for real by sh on this machine: what `ps -o user=,rss= -C COMM` prints
/// for a process of the test's own.
#[test]
fn the_workers_probe_reports_user_and_resident_size_like_ps() {
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    // Measured once the child has become `sleep` and sleeps (state S): while it still execs, its
    // name and resident size change between the probe's read and ps's.
    let stat = format!("/proc/{}/stat", sleeper.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&stat).is_ok_and(|s| s.contains("(sleep) S")) {
        assert!(std::time::Instant::now() < deadline, "sleep never slept");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(super::php::workers_probe("sleep"))
        .output()
        .unwrap();
    let ps = std::process::Command::new("ps")
        .args(["-o", "user=,rss=", "-p", &sleeper.id().to_string()])
        .output()
        .unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let ours = String::from_utf8_lossy(&ps.stdout);
    let ours: Vec<&str> = ours.split_whitespace().collect();
    let probed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        probed
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ours),
        "probe: {probed:?}, ps: {ours:?}"
    );
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

/// Runs `f` on the host of the ACME example (inventories/acme.toml) with its `acme` component.
fn on_acme_example<T>(f: impl FnOnce(&dyn Component, &Cx) -> T) -> T {
    on_example("acme.toml", |spec, r, renderer| {
        let c = r.get("acme").unwrap();
        renderer.with_cx(&spec.hosts[0], crate::release::CURRENT_STABLE, |cx| {
            f(c, cx)
        })
    })
}

fn owned(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

/// `provision-acme status` of foobar.com, serving `serving`, the last try `result`.
fn acme_status(serving: &str, result: &str) -> Vec<String> {
    owned(&[
        "schedule active",
        "now 1800000000",
        "site foobar.com",
        "wanted foobar.com www.foobar.com",
        "challenge http-01",
        &format!("serving {serving}"),
        "names foobar.com www.foobar.com",
        "issuer CN=Pebble Intermediate-CA 1a2b3c",
        "not_after 1807776000",
        &format!("result {result}"),
        if result == "failed" {
            "failures 2"
        } else {
            "failures 0"
        },
        if result == "failed" {
            "next_try 1800007200"
        } else {
            "next_try 0"
        },
        if result == "failed" {
            "error acme: error: 0 :: connection refused"
        } else {
            "error "
        },
    ])
}

#[test]
fn acme_asks_for_its_step_and_schedule_by_what_the_host_says() {
    let needs = |lines: Vec<String>| {
        on_acme_example(|c, cx| {
            c.needs(cx, &lines)
                .into_iter()
                .map(|n| format!("{} ({})", n.handler.line(), n.reason))
                .collect::<Vec<_>>()
        })
    };
    // Never applied: no schedule, no state.
    let first = needs(Vec::new());
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first[0].contains("acme-schedule"), "{first:?}");
    assert!(
        first[1].contains("acme-foobar.com") && first[1].contains("no state"),
        "{first:?}"
    );
    assert!(needs(acme_status("issued", "ok")).is_empty());
    assert!(needs(acme_status("placeholder", "none")).is_empty());
    let gone = needs(acme_status("missing", "ok"));
    assert!(
        gone.len() == 1 && gone[0].contains("no certificate file"),
        "{gone:?}"
    );
    // Never issued and the CA refused: an apply asks again; an issued one serving waits for the
    // timer's backoff.
    let refused = needs(acme_status("placeholder", "failed"));
    assert!(
        refused.len() == 1 && refused[0].contains("the CA gave none yet (acme: error"),
        "{refused:?}"
    );
    assert!(needs(acme_status("issued", "failed")).is_empty());
}

#[test]
fn acme_says_what_needs_attention_and_reports_each_certificate() {
    let said = |lines: Vec<String>| {
        on_acme_example(|c, cx| {
            let reports: Vec<(bool, String)> = c
                .report(cx, &lines)
                .into_iter()
                .map(|r| (r.ok, r.text))
                .collect();
            (c.notices(cx, &lines), reports)
        })
    };
    let (notices, reports) = said(acme_status("issued", "ok"));
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(
        reports,
        [(
            true,
            "certificate of foobar.com: foobar.com www.foobar.com by CN=Pebble Intermediate-CA 1a2b3c, 90 days left".to_string()
        )]
    );
    let (notices, reports) = said(acme_status("issued", "failed"));
    assert_eq!(
        notices,
        ["certificate of foobar.com: the CA gave no certificate (2 tries: acme: error: 0 :: connection refused); next try in 120 min; the certificate served ends in 90 days"]
    );
    assert!(!reports[0].0, "{reports:?}");
    let (_, reports) = said(Vec::new());
    assert_eq!(
        reports,
        [(
            false,
            "certificate of foobar.com: provision-acme has no state for it (not applied yet?)"
                .to_string()
        )]
    );
}
