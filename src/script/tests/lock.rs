//! The host lock, a script cut short in transit, and dpkg and its daemons, run for real here.

use super::*;

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("state")).unwrap();
    let lock = d.join("state/lock");
    std::fs::write(d.join("state/lock.info"), "4242 someone@else pid 7\n").unwrap();
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (ok, out) = run_library(d, "ev_done\n");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(!ok && out.contains("@busy someone@else pid 7"), "{out}");
}

/// What an apply whose plan was made under another run's lock runs before planning again: it
/// waits for that run to end (the lock to be free), then lets the lock go at once.
#[test]
fn the_wait_script_waits_for_the_lock_and_lets_it_go() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::create_dir_all(d.join("state")).unwrap();
    let lock = d.join("state/lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "1"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let waiting = Runner {
        who: "tester@ctl pid 1",
        lock_wait: 30,
    };
    let s =
        wait_script(&waiting).replace("P=/var/lib/provision", &format!("P={}/state", d.display()));
    let started = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&s)
        .arg("wait")
        .arg(d.join("run-1"))
        .output()
        .unwrap();
    let _ = holder.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("@done"), "{text}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(500));
    // Free again: another run takes it at once.
    let free = Command::new("flock")
        .arg("-n")
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success());
}

/// A dpkg killed half-way leaves numbered files in its journal (`updates/`); apt then refuses to
/// install anything until `dpkg --configure -a` has run, so the run runs it first. A journal with
/// only dpkg's temporary file is not an interrupted dpkg.
#[test]
fn an_interrupted_dpkg_is_configured_before_apt_runs() {
    for (files, interrupted) in [(&["0000", "tmp.i"][..], true), (&["tmp.i"][..], false)] {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        let updates = d.join("updates");
        std::fs::create_dir_all(&updates).unwrap();
        for f in files {
            std::fs::write(updates.join(f), "").unwrap();
        }
        let ran = d.join("ran");
        let lib = script(&runner(), "")
            .replace("P=/var/lib/provision", &format!("P={}/state", d.display()))
            .replace("/var/lib/dpkg/updates", &updates.to_string_lossy())
            .replace(
                "dpkg --force-confdef --force-confold --configure -a",
                &format!("touch {}", ran.display()),
            );
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{lib}recover_dpkg\nev_done\n"))
            .arg("test")
            .arg(d.join("run-1"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("@done"), "{text}");
        assert_eq!(ran.exists(), interrupted, "{files:?}: {text}");
        assert_eq!(
            text.contains("@note dpkg was interrupted"),
            interrupted,
            "{text}"
        );
    }
}

/// A script for a scratch state directory (`dir/state`), sealed again after the change.
fn scratch(script: &str, dir: &Path) -> String {
    let body = &script[..script.rfind(SEAL).expect("a sealed script")];
    seal(body.replace(
        "P=/var/lib/provision",
        &format!("P={}/state", dir.display()),
    ))
}

/// Sends `script` to the real runner (its runs kept under `dir`), as the controller does.
fn through_runner(dir: &Path, script: &[u8]) -> (bool, String) {
    use std::io::Write as _;
    let runner =
        crate::script::runner().replace(host_state::RUNS, &dir.join("state/run").to_string_lossy());
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(runner)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script).unwrap();
    outcome(&child.wait_with_output().unwrap())
}

/// A connection cut while the script is sent leaves its first part on the host: it is not run
/// (its first command would have), and its file is gone. The whole script runs.
#[test]
fn a_script_cut_short_in_transit_is_not_run() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (a, b) = (d.join("a"), d.join("b"));
    let whole = scratch(
        &commands_script(
            &[
                (format!("touch {}", a.display()), "first".into()),
                (format!("touch {}", b.display()), "second".into()),
            ],
            &runner(),
        ),
        d,
    );
    let cut = &whole[..whole.find(&format!("touch {}", b.display())).unwrap()];
    let (ok, out) = through_runner(d, cut.as_bytes());
    assert!(!a.exists(), "the cut script ran:\n{out}");
    assert!(
        !ok && out.contains("@fail the script arrived incomplete"),
        "{out}"
    );
    let left: Vec<_> = std::fs::read_dir(d.join("state/run"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left.iter().any(|f| f.to_string_lossy().ends_with(".sh")),
        "{left:?}"
    );
    // Cut inside its seal, or with its last byte missing: refused as well.
    for n in [whole.len() - 5, whole.len() - 1] {
        let (ok, out) = through_runner(d, &whole.as_bytes()[..n]);
        assert!(!ok && out.contains("arrived incomplete"), "{out}");
    }
    let (ok, out) = through_runner(d, whole.as_bytes());
    assert!(ok && out.contains("@done"), "{out}");
    assert!(a.exists() && b.exists());
}

/// apt and dpkg run without the lock's descriptor: a daemon a maintainer script starts (here, the
/// stand-ins for apt-get and dpkg start one each) must not hold the host lock after the run.
#[test]
fn daemons_started_by_apt_or_dpkg_do_not_hold_the_host_lock() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let pids = d.join("daemons");
    for tool in ["apt-get", "dpkg"] {
        let f = bin.join(tool);
        std::fs::write(
            &f,
            format!(
                "#!/bin/sh\nsleep 60 < /dev/null > /dev/null 2>&1 &\necho $! >> {}\n",
                pids.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    // An interrupted dpkg, so the run recovers it with dpkg first.
    let updates = d.join("updates");
    std::fs::create_dir_all(&updates).unwrap();
    std::fs::write(updates.join("0000"), "").unwrap();
    let lib = script(&runner(), "")
        .replace("P=/var/lib/provision", &format!("P={}/state", d.display()))
        .replace(
            "PATH=/usr/sbin:",
            &format!("PATH={}:/usr/sbin:", bin.display()),
        )
        .replace("/var/lib/dpkg/updates", &updates.to_string_lossy())
        .replace(
            "/usr/sbin/policy-rc.d",
            &d.join("policy-rc.d").to_string_lossy(),
        );
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{lib}install_packages update nginx\nev_done\n"))
        .arg("test")
        .arg(d.join("run-1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let free = Command::new("flock")
        .arg("-n")
        .arg(d.join("state/lock"))
        .arg("true")
        .status()
        .unwrap();
    let started = std::fs::read_to_string(&pids).unwrap_or_default();
    for pid in started.split_whitespace() {
        let _ = Command::new("kill").arg(pid).status();
    }
    assert!(out.status.success() && text.contains("@done"), "{text}");
    assert_eq!(started.split_whitespace().count(), 3, "{text}");
    assert!(
        free.success(),
        "a daemon apt or dpkg started holds the host lock"
    );
}
