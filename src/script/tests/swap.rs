//! Staging, swapping and rolling back, run by the library on a scratch tree of this machine.

use super::*;

#[test]
fn a_swap_keeps_a_backup_and_a_rollback_puts_everything_back() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    std::fs::create_dir_all(live.join("etc")).unwrap();
    std::fs::write(live.join("etc/a.conf"), "old a\n").unwrap();
    std::fs::write(live.join("etc/gone.conf"), "gone\n").unwrap();
    let (l, u) = (live.display(), me());
    let program = format!(
        "stage_begin\nstage_copy {l}/etc\nstage_file 0 {l}/etc/a.conf <<'PROVISION_DATA'\nbmV3IGEK\nPROVISION_DATA\n\
         stage_file 1 {l}/etc/new.conf <<'PROVISION_DATA'\nbmV3Cg==\nPROVISION_DATA\n\
         validate cat 'grep -q \"new a\" \"$R\"{l}/etc/a.conf'\n\
         changing apply test\nswap_file 0 {l}/etc/a.conf 0600 {u} {u}\nswap_file 1 {l}/etc/new.conf 0644 {u} {u}\n\
         swap_absent {l}/etc/gone.conf\nswap_link {l}/etc/link ../x\nfinish 10\n"
    );
    let (ok, out) = run_library(d, &program);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(live.join("etc/a.conf")).unwrap(),
        "new a\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.join("etc/new.conf")).unwrap(),
        "new\n"
    );
    assert!(!live.join("etc/gone.conf").exists());
    let gen = out
        .lines()
        .find_map(|l| l.strip_prefix("@gen "))
        .unwrap()
        .to_string();
    let state = d.join("state");
    assert_eq!(
        std::fs::read_to_string(state.join("current"))
            .unwrap()
            .trim(),
        gen
    );
    assert!(std::fs::read_to_string(state.join("attention"))
        .unwrap()
        .contains("not confirmed"));
    // The rollback: a generation of its own, the first one rolled back, the files as before.
    let (ok, out) = run_library(
        d,
        &format!("expect_current {gen}\nrollback 'undo it' {gen}\nfinish 10\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(live.join("etc/a.conf")).unwrap(),
        "old a\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.join("etc/gone.conf")).unwrap(),
        "gone\n"
    );
    assert!(!live.join("etc/new.conf").exists() && !live.join("etc/link").exists());
    let status =
        std::fs::read_to_string(state.join("generations").join(&gen).join("status")).unwrap();
    assert_eq!(status.trim(), "rolled-back");
    // A plan made before the rollback is stale now.
    let (ok, out) = run_library(d, &format!("expect_current {gen}\nfinish 10\n"));
    assert!(
        !ok && out.contains("@stale the host was changed since the plan was made"),
        "{out}"
    );
}

#[test]
fn a_stale_file_stops_the_run_before_anything_changes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("f"), "changed by hand\n").unwrap();
    let digest = format!(
        "sha256:{}",
        crate::render::manifest::sha256_hex(b"as planned\n")
    );
    let (ok, out) = run_library(
        d,
        &format!(
            "expect_file {}/f {digest} 644 root:root\nev_done\n",
            d.display()
        ),
    );
    assert!(
        !ok && out.contains("@stale") && !out.contains("@done"),
        "{out}"
    );
}

#[test]
fn staging_never_writes_through_a_link_into_the_live_tree() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    std::fs::create_dir_all(live.join("etc/app")).unwrap();
    std::fs::create_dir_all(live.join("elsewhere")).unwrap();
    std::fs::write(live.join("elsewhere/site.conf"), "live\n").unwrap();
    // A managed dir's subdirectory is a link to another live directory.
    std::os::unix::fs::symlink(live.join("elsewhere"), live.join("etc/app/sites")).unwrap();
    let l = live.display();
    let program = format!(
        "stage_begin\nstage_copy {l}/etc/app\nstage_file 0 {l}/etc/app/sites/site.conf <<'PROVISION_DATA'\nc3RhZ2VkCg==\nPROVISION_DATA\nev_done\n"
    );
    let (ok, out) = run_library(d, &program);
    assert!(!ok && out.contains("leads outside it"), "{out}");
    assert_eq!(
        std::fs::read_to_string(live.join("elsewhere/site.conf")).unwrap(),
        "live\n"
    );
}

/// A staged dir's absolute link into a staged dir is turned into the stage, so the validator reads
/// the staged file; an absolute link elsewhere and a relative link are left as they are.
#[test]
fn absolute_links_into_a_staged_dir_point_into_the_stage() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    for dir in ["etc/web/available", "etc/web/enabled", "usr/share/web"] {
        std::fs::create_dir_all(live.join(dir)).unwrap();
    }
    std::fs::write(live.join("etc/web/available/a.conf"), "a\n").unwrap();
    std::fs::write(live.join("usr/share/web/m.conf"), "m\n").unwrap();
    let link = |target: std::path::PathBuf, name: &str| {
        std::os::unix::fs::symlink(target, live.join("etc/web/enabled").join(name)).unwrap()
    };
    link(live.join("etc/web/available/a.conf"), "absolute.conf");
    link(live.join("usr/share/web/m.conf"), "elsewhere.conf");
    link("../available/a.conf".into(), "relative.conf");
    let l = live.display();
    let e = format!("{l}/etc/web/enabled");
    let program = format!(
        "stage_begin\nstage_copy {l}/etc/web\nstage_relink\n\
         for f in absolute elsewhere relative; do readlink \"$R{e}/$f.conf\"; done > {d}/links\nev_done\n",
        d = d.display()
    );
    let (ok, out) = run_library(d, &program);
    assert!(ok, "{out}");
    let stage = std::fs::read_to_string(d.join("links")).unwrap();
    let lines: Vec<&str> = stage.lines().collect();
    assert_eq!(lines.len(), 3, "{stage}");
    assert!(
        lines[0].ends_with(&format!("{l}/etc/web/available/a.conf"))
            && lines[0] != format!("{l}/etc/web/available/a.conf"),
        "{stage}"
    );
    assert_eq!(lines[1], format!("{l}/usr/share/web/m.conf"));
    assert_eq!(lines[2], "../available/a.conf");
}

#[test]
fn a_top_level_link_is_staged_as_a_real_directory() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    std::fs::create_dir_all(live.join("real")).unwrap();
    std::fs::write(live.join("real/x.conf"), "live\n").unwrap();
    std::os::unix::fs::symlink(live.join("real"), live.join("etc-link")).unwrap();
    let l = live.display();
    let program = format!(
        "stage_begin\nstage_copy {l}/etc-link\nstage_file 0 {l}/etc-link/x.conf <<'PROVISION_DATA'\nc3RhZ2VkCg==\nPROVISION_DATA\nev_done\n"
    );
    let (ok, out) = run_library(d, &program);
    assert!(ok, "{out}");
    assert_eq!(
        std::fs::read_to_string(live.join("real/x.conf")).unwrap(),
        "live\n"
    );
}

/// A backup that cannot be made once some files are live (here a path that became a FIFO; on a
/// host, a full disk under the generations): the run undoes what it already swapped, the
/// generation is rolled back, and the host is marked.
#[test]
fn a_backup_that_fails_mid_swap_puts_back_every_file_already_swapped() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    std::fs::create_dir_all(live.join("etc")).unwrap();
    std::fs::write(live.join("etc/a.conf"), "old a\n").unwrap();
    let fifo = live.join("etc/b.conf");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (l, u) = (live.display(), me());
    let program = format!(
        "stage_begin\nstage_file 0 {l}/etc/a.conf <<'PROVISION_DATA'\nbmV3IGEK\nPROVISION_DATA\n\
         stage_file 1 {l}/etc/new.conf <<'PROVISION_DATA'\nbmV3Cg==\nPROVISION_DATA\n\
         stage_file 2 {l}/etc/b.conf <<'PROVISION_DATA'\nbmV3Cg==\nPROVISION_DATA\n\
         changing apply test\nswap_file 0 {l}/etc/a.conf 0600 {u} {u}\nswap_file 1 {l}/etc/new.conf 0644 {u} {u}\n\
         swap_file 2 {l}/etc/b.conf 0644 {u} {u}\nfinish 10\n"
    );
    let (ok, out) = run_library(d, &program);
    assert!(!ok && !out.contains("@done"), "{out}");
    assert!(
        out.contains("@fail") && out.contains("the previous files were restored"),
        "{out}"
    );
    assert_eq!(read(&live.join("etc/a.conf")), "old a\n");
    assert!(!live.join("etc/new.conf").exists());
    let state = d.join("state");
    let gen = generation_of(&out);
    assert_eq!(
        read(&state.join("generations").join(&gen).join("status")).trim(),
        "rolled-back"
    );
    assert!(
        read(&state.join("attention")).contains(&format!("apply {gen} failed")),
        "{}",
        read(&state.join("attention"))
    );
}

/// A rollback that cannot be made whole (a backup it must keep fails half-way) puts back what it
/// had already changed: the host is as it was before the rollback.
#[test]
fn a_rollback_that_fails_half_way_puts_back_what_it_changed() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let live = d.join("live");
    std::fs::create_dir_all(live.join("etc")).unwrap();
    std::fs::write(live.join("etc/a.conf"), "old a\n").unwrap();
    let (l, u) = (live.display(), me());
    let (ok, out) = run_library(
        d,
        &format!(
            "stage_begin\nstage_file 0 {l}/etc/a.conf <<'PROVISION_DATA'\nbmV3IGEK\nPROVISION_DATA\n\
             stage_file 1 {l}/etc/b.conf <<'PROVISION_DATA'\nbmV3Cg==\nPROVISION_DATA\n\
             changing apply test\nswap_file 1 {l}/etc/b.conf 0644 {u} {u}\nswap_file 0 {l}/etc/a.conf 0600 {u} {u}\nfinish 10\n"
        ),
    );
    assert!(ok, "{out}");
    let gen = generation_of(&out);
    // By hand, b.conf became something no backup can hold.
    std::fs::remove_file(live.join("etc/b.conf")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(live.join("etc/b.conf"))
        .status()
        .unwrap()
        .success());
    let (ok, out) = run_library(
        d,
        &format!("expect_current {gen}\nrollback 'undo it' {gen}\nfinish 10\n"),
    );
    assert!(!ok && out.contains("special file"), "{out}");
    // a.conf (undone first) is new again; the applied generation is not marked rolled back.
    assert_eq!(read(&live.join("etc/a.conf")), "new a\n");
    let state = d.join("state");
    assert_eq!(
        read(&state.join("generations").join(&gen).join("status")).trim(),
        "applied"
    );
    let rollback = generation_of(&out);
    assert_eq!(
        read(&state.join("generations").join(&rollback).join("status")).trim(),
        "rolled-back"
    );
}

/// `mark` of a generation another run has since built on records its status only: the newer
/// generation's attention mark stays until its own checks pass.
#[test]
fn marking_an_older_generation_leaves_the_newer_ones_attention() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let f = d.join("f");
    let (_, first) = run_library(
        d,
        &format!(
            "changing apply one\nswap_absent {}\nfinish 10\n",
            f.display()
        ),
    );
    let older = generation_of(&first);
    let (_, second) = run_library(
        d,
        &format!(
            "changing apply two\nswap_absent {}\nfinish 10\n",
            f.display()
        ),
    );
    let newer = generation_of(&second);
    let (ok, out) = run_library(d, &format!("mark {older} checked\n"));
    assert!(ok && out.contains("@done"), "{out}");
    let state = d.join("state");
    assert_eq!(
        read(&state.join("generations").join(&older).join("status")).trim(),
        "checked"
    );
    assert!(
        read(&state.join("attention")).contains(&newer),
        "the newer generation's mark was cleared"
    );
    // Its own mark clears it.
    let (ok, out) = run_library(d, &format!("mark {newer} checked\n"));
    assert!(ok, "{out}");
    assert!(!state.join("attention").exists());
}

/// A uid and a gid no account of this machine names.
fn nameless_ids() -> (u32, u32) {
    let free = |db: &str, from: u32| {
        (from..from + 1000)
            .find(|id| {
                !Command::new("getent")
                    .args([db, &id.to_string()])
                    .status()
                    .unwrap()
                    .success()
            })
            .unwrap()
    };
    (free("passwd", 40000), free("group", 40000))
}

/// A path owned by a uid or gid with no name (a user removed since) is named by its number, as the
/// probe's find names it: the run that expects it as planned goes on, and a directory swapped and
/// rolled back gets its numeric owner back. (stat's %U said UNKNOWN: such a path looked changed
/// since the plan at every apply, forever.)
#[test]
fn a_path_whose_owner_has_no_name_is_expected_and_put_back_by_its_number() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let (uid, gid) = nameless_ids();
    let (f, dir) = (d.join("f"), d.join("dir"));
    std::fs::write(&f, "as planned\n").unwrap();
    std::fs::create_dir(&dir).unwrap();
    for p in [&f, &dir] {
        assert!(
            Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(p)
                .status()
                .unwrap()
                .success(),
            "chown needs root: these tests run as root (tests/run)"
        );
    }
    // What the probe reports, and so what the plan expects.
    let probed = |p: &Path| {
        let out = Command::new("find")
            .arg(p)
            .args(["-maxdepth", "0", "-printf", "%m %u:%g"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(probed(&f), format!("644 {uid}:{gid}"));
    let digest = format!(
        "sha256:{}",
        crate::render::manifest::sha256_hex(b"as planned\n")
    );
    let (ok, out) = run_library(
        d,
        &format!(
            "expect_file {} {digest} {}\nexpect_dir {} {}\nchanging apply test\nswap_dir {} 0750 root root\nfinish 10\n",
            f.display(),
            probed(&f),
            dir.display(),
            probed(&dir),
            dir.display()
        ),
    );
    assert!(ok && out.contains("@gen "), "{out}");
    assert_eq!(probed(&dir), "750 root:root");
    let gen = generation_of(&out);
    let (ok, out) = run_library(
        d,
        &format!("expect_current {gen}\nrollback 'undo it' {gen}\nfinish 10\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(probed(&dir), format!("755 {uid}:{gid}"));
}
