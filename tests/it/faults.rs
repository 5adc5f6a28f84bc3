//! End-to-end faults on lab hosts: remote commands that stay silent for long, hosts that vanish
//! from the network in the middle of an apply, and applies cut off at each of their phases (the
//! controller SIGKILLed, the network cut, the host's script killed) with what must hold afterwards
//! (helpers in `cut.rs`, the host-side freezer in `freeze.py`).

use crate::cut::*;
use crate::lab::*;
use crate::util::*;
use std::time::{Duration, Instant};

/// apt (or any maintainer script) may print nothing for minutes on a slow mirror: the first apply
/// must wait for it, not give up on the silence.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn first_apply_survives_an_apt_that_is_silent_for_90_seconds() {
    const ADDR: &str = "198.18.0.33";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-silent", ADDR, "plain", true);
    // Once, before dpkg first runs: 90 s without a byte on the SSH channel.
    ssh(
        ADDR,
        "printf '%s\\n' 'DPkg::Pre-Invoke { \"[ -e /run/provision-test-slept ] || { sleep 90; touch /run/provision-test-slept; }\"; };' \
         > /etc/apt/apt.conf.d/99provision-test-silent",
    );
    let start = Instant::now();
    let done = Run::new(&["apply", "-i"]).arg(&inv).output().status(0);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(90),
        "the silent hook did not run ({took:?}):\n{}",
        done.stderr()
    );
    assert!(ssh(ADDR, "ls /run").contains("provision-test-slept"));
    let (status, body) = page(ADDR);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{body}"
    );
    eprintln!("silent apt: first apply converged in {took:.1?}");
}

/// The connection a host was planned over dies while the host waits for its turn (`--forks 1`:
/// the other host's first apply goes first, held 10 s in dpkg): here its sshd is killed, as a
/// firewall that drops idle connections or a restarted sshd would end it. Nothing ran there, so
/// provision connects again, plans the host again, and applies it.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_connection_lost_while_the_host_waits_its_turn_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("idle.toml");
    let host = |name: &str, addr: &str, roles: &str| {
        format!(
            "[[hosts]]\nname = \"{name}\"\npublic_address = \"{addr}\"\nroles = {roles}\n\
             ssh = {{ address = \"{addr}\", identity_file = \"{KEY}\", known_hosts = \"{KNOWN}\" }}\n\
             lab = {{ flavour = \"plain\" }}\n"
        )
    };
    std::fs::write(
        &inv,
        format!(
            "[site]\ndomain = \"foobar.com\"\nstack = \"lemp\"\n\
             [database]\nname = \"foobar\"\nuser = \"foobar\"\npassword_file = \"{}\"\n\
             [dns]\nttl = 300\nsoa_contact = \"hostmaster@foobar.com\"\n{}{}{}",
            root().join("inventories/secrets/lab_db_password").display(),
            // The site's own host, never selected.
            host("idle-site", "198.18.0.58", r#"["web", "app", "db"]"#),
            host("idle-a", "198.18.0.56", r#"["dns"]"#),
            host("idle-b", "198.18.0.57", r#"["dns"]"#),
        ),
    )
    .unwrap();
    let inv_s = inv.to_string_lossy().into_owned();
    lab(&["down", &inv_s]);
    lab(&["up", &inv_s]);
    ssh(
        "198.18.0.56",
        "printf '%s\\n' 'DPkg::Pre-Invoke { \"[ -e /run/provision-test-slept ] || { sleep 10; touch /run/provision-test-slept; }\"; };' \
         > /etc/apt/apt.conf.d/99provision-test-slow",
    );
    let child = Run::new(&[
        "apply", "-i", &inv_s, "--host", "idle-a", "--host", "idle-b", "--forks", "1",
    ])
    .spawn();
    // idle-b has been planned once its probe kept dpkg's answer; then every SSH session on it but
    // this one ends (the one that runs this command is its shell's parent).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ssh("198.18.0.57", "ls /var/lib/provision 2>/dev/null; true").contains("dpkg.cache") {
        assert!(Instant::now() < deadline, "idle-b was never planned");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The probe ends right after it keeps that answer; idle-a's apply then takes 10 s more.
    std::thread::sleep(Duration::from_secs(1));
    let killed = ssh(
        "198.18.0.57",
        "for p in $(pgrep -f '^sshd: root'); do [ \"$p\" = \"$PPID\" ] || { kill \"$p\" && echo \"$p\"; }; done",
    );
    assert!(!killed.trim().is_empty(), "no other SSH session on idle-b");
    let done = child.wait_output();
    lab(&["down", &inv_s]);
    let done = done.status(0);
    let out = format!("{}{}", done.stdout(), done.stderr());
    assert!(
        out.contains("idle-b: the connection was lost before the apply started"),
        "{out}"
    );
    assert!(
        out.contains("check ok: DNS A www.foobar.com @198.18.0.57"),
        "{out}"
    );
}

/// A host that disappears mid-apply (powered off, cable pulled) is reported, not waited on for ever.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_host_that_vanishes_mid_apply_is_reported_within_a_minute() {
    const ADDR: &str = "198.18.0.34";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-vanish", ADDR, "plain", true);
    ssh(
        ADDR,
        "printf '%s\\n' 'DPkg::Pre-Invoke { \"sleep 600\"; };' > /etc/apt/apt.conf.d/99provision-test-hang",
    );
    let child = Run::new(&["apply", "-i"]).arg(&inv).spawn();
    // Wait until the apply is inside apt, then take the host off the network.
    let deadline = Instant::now() + Duration::from_secs(240);
    while !ssh(ADDR, "ps -eo args").contains("sleep 600") {
        assert!(Instant::now() < deadline, "the apply never reached dpkg");
        std::thread::sleep(Duration::from_millis(500));
    }
    lab(&["cut", "e2e-vanish"]);
    let cut = Instant::now();
    let done = child.wait_output();
    let took = cut.elapsed();
    lab(&["heal", "e2e-vanish"]);
    lab(&["down", &inv.to_string_lossy()]);
    let done = done.status(3);
    assert!(
        done.stderr().contains("e2e-vanish") && done.stderr().contains("connection"),
        "{}",
        done.stderr()
    );
    assert!(
        took < Duration::from_secs(75),
        "the vanished host was reported only after {took:?}"
    );
    eprintln!("vanished host: reported {took:.1?} after its network was cut");
}

/// Issue items 10 and 6 on one plain host, phase by phase: the controller SIGKILLed while the
/// detached script is held inside each phase (packages of a first apply from scratch; then lock,
/// stage, validate, swap, reloads and the health checks of applies that change three files; then
/// the rollback after failed health checks), and then the script itself killed on the host inside
/// each phase that leaves something behind (packages with dpkg half-way, stage, validate, swap
/// half-way, reloads). After every cut the next apply converges with no manual step and `plan`
/// exits 0; see `cut::cut_at` for everything that is asserted.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_killed_controller_or_host_script_at_each_phase_is_recovered_by_the_next_apply() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let t = Target::new(dir.path(), "fault-kill", "198.18.0.35", "plain");
    let mut report = Vec::new();
    // From scratch, killed while apt installs the stack: the script goes on and finishes it.
    report.push(cut_at(
        &t,
        Cut::Kill,
        At::script("packages", "policy"),
        None,
        None,
    ));
    for at in [
        At::script("lock", "locked"),
        At::script("stage", "stage"),
        At::script("validate", "none"),
        At::script("swap", "swapped"),
        At::script("reload", "none"),
        At::checks(),
    ] {
        let v = variant(dir.path(), &format!("kill-{}", at.name));
        report.push(cut_at(&t, Cut::Kill, at, Some(&v), Some(&v)));
    }
    // A page without the database row fails the health checks; the controller is killed while
    // its rollback script runs. That script finishes alone; the next apply (with the good page)
    // converges.
    let bad = dir.path().join("templates-bad-page");
    std::fs::create_dir_all(bad.join("app")).unwrap();
    std::fs::write(
        bad.join("app/index.php"),
        "<?php echo 'a page without the row';\n",
    )
    .unwrap();
    report.push(cut_at(&t, Cut::Kill, At::rollback(), Some(&bad), None));
    // The script itself dies (a crash, the OOM killer): what it leaves is finished or cleaned by
    // the next run. A package to install again gives a packages phase with dpkg to kill half-way.
    ssh(&t.addr, "dpkg -r bind9-dnsutils > /dev/null");
    report.push(cut_at(
        &t,
        Cut::Script,
        At::script("packages", "dpkg"),
        None,
        None,
    ));
    for at in [
        At::script("stage", "stage"),
        At::script("validate", "none"),
        At::script("swap", "swapped"),
        At::script("reload", "none"),
    ] {
        let v = variant(dir.path(), &format!("script-{}", at.name));
        report.push(cut_at(&t, Cut::Script, at, Some(&v), Some(&v)));
    }
    Run::new(&["apply", "-i"]).arg(&t.inv).output().status(0);
    Run::new(&["plan", "-i"]).arg(&t.inv).output().status(0);
    lab(&["down", &t.inv.to_string_lossy()]);
    eprintln!(
        "faults on {} ({:.0?} in all):\n  {}",
        t.name,
        start.elapsed(),
        report.join("\n  ")
    );
}

/// Issue item 10, network cuts: the host taken off the network while the script is held inside
/// each phase, and during the health checks. The controller reports the lost connection on its
/// own (exit 3); the host, left alone, finishes (or, with apt unable to download, fails before it
/// changed anything); once it is back the next apply converges. Four hosts in parallel (each cut
/// costs the ~50 s the controller takes to declare the connection dead), one of them systemd.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_controller_cut_off_by_the_network_at_each_phase_is_recovered_by_the_next_apply() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    type Plan = (&'static str, &'static str, &'static str, [Option<At>; 2]);
    let hosts: [Plan; 4] = [
        (
            "fault-net1",
            "198.18.0.36",
            "plain",
            // At lock, held before it takes the lock (the SIGKILL test holds it just after).
            [
                Some(At::script("packages", "none")),
                Some(At::script("lock", "none")),
            ],
        ),
        (
            "fault-net2",
            "198.18.0.37",
            "systemd",
            [
                Some(At::script("stage", "stage")),
                Some(At::script("validate", "none")),
            ],
        ),
        (
            "fault-net3",
            "198.18.0.38",
            "plain",
            [
                Some(At::script("swap", "swapped")),
                Some(At::script("reload", "none")),
            ],
        ),
        (
            "fault-net4",
            "198.18.0.39",
            "plain",
            [Some(At::checks()), None],
        ),
    ];
    let reports: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|&(name, addr, flavour, ats)| {
                let dir = dir.path();
                s.spawn(move || {
                    let t = Target::new(dir, name, addr, flavour);
                    let mut report = Vec::new();
                    for at in ats.into_iter().flatten() {
                        if at.name == "packages" {
                            // From scratch: the cut also keeps apt from downloading anything.
                            report.push(cut_at(&t, Cut::Net, at, None, None));
                            continue;
                        }
                        if report.is_empty() {
                            Run::new(&["apply", "-i"]).arg(&t.inv).output().status(0);
                        }
                        let v = variant(dir, &format!("{name}-{}", at.name));
                        if at.name == "checks" {
                            // The cut must land while the checks run (CI on 9f60c54 saw them
                            // done, and the host marked, before the cut took hold).
                            slow_page(&v);
                        }
                        report.push(cut_at(&t, Cut::Net, at, Some(&v), Some(&v)));
                    }
                    lab(&["down", &t.inv.to_string_lossy()]);
                    report
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    eprintln!(
        "network cuts ({:.0?} in all):\n  {}",
        start.elapsed(),
        reports.concat().join("\n  ")
    );
}
