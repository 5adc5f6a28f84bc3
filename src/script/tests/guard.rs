//! The guard a guarded generation leaves behind: rolling back by itself, or confirmed by its token.

use super::*;

/// A program that swaps `live/etc/a.conf` to "new a" and arms a guard of `secs` seconds, as an
/// apply of a guarded handler does; the guard program and the state under `dir`.
fn guarded_apply(dir: &Path, secs: u32) -> String {
    let live = dir.join("live");
    std::fs::create_dir_all(live.join("etc")).unwrap();
    std::fs::write(live.join("etc/a.conf"), "old a\n").unwrap();
    let guard = dir.join("guard-program.sh");
    std::fs::write(
        &guard,
        guard_program().replace(
            "P=/var/lib/provision",
            &format!("P={}/state", dir.display()),
        ),
    )
    .unwrap();
    let (l, u) = (live.display(), me());
    format!(
        "stage_begin\nstage_file 0 {l}/etc/a.conf <<'PROVISION_DATA'\nbmV3IGEK\nPROVISION_DATA\n\
         changing apply test\nswap_file 0 {l}/etc/a.conf 0600 {u} {u}\nguard_arm {secs} {}\nfinish 10\n",
        guard.display()
    )
}

/// Waits (up to 20 s) for `f` to hold `text`.
fn wait_for(f: &Path, text: &str) -> bool {
    for _ in 0..200 {
        if std::fs::read_to_string(f).is_ok_and(|s| s.contains(text)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn an_unconfirmed_guard_rolls_its_generation_back_after_the_run_ends() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (ok, out) = run_library(d, &guarded_apply(d, 1));
    assert!(ok, "{out}");
    let token = out.lines().find_map(|l| l.strip_prefix("@guard ")).unwrap();
    let gen = out.lines().find_map(|l| l.strip_prefix("@gen ")).unwrap();
    assert!(token.starts_with(&format!("{gen}.")), "{token}");
    let state = d.join("state");
    assert!(
        wait_for(&state.join("attention"), "the guard rolled back"),
        "{:?}",
        std::fs::read_to_string(state.join("attention"))
    );
    assert_eq!(
        std::fs::read_to_string(d.join("live/etc/a.conf")).unwrap(),
        "old a\n"
    );
    let status = std::fs::read_to_string(state.join("generations").join(gen).join("status"));
    assert_eq!(status.unwrap().trim(), "rolled-back");
    assert!(!state.join("guard").exists());
    let attention = std::fs::read_to_string(state.join("attention")).unwrap();
    assert!(
        attention.contains(&format!("rolled back {gen}")),
        "{attention}"
    );
}

#[test]
fn a_guard_confirmed_by_its_token_leaves_the_generation_alone() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (ok, out) = run_library(d, &guarded_apply(d, 1));
    assert!(ok, "{out}");
    let token = out.lines().find_map(|l| l.strip_prefix("@guard ")).unwrap();
    let state = format!("{}/state", d.display());
    let confirm = |token: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(crate::host_state::confirm_guard(token).replace("/var/lib/provision", &state))
            .output()
            .unwrap()
    };
    // Another run's token does not disarm it; its own does, once.
    let other = confirm("G000009-x.1.1");
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stdout).contains("no longer armed"));
    let ok = confirm(token);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "confirmed");
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(
        std::fs::read_to_string(d.join("live/etc/a.conf")).unwrap(),
        "new a\n"
    );
    let attention = std::fs::read_to_string(d.join("state/attention")).unwrap_or_default();
    assert!(!attention.contains("guard"), "{attention}");
}
