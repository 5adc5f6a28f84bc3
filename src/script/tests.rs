use super::*;
use crate::desired::{Handler, PathState, Step, Validator};
use crate::plan::{ChangeKind, HostPlan, PlannedStep, Shape};
use std::path::Path;
use std::process::Command;

fn conf() -> ManagedPath {
    ManagedPath {
        path: "/etc/provision/sites/foobar.com/config.php".into(),
        state: PathState::File {
            content: b"'password' => 'hunter2'".to_vec(),
            mode: 0o640,
            owner: "root".into(),
            group: "www-data".into(),
            sensitive: true,
        },
        notify: vec![Handler::reload("php8.2-fpm")],
        validator: Some("php-lint".into()),
        from_previous: false,
        code: true,
        because: None,
    }
}

fn plan() -> (HostPlan, Desired) {
    let mut d = Desired::new("web-01");
    d.paths = vec![conf()];
    d.steps = vec![Step {
        name: "db".into(),
        component: "mariadb".into(),
        command: "mariadb < /x.sql".into(),
        irreversible: None,
    }];
    let plan = HostPlan {
        host: "web-01".into(),
        os: "debian 12".into(),
        systemd: false,
        generation: Some("G000001-x".into()),
        attention: None,
        update_package_lists: Some("never downloaded".into()),
        install: vec!["nginx".into(), "php8.2-fpm".into()],
        accounts: vec![],
        changes: vec![crate::plan::Change {
            path: conf().path,
            action: ChangeKind::Create,
            reason: "missing".into(),
            diff: None,
            before: Shape::Absent,
            after: Shape::Absent,
            release: None,
            desired: conf(),
        }],
        steps: vec![
            PlannedStep {
                handler: Handler::service(crate::desired::Action::Start, "php8.2-fpm"),
                reason: "not running".into(),
            },
            PlannedStep {
                handler: Handler::run("db"),
                reason: "the database does not exist".into(),
            },
        ],
        validators: vec![Validator {
            name: "php-lint".into(),
            command: "php -l {root}{file}".into(),
            stage: vec!["/etc/php/8.2/fpm".into()],
            per_file: true,
            release_files: None,
        }],
        checks: vec![],
        irreversible: vec![],
        leaving: vec![],
        notices: Vec::new(),
    };
    (plan, d)
}

fn runner() -> Runner<'static> {
    Runner {
        who: "tester@ctl pid 1",
        lock_wait: 0,
    }
}

fn sh_n(script: &str) {
    let out = Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_library_keeps_its_state_in_the_state_directory() {
    assert!(LIBRARY.contains(&format!("\nP={}\n", crate::host_state::DIR)));
}

#[test]
fn the_library_tells_a_systemd_host_as_the_probe_does() {
    assert!(LIBRARY.contains(&format!("if {}; then", crate::facts::SYSTEMD_TEST)));
}

#[test]
fn every_script_is_valid_sh() {
    let (p, d) = plan();
    sh_n(&apply_script(&p, &d, &runner()));
    sh_n(&rollback_script(
        "G2",
        &["G2".into(), "G1".into()],
        "why",
        &runner(),
    ));
    sh_n(&mark_script("G2", "checked", Some("it's fine"), &runner()));
    sh_n(&wait_script(&runner()));
    sh_n(&runner_command_for_test());
}

fn runner_command_for_test() -> String {
    super::runner()
}

#[test]
fn file_contents_travel_as_base64_and_are_left_out_of_the_display() {
    let (p, d) = plan();
    let script = apply_script(&p, &d, &runner());
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"'password' => 'hunter2'");
    assert!(!script.contains("hunter2"));
    assert!(script.contains(&b64));
    let shown = for_display(&script);
    assert!(!shown.contains(&b64));
    assert!(shown.contains("[file content left out]"));
    assert!(
        !shown.contains("clean_leftovers()"),
        "the library is not shown"
    );
}

#[test]
fn the_script_locks_checks_installs_validates_swaps_then_runs_handlers() {
    let (p, d) = plan();
    let s = apply_script(&p, &d, &runner());
    let at = |needle: &str| {
        s.rfind(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
    };
    assert!(at("take_lock 0") < at("expect_current G000001-x"));
    assert!(at("expect_current") < at("expect_absent"));
    assert!(at("expect_absent") < at("install_packages update nginx php8.2-fpm"));
    assert!(at("install_packages") < at("stage_copy /etc/php/8.2/fpm"));
    assert!(at("validate php-lint") < at("changing apply"));
    assert!(at("\"$P/pending\"") < at("swap_file 0"));
    assert!(
        at("swap_file 0 /etc/provision/sites/foobar.com/config.php 0640 root www-data")
            < at("handler 'start php8.2-fpm'")
    );
    assert!(
        at("handler 'start php8.2-fpm' start php8.2-fpm")
            < at("handler 'run db' run db 'mariadb < /x.sql'")
    );
    assert!(at("handler 'run db'") < at("finish 10"));
}

/// Runs the library's functions for real on a scratch tree: state dir and "live" files under a
/// temporary directory, the functions' absolute paths pointed there.
fn run_library(dir: &Path, program: &str) -> (bool, String) {
    let f = library_program(dir, program);
    outcome(
        &Command::new("sh")
            .arg(&f)
            .arg(dir.join("run-1"))
            .output()
            .unwrap(),
    )
}

/// The library and `program`, as a script file in `dir` that keeps its state under `dir/state`.
fn library_program(dir: &Path, program: &str) -> std::path::PathBuf {
    let lib = script(&runner(), "").replace(
        "P=/var/lib/provision",
        &format!("P={}/state", dir.display()),
    );
    let f = dir.join("run.sh");
    std::fs::write(&f, format!("{lib}{program}")).unwrap();
    f
}

/// Whether a run succeeded, and all it printed.
fn outcome(out: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn me() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

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

#[test]
fn a_new_release_travels_after_the_script_and_is_read_back_by_offset() {
    use crate::tree::Tree;
    let files = vec![
        Tree::file("index.php", 0o644, b"<?php echo 'v2';\n".to_vec()),
        Tree::file("lib/a.php", 0o644, b"<?php\n".to_vec()),
    ];
    let old = Tree::new("/var/www/x", vec![files[1].clone()], None, 5);
    let tree = Tree::new("/var/www/x", files, Some("php migrate.php".into()), 5);
    let delta = tree.delta(Some((&old.id, old.manifest())));
    let marker = ManagedPath {
        path: tree.marker(),
        state: PathState::Tree(std::sync::Arc::new(tree.clone())),
        notify: vec![],
        validator: None,
        from_previous: false,
        code: false,
        because: None,
    };
    let (mut p, mut d) = plan();
    d.paths.push(marker.clone());
    p.changes.push(crate::plan::Change {
        path: marker.path.clone(),
        action: ChangeKind::Create,
        reason: "new".into(),
        diff: None,
        before: Shape::Absent,
        after: Shape::Release {
            id: tree.id.clone(),
            files: 2,
        },
        release: Some(crate::plan::ReleaseChange {
            from: delta.from.clone(),
            send: delta.send.len(),
            remove: 0,
            delta: delta.clone(),
        }),
        desired: marker,
    });
    let s = apply_script(&p, &d, &runner());
    sh_n(&s);
    let program = s.split_once(PROGRAM).unwrap().1;
    assert!(program.contains(&format!(
        "release_build /var/www/x {} {} \"$RUN.p0\" \"$RUN.p1\" \"$RUN.p2\" \"$RUN.p3\"",
        tree.id, old.id
    )));
    assert!(program.contains(&format!(
        "release_commit /var/www/x {} \"$RUN.p0\" 'php migrate.php'",
        tree.id
    )));
    // Each block, cut out by its offset and length as the host's `payload` does, decodes to what
    // was sent: the manifest, the archive (the changed file only), no removals, the sums.
    let blocks: Vec<Vec<u8>> = program
        .lines()
        .filter_map(|l| l.strip_prefix("payload "))
        .map(|l| {
            let f: Vec<usize> = l.split(' ').map(|n| n.parse().unwrap()).collect();
            let b64 = &s.as_bytes()[f[1] - 1..f[1] - 1 + f[2]];
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        })
        .collect();
    assert_eq!(blocks.len(), 4);
    assert_eq!(blocks[0], tree.manifest().as_bytes());
    assert_eq!(blocks[1], tree.archive(&delta.send).unwrap());
    assert!(blocks[2].is_empty());
    assert_eq!(
        String::from_utf8(blocks[3].clone()).unwrap(),
        format!(
            "{}  index.php\n",
            crate::render::manifest::sha256_hex(b"<?php echo 'v2';\n")
        )
    );
    // The data follows the program's end: the shell never reads it, and -v leaves it out.
    assert!(program.contains("exit 0\n# --- payload\n"));
    assert!(for_display(&s).ends_with("[release data left out]\n"));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The generation a run opened (its `@gen` line).
fn generation_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("@gen "))
        .unwrap_or_else(|| panic!("no generation in\n{out}"))
        .to_string()
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
        super::runner().replace(host_state::RUNS, &dir.join("state/run").to_string_lossy());
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

/// One deploy of release `id` to the application at `base` (its manifest recorded at time `k`,
/// so the order of releases does not hang on the clock), keeping `keep` releases: the generation
/// it opened.
fn deploy(d: &Path, base: &Path, id: &str, k: u32, keep: u32) -> String {
    std::fs::create_dir_all(base.join("releases").join(id)).unwrap();
    std::fs::create_dir_all(base.join(".provision")).unwrap();
    let manifest = base.join(format!(".provision/{id}.manifest"));
    std::fs::write(&manifest, id).unwrap();
    assert!(Command::new("touch")
        .arg("-d")
        .arg(format!("@{}", 1_700_000_000 + k))
        .arg(&manifest)
        .status()
        .unwrap()
        .success());
    let b = base.display();
    let (ok, out) = run_library(
        d,
        &format!(
            "changing apply deploy\nswap_link {b}/current releases/{id}\nrelease_prune {b} {keep}\nfinish 10\n"
        ),
    );
    assert!(ok, "{out}");
    generation_of(&out)
}

fn live_release(base: &Path) -> String {
    std::fs::read_link(base.join("current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn restorable(d: &Path, gen: &str) -> bool {
    d.join("state/generations").join(gen).join("files").is_dir()
}

/// Pruning a release ends the reach of the generations whose undo would put it back (their
/// backups go), and never prunes the release the newest generation would put back, even one
/// recorded long ago (live again after a rollback).
#[test]
fn pruning_a_release_ends_the_reach_of_the_generations_that_would_put_it_back() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = d.join("www");
    let g: Vec<String> = (1..=4)
        .map(|k| deploy(d, &base, &format!("R{k}"), k, 2))
        .collect();
    let mut kept: Vec<String> = std::fs::read_dir(base.join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, ["R3", "R4"]);
    // G2 would put R1 back, G3 R2: both gone, so are their backups. G4 puts R3 back.
    assert!(restorable(d, &g[0]) && restorable(d, &g[3]));
    assert!(!restorable(d, &g[1]) && !restorable(d, &g[2]));
    let (ok, out) = run_library(
        d,
        &format!("expect_current {0}\nrollback back {0}\nfinish 10\n", g[3]),
    );
    assert!(ok, "{out}");
    let undone = generation_of(&out);
    assert_eq!(live_release(&base), "releases/R3");
    // R5 goes live; of the two newest (R5, R4) R3 is not one, but this deploy would put it back.
    let g5 = deploy(d, &base, "R5", 5, 2);
    assert!(base.join("releases/R3").is_dir() && restorable(d, &g5));
    let (ok, out) = run_library(
        d,
        &format!("expect_current {g5}\nrollback back {g5}\nfinish 10\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(live_release(&base), "releases/R3");
    assert!(restorable(d, &undone));
}

/// A release deleted by hand: a rollback that would put it back live is refused before anything
/// changes, naming the oldest generation the host can still roll back to.
#[test]
fn a_rollback_to_a_release_that_is_gone_is_refused_naming_the_oldest_reachable_generation() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = d.join("www");
    let g: Vec<String> = (1..=3)
        .map(|k| deploy(d, &base, &format!("R{k}"), k, 5))
        .collect();
    std::fs::remove_dir_all(base.join("releases/R1")).unwrap();
    let current = || read(&d.join("state/current"));
    let before = current();
    let (ok, out) = run_library(
        d,
        &format!(
            "expect_current {0}\nrollback 'to {2}' {0} {1}\nfinish 10\n",
            g[2], g[1], g[0]
        ),
    );
    assert!(!ok && !out.contains("@gen"), "{out}");
    assert!(
        out.contains(&format!(
            "@stale cannot roll back past generation {}: it would put back release(s) no longer on the host: {}/releases/R1; the oldest generation this host can roll back to is {}; nothing was changed",
            g[1],
            base.display(),
            g[1]
        )),
        "{out}"
    );
    assert_eq!(current(), before);
    assert_eq!(live_release(&base), "releases/R3");
    // The newest one itself: nothing to roll back to.
    std::fs::remove_dir_all(base.join("releases/R2")).unwrap();
    let (ok, out) = run_library(
        d,
        &format!("expect_current {0}\nrollback back {0}\nfinish 10\n", g[2]),
    );
    assert!(
        !ok && out.contains(&format!("@stale cannot undo generation {}", g[2])),
        "{out}"
    );
    assert_eq!(live_release(&base), "releases/R3");
}

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

#[test]
fn a_guarded_handler_arms_the_guard_before_it_runs() {
    let (mut p, mut d) = plan();
    let plain = apply_script(&p, &d, &runner());
    assert!(!plain.contains("guard_arm 60"));
    d.guarded.push(crate::desired::Guarded {
        handler: Handler::reload("ssh"),
        what: "sshd's new settings".into(),
    });
    p.steps.push(crate::plan::PlannedStep {
        handler: Handler::restart("ssh"),
        reason: "its drop-in changed".into(),
    });
    let script = apply_script(&p, &d, &runner());
    sh_n(&script);
    sh_n(&guard_program());
    let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("changing apply") < at("guard_arm 60 \"$RUN.p0\""));
    assert!(at("guard_arm") < at("handler 'start php8.2-fpm'"));
}

fn with_an_account() -> (HostPlan, Desired) {
    let (mut p, d) = plan();
    p.accounts = vec![crate::plan::AccountChange {
        name: "shop".into(),
        action: ChangeKind::Create,
        reason: "the host has no user shop".into(),
        home: "/var/www/shop".into(),
        comment: "site shop.example.com".into(),
    }];
    (p, d)
}

#[test]
fn accounts_are_made_after_the_packages_and_before_anything_is_staged() {
    let (p, d) = with_an_account();
    let s = apply_script(&p, &d, &runner());
    sh_n(&s);
    let at = |needle: &str| {
        s.rfind(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
    };
    assert!(at("install_packages") < at("ev_phase accounts"));
    assert!(
        at("ev_phase accounts")
            < at("account shop /var/www/shop '[provision] site shop.example.com'")
    );
    assert!(at("account shop") < at("ev_phase stage"));
    assert!(summary(&p).starts_with("2 package(s); 1 account(s); 1 path(s)"));
    // The library knows provision's accounts by the mark their GECOS starts with.
    assert!(LIBRARY.contains(&format!("\"{}\"*) return 0", crate::desired::Account::MARK)));
}

/// Runs the library's `program` for real, as root, with a copy of this machine's /etc (plus
/// `passwd` and `group` lines) and a scratch /var/log in place of its own, for the program alone
/// (a mount namespace of its own): useradd runs as on a host, and this machine keeps its accounts.
fn run_with_scratch_etc(dir: &Path, passwd: &str, group: &str, program: &str) -> (bool, String) {
    let etc = dir.join("etc");
    let log = dir.join("log");
    assert!(Command::new("cp")
        .arg("-a")
        .arg("/etc")
        .arg(&etc)
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(&log).unwrap();
    for (file, lines) in [("passwd", passwd), ("group", group)] {
        let mut text = std::fs::read_to_string(etc.join(file)).unwrap();
        text.push_str(lines);
        std::fs::write(etc.join(file), text).unwrap();
    }
    let f = library_program(dir, program);
    let cmd = format!(
        "sh {} {}",
        q(&f.to_string_lossy()),
        q(&dir.join("run-1").to_string_lossy())
    );
    outcome(
        &crate::render::local_check::with_binds(&[(&etc, "/etc"), (&log, "/var/log")], &cmd)
            .output()
            .unwrap(),
    )
}

/// `account` makes a system user with a group of its own, no login and no home directory, once:
/// run again (an account provision made) it does nothing. This machine never gets it.
#[test]
fn an_account_is_made_once_as_a_system_user_with_its_own_group() {
    let t = tempfile::tempdir().unwrap();
    let (name, home) = ("provtest-acct", "/var/www/provtest-acct");
    let call = format!("account {name} {home} '[provision] site provtest.example.com'\n");
    let (ok, out) = run_with_scratch_etc(
        t.path(),
        "",
        "",
        &format!("{call}{call}getent passwd {name}; getent group {name}; id -u {name}\n[ ! -e {home} ] && echo no-home\nev_done\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(out.matches("@did create user").count(), 1, "{out}");
    assert!(
        out.contains(&format!("@did create user {name} (group {name})")),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name}:x:")))
        .unwrap_or_else(|| panic!("{out}"));
    let f: Vec<&str> = line.split(':').collect();
    assert_eq!(
        f[4..],
        [
            "[provision] site provtest.example.com",
            home,
            "/usr/sbin/nologin"
        ]
    );
    let uid: u32 = f[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {line}");
    assert!(
        out.contains(&format!("{name}:x:{}:", f[3])),
        "its own group: {out}"
    );
    assert!(out.contains("no-home"), "{out}");
    assert!(!std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .contains(name));
}

/// A user or a lone group of that name that provision did not make fails the run before the
/// stage: the program's next command never runs.
#[test]
fn an_account_provision_did_not_make_fails_the_run_before_the_stage() {
    for (name, why) in [
        ("shopper", "@fail user shopper exists already and provision did not make it; nothing was staged"),
        ("lonely", "@fail group lonely exists already without a user lonely, and provision did not make it; nothing was staged"),
    ] {
        let t = tempfile::tempdir().unwrap();
        let staged = t.path().join("staged");
        let (ok, out) = run_with_scratch_etc(
            t.path(),
            "shopper:x:1500:1500:Shop Keeper,,,:/home/shopper:/bin/bash\n",
            "shopper:x:1500:\nlonely:x:1501:\n",
            &format!(
                "account {name} /var/www/{name} '[provision] site x'\nstage_begin\ntouch {}\n",
                staged.display()
            ),
        );
        assert!(!ok && out.contains(why), "{out}");
        assert!(!staged.exists() && !t.path().join("state/stage").read_dir().unwrap().any(|_| true));
    }
}
