//! End-to-end: what can lock the operator out (a ruleset, sshd's settings) goes live guarded. Only a
//! NEW SSH connection confirms it, whatever the run's own connection is (a kept `--ssh-reuse`
//! master vouches only for the old session); the host's guard counts from the end of the apply,
//! so a slow step after the ruleset cannot outlast it; and when nobody confirms (the controller
//! was stopped), the host rolls the whole generation back by itself, `/etc/nftables.conf` and
//! sshd's drop-in included, and needs attention.

use crate::lab::*;
use crate::util::*;
use std::io::BufRead;

/// `--ssh-reuse` keeps one connection for the whole run: sshd settings that refuse every new
/// login are still found out (a new connection, not the master, must get through) and undone
/// through the old one. On c1cb461 the master "confirmed" them and the apply exited 0, leaving
/// root locked out once the master went.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn sshd_settings_refusing_new_logins_are_undone_with_a_kept_connection() {
    const ADDR: &str = "198.18.0.116";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-guard-sshd", ADDR, "plain", true);
    let inv = inv.to_string_lossy().to_string();
    let xdg = dir.path().join("run");
    std::fs::create_dir(&xdg).unwrap();
    std::fs::set_permissions(&xdg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let xdg = xdg.to_string_lossy().to_string();
    let reuse = |args: &[&str]| {
        Run::new(args)
            .args(&["--ssh-reuse", "60", "-i", &inv])
            .env("XDG_RUNTIME_DIR", &xdg)
    };
    let done = reuse(&["apply"]).output().status(0);
    assert!(
        done.stderr().contains("a new SSH connection got through"),
        "{}",
        done.stderr()
    );
    let tpl = tempfile::tempdir().unwrap();
    template_override(tpl.path(), "hardening/sshd.conf", &|t| {
        t + "# Nobody may log in as root any more.\nDenyUsers root\n"
    });
    let tpl = tpl.path().to_string_lossy().to_string();
    let done = reuse(&["apply", "--templates", &tpl]).output().status(1);
    let err = done.stderr();
    assert!(
        err.contains("sshd's new settings let no new SSH connection through")
            && err.contains("the previous files were restored"),
        "{err}"
    );
    // A new login gets through again, with the earlier settings live.
    assert!(!ssh(ADDR, "cat /etc/ssh/sshd_config.d/provision.conf").contains("DenyUsers"));
    let plan = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        plan.stdout()
            .contains("sshd's new settings let no new SSH connection through"),
        "{}",
        plan.stdout()
    );
    reuse(&["apply"]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    lab(&["down", &inv]);
}

/// Waits for `done` to say `text` on stderr, then kills it: a controller stopped mid-apply.
fn kill_after(running: Running, text: &str) -> String {
    let mut child = running.child;
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(text) {
            child.kill().unwrap();
            child.wait().unwrap();
            return seen;
        }
    }
    panic!("the apply ended without saying {text:?}:\n{seen}");
}

/// The guard counts from the end of the apply: a step slower than the guard's 60 s after the
/// ruleset (here a bootstrap that sleeps 75 s) does not let it put the old ruleset back while the
/// apply reports the new one confirmed. On c1cb461 the guard, armed with the ruleset, removed
/// the new table at 60 s and the apply still said "confirmed". Then a ruleset that cuts SSH, its
/// controller killed as soon as it went live: nobody confirms, and the host rolls the generation
/// back by itself, file included, and says so in `plan`. On c1cb461 only the table came back:
/// `/etc/nftables.conf` kept the cutting ruleset for the next boot.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn the_guard_outlasts_slow_steps_and_undoes_what_nobody_confirmed() {
    const ADDR: &str = "198.18.0.117";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-guard-fw", ADDR, "plain", true);
    let inv = inv.to_string_lossy().to_string();
    let slow = tempfile::tempdir().unwrap();
    template_override(slow.path(), "mariadb/bootstrap.sql", &|t| {
        t + "-- Slower than the firewall's guard.\nDO SLEEP(75);\n"
    });
    let started = std::time::Instant::now();
    let done = Run::new(&["apply", "-i", &inv, "--templates"])
        .arg(slow.path())
        .output()
        .status(0);
    eprintln!("the slow apply took {:.1?}", started.elapsed());
    assert!(
        done.stderr().contains("a new SSH connection got through"),
        "{}",
        done.stderr()
    );
    // Well past the old guard's 60 s: the ruleset is still the new one.
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(ssh(ADDR, "nft list table inet provision").contains("policy drop"));
    Run::new(&["apply", "-i", &inv]).output().status(0);

    let cut = tempfile::tempdir().unwrap();
    let rule = "        tcp dport {{ fw.ssh_port }} ip saddr @admin4 accept\n";
    template_override(cut.path(), "nftables/nftables.conf", &|t| {
        t.replace(rule, "        # SSH forgotten\n")
    });
    let running = Run::new(&["apply", "-i", &inv, "--templates"])
        .arg(cut.path())
        .spawn();
    let said = kill_after(running, "run firewall");
    let killed = std::time::Instant::now();
    // New connections are cut until the guard has rolled the generation back (60 s after the
    // apply on the host ended).
    let mut back = None;
    while killed.elapsed() < std::time::Duration::from_secs(180) {
        let ok = ssh_with(ADDR, &["-o", "ConnectTimeout=3"])
            .arg("true")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            back = Some(killed.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
    let back = back.unwrap_or_else(|| panic!("no SSH login got through again:\n{said}"));
    eprintln!("the host let SSH in again {back:.1?} after the controller was killed");
    assert!(
        back >= std::time::Duration::from_secs(40),
        "SSH got through after {back:?}: was the ruleset cutting at all?"
    );
    assert!(ssh(ADDR, "cat /etc/nftables.conf").contains("ip saddr @admin4 accept"));
    assert!(ssh(ADDR, "nft list table inet provision").contains("ip saddr @admin4 accept"));
    let plan = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        plan.stdout().contains("the guard rolled back"),
        "{}",
        plan.stdout()
    );
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    lab(&["down", &inv]);
}
