//! What components read from their probe's answer: HAProxy's view of the web servers, the
//! replica's threads, and the probe snippets themselves (sh syntax, the workers' probe run for real).

use super::*;

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
