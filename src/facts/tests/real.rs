//! The probe run for real by sh on this machine, its answers parsed.

use super::*;

/// Files as desired, changed by hand and missing under `d`, and pid files of a process that runs
/// (`running`), of none, and of one by another name: the probe's request for them.
fn files_and_pid_files(d: &std::path::Path, running: u32) -> ProbeRequest {
    std::fs::write(d.join("same.conf"), "as desired\n").unwrap();
    std::fs::write(d.join("differs.conf"), "changed by hand\n").unwrap();
    std::fs::write(d.join("up.pid"), format!("{running}\n")).unwrap();
    std::fs::write(d.join("gone.pid"), "999999999\n").unwrap();
    let path = |p: &str| d.join(p).to_string_lossy().into_owned();
    ProbeRequest {
        // Not installed here: the plan would install it, so the probe tells the lists' age.
        packages: vec!["provision-no-such-package".into()],
        paths: vec![
            (path("same.conf"), Some(sha256_hex(b"as desired\n"))),
            (path("differs.conf"), Some(sha256_hex(b"as desired\n"))),
            (path("missing.conf"), Some(sha256_hex(b"x"))),
        ],
        services: vec![
            ("up".into(), Some((path("up.pid"), "sleep".into()))),
            ("gone".into(), Some((path("gone.pid"), "sleep".into()))),
            ("wrong".into(), Some((path("up.pid"), "nginx".into()))),
        ],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    }
}

/// How old this machine's newest package list is, in seconds.
fn package_lists_age_here() -> u64 {
    let newest = std::fs::read_dir("/var/lib/apt/lists")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .expect("this machine has package lists (tests/install-deps updates them)");
    newest.elapsed().unwrap_or_default().as_secs()
}

/// The probe run for real by sh on this machine, on files and a process of the test's own: hashes
/// compared in one sha256sum, content only of what differs, a service's pid file read without
/// running its init script.
#[test]
fn the_probe_reads_files_and_pid_files_for_real() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let path = |p: &str| d.join(p).to_string_lossy().into_owned();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let r = files_and_pid_files(d, sleeper.id());
    let out = sh(&r
        .script()
        .replace("/var/lib/provision", &path("state"))
        // This machine may run systemd; the pid-file path is the one under test.
        .replace("[ -d /run/systemd/system ]", "false"));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let f = parse(&out, &r).unwrap();
    assert!(matches!(
        &f.paths[&path("same.conf")],
        PathFact::File { content: None, .. }
    ));
    assert_eq!(
        f.content(&path("differs.conf")).unwrap(),
        b"changed by hand\n"
    );
    assert_eq!(f.paths[&path("missing.conf")], PathFact::Absent);
    // Owner and group by name, as this machine names them.
    let named = sh(&format!("stat -c '%U %G' {}", path("same.conf")));
    assert!(
        matches!(&f.paths[&path("same.conf")], PathFact::File { owner, group, .. } if format!("{owner} {group}") == named.trim()),
        "{:?} vs {named}",
        f.paths[&path("same.conf")]
    );
    assert_eq!(
        (f.services["up"], f.services["gone"], f.services["wrong"]),
        (true, false, false)
    );
    // The package lists' age, from the same find and the clock read from /proc, agrees with
    // this machine's own view of its newest list.
    let age = package_lists_age_here();
    let probed = f.apt_lists_age.expect("the probe tells the lists' age");
    assert!(probed.abs_diff(age) <= 2, "probe {probed} s, here {age} s");

    // Every package installed (coreutils is essential): nothing to install, so no clock is read.
    let installed = ProbeRequest {
        packages: vec!["coreutils".into()],
        ..r
    };
    let out = sh(&installed
        .script()
        .replace("/var/lib/provision", &path("state")));
    let f = parse(&out, &installed).unwrap();
    assert!(f.packages["coreutils"].is_some());
    assert_eq!(f.apt_lists_age, None);
}

/// On a systemd host the service states come from one systemctl run; reading them must not disturb
/// the list of paths looked at afterwards.
#[test]
fn systemd_service_states_and_the_paths_are_both_read() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let conf = d.join("a.conf");
    std::fs::write(&conf, "x\n").unwrap();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let r = ProbeRequest {
        packages: vec![],
        paths: vec![(path(&conf), Some(sha256_hex(b"other\n")))],
        services: vec![
            ("one".into(), None),
            ("two".into(), None),
            ("three".into(), None),
        ],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    };
    let script = r
        .script()
        .replace("/var/lib/provision", &path(&d.join("state")))
        .replace("[ -d /run/systemd/system ]", "true")
        .replace(
            "systemctl is-active",
            "printf 'active\\ninactive\\nactive\\n'; :",
        );
    let out = sh(&script);
    let f = parse(&out, &r).unwrap();
    assert_eq!(
        (f.services["one"], f.services["two"], f.services["three"]),
        (true, false, true)
    );
    assert_eq!(f.content(&path(&conf)).unwrap(), b"x\n", "{out}");
}

#[test]
fn always_fetched_files_come_back_exactly() {
    // The real probe run by sh over files it must always fetch ("-": sized or sensitive ones):
    // every byte comes back, whatever the bytes, in the one archive.
    let d = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8]); 8] = [
        ("empty", b""),
        ("newline", b"\n"),
        ("plain", b"a = 1\n  indented\tand tabbed \\ back\\slash\n"),
        ("no-final-newline", b"first\nlast"),
        ("blank-lines", b"\n\nx\n\n"),
        ("crlf", b"dos\r\nline\r\n"),
        ("nul", b"a\0b\n"),
        ("-dash", b"named like an option\n"),
    ];
    let path = |n: &str| d.path().join(n).to_string_lossy().into_owned();
    for (n, bytes) in cases {
        std::fs::write(path(n), bytes).unwrap();
    }
    // A name longer than a tar header holds, and a hard link of another fetched file.
    let long = d.path().join("l".repeat(120));
    std::fs::write(&long, "long\n").unwrap();
    std::fs::hard_link(path("plain"), path("hard")).unwrap();
    let mut paths: Vec<(String, Option<String>)> =
        cases.iter().map(|(n, _)| (path(n), None)).collect();
    paths.push((long.to_string_lossy().into_owned(), None));
    paths.push((path("hard"), None));
    let r = ProbeRequest {
        paths,
        ..Default::default()
    };
    let text = run_probe(&r);
    assert_eq!(text.matches("@files ").count(), 1, "{text}");
    let f = parse(&text, &r).unwrap();
    for (n, bytes) in cases {
        let got = f.content(&path(n)).unwrap();
        assert_eq!(got, bytes, "{n}");
    }
    assert_eq!(f.content(&long.to_string_lossy()).unwrap(), b"long\n");
    assert_eq!(f.content(&path("hard")).unwrap(), cases[2].1);
}

/// dpkg's answer is kept and read back while dpkg's status file and journal are unchanged and
/// the same packages are asked; any change, another list, or a cache cut short asks dpkg again.
/// Run for real by sh here, dpkg's status file and journal directory stood in for by the test's
/// own (dpkg-query still reads this machine's), and a probe whose dpkg-query is broken telling
/// whether the cache answered.
#[test]
fn dpkg_answers_are_kept_until_dpkg_changes() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    std::fs::create_dir(d.join("state")).unwrap();
    std::fs::create_dir(d.join("updates")).unwrap();
    std::fs::write(d.join("status"), "one\n").unwrap();
    let probe = |packages: &[&str], dpkg_works: bool| {
        let r = ProbeRequest {
            packages: packages.iter().map(|p| p.to_string()).collect(),
            paths: vec![],
            services: vec![],
            components: vec![],
            trees: vec![],
            besides: vec![],
            accounts: vec![],
        };
        let mut script = r
            .script()
            .replace("/var/lib/provision", &path(&d.join("state")))
            .replace("/var/lib/dpkg/status", &path(&d.join("status")))
            .replace("/var/lib/dpkg/updates", &path(&d.join("updates")));
        if !dpkg_works {
            script = script.replace("dpkg-query -W", "false -W");
        }
        let f = parse(&sh(&script), &r).unwrap();
        f.packages.get("coreutils").cloned().flatten()
    };
    let both = ["coreutils", "provision-no-such-package"];
    let cache = d.join("state/dpkg.cache");
    // A probe whose broken dpkg-query was asked keeps its empty answer: forgotten after each.
    let asked_again = |packages: &[&str]| {
        let got = probe(packages, false);
        std::fs::remove_file(&cache).unwrap();
        got.is_none()
    };
    let version = probe(&both, true).expect("coreutils is installed here");
    assert_eq!(probe(&both, false).as_ref(), Some(&version), "kept");
    assert!(asked_again(&["coreutils"]), "another list");
    probe(&both, true);
    // dpkg replaced its status file (a new inode), or wrote to its journal: asked again.
    std::fs::write(d.join("status.new"), "two\n").unwrap();
    std::fs::rename(d.join("status.new"), d.join("status")).unwrap();
    assert!(asked_again(&both), "a new status file");
    probe(&both, true);
    std::fs::write(d.join("updates/0000"), "journal\n").unwrap();
    assert!(asked_again(&both), "a journal entry");
    // A cache cut short: not used.
    assert_eq!(probe(&both, true).as_ref(), Some(&version));
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.ends_with("\n@end\n"), "{text}");
    std::fs::write(&cache, text.trim_end_matches("@end\n")).unwrap();
    assert_eq!(probe(&both, false), None, "cut short");
}

#[test]
fn paths_are_answered_in_step_whatever_lies_between_them() {
    // find and sha256sum answer only for what exists (and sha256sum only for files, through
    // links): the probe takes their lines in step with the paths asked, so a missing path, a
    // directory or a link between files must not shift a later file's answer onto another.
    let d = tempfile::tempdir().unwrap();
    let path = |n: &str| d.path().join(n).to_string_lossy().into_owned();
    std::fs::create_dir(path("dir")).unwrap();
    std::fs::write(path("same"), "as desired\n").unwrap();
    std::fs::write(path("differs"), "changed by hand\n").unwrap();
    std::fs::write(path("fetched"), "kept = 12\n").unwrap();
    std::fs::write(path("binary"), b"a\0b\n").unwrap();
    std::fs::write(path("last"), "as desired\n").unwrap();
    std::os::unix::fs::symlink(path("differs"), path("link")).unwrap();
    let want = Some(sha256_hex(b"as desired\n"));
    let r = ProbeRequest {
        paths: vec![
            (path("missing-first"), want.clone()),
            (path("dir"), None),
            (path("link"), want.clone()),
            (path("same"), want.clone()),
            (path("missing-between"), None),
            (path("differs"), want.clone()),
            (path("fetched"), None),
            (path("binary"), None),
            (path("missing-late"), want.clone()),
            (path("last"), want.clone()),
        ],
        ..Default::default()
    };
    let text = run_probe(&r);
    let f = parse(&text, &r).unwrap();
    for n in ["missing-first", "missing-between", "missing-late"] {
        assert_eq!(f.paths[&path(n)], PathFact::Absent, "{n}");
    }
    assert!(matches!(f.paths[&path("dir")], PathFact::Dir { .. }));
    assert!(
        matches!(&f.paths[&path("link")], PathFact::Link { target } if *target == path("differs"))
    );
    for n in ["same", "last"] {
        assert!(
            matches!(&f.paths[&path(n)], PathFact::File { content: None, .. }),
            "{n}: {text}"
        );
    }
    assert_eq!(f.content(&path("differs")).unwrap(), b"changed by hand\n");
    assert_eq!(f.content(&path("fetched")).unwrap(), b"kept = 12\n");
    assert_eq!(f.content(&path("binary")).unwrap(), b"a\0b\n");
}

#[test]
fn background_commands_come_back_to_their_components_beside_the_rest() {
    // The real probe run by sh: a command that prints and two that report their status run in
    // the background while find and sha256sum do; each component gets its own lines, and the
    // probe's own answers (a path, a snippet) are whole, whatever order the commands end in.
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("f.conf").to_string_lossy().into_owned();
    std::fs::write(&file, "changed\n").unwrap();
    let r = ProbeRequest {
        packages: vec![],
        paths: vec![(file.clone(), Some(sha256_hex(b"desired\n")))],
        services: vec![],
        components: vec![("inline".into(), "echo snippet".into())],
        trees: vec![],
        besides: vec![
            ("ok".into(), Beside::Status("sleep 0.2".into())),
            (
                "db".into(),
                Beside::Output("printf 'up\\nuser\\tfoobar\\n'".into()),
            ),
            (
                "gone".into(),
                Beside::Status("provision-no-such-command".into()),
            ),
            ("second".into(), Beside::Output("echo in turn".into())),
        ],
        accounts: vec![],
    };
    let text = run_probe(&r);
    let f = parse(&text, &r).unwrap();
    let lines = |c: &str| f.components.get(c).cloned().unwrap_or_default();
    assert_eq!(lines("ok"), ["exit 0"], "{text}");
    assert_eq!(lines("db"), ["up", "user\tfoobar"], "{text}");
    assert_eq!(lines("gone"), ["exit 127"], "{text}");
    assert_eq!(lines("second"), ["in turn"], "{text}");
    assert_eq!(lines("inline"), ["snippet"], "{text}");
    assert_eq!(f.content(&file).unwrap(), b"changed\n");

    // Candidate releases asking the same commands start them once, after the branches; asking
    // different ones, each branch runs its own in turn.
    use crate::release::{DEBIAN_12, DEBIAN_13};
    let (mut d12, mut d13) = (desired_with(&[], &[]), desired_with(&[], &[]));
    d12.besides = r.besides.clone();
    d13.besides = r.besides.clone();
    let same = Probe::new(&[(DEBIAN_12, &d12), (DEBIAN_13, &d13)]).script();
    assert_eq!(same.matches("bo=$!").count(), 1, "{same}");
    assert!(
        same.find("esac").unwrap() < same.find("bo=$!").unwrap(),
        "{same}"
    );
    d13.besides.truncate(1);
    let different = Probe::new(&[(DEBIAN_12, &d12), (DEBIAN_13, &d13)]).script();
    assert!(!different.contains("bo=$!"), "{different}");
    assert_eq!(different.matches("{ sleep 0.2").count(), 2, "{different}");
}

/// The real probe reads exactly the lines of the names asked: not a longer name that starts
/// alike, whatever the GECOS holds (backslashes, spaces), a last line without a newline included.
#[test]
fn the_probe_reads_the_accounts_lines_for_real() {
    let t = tempfile::tempdir().unwrap();
    let (passwd, group) = (t.path().join("passwd"), t.path().join("group"));
    std::fs::write(
        &passwd,
        "root:x:0:0:root:/root:/bin/bash\nshopper:x:1001:1001:Shopper:/home/shopper:/bin/bash\n\
         shop:x:998:998:[provision] a \\c b  c:/var/www/shop:/usr/sbin/nologin",
    )
    .unwrap();
    std::fs::write(&group, "root:x:0:\nshop:x:998:\nshopper:x:1001:").unwrap();
    let script = accounts_req(&["shop", "blog"])
        .script()
        .replace("/etc/passwd", &passwd.to_string_lossy())
        .replace("/etc/group", &group.to_string_lossy());
    let state = tempfile::tempdir().unwrap();
    let out = sh(&script.replace("/var/lib/provision", &state.path().to_string_lossy()));
    let f = parse(&out, &accounts_req(&["shop", "blog"])).unwrap();
    assert_eq!(f.users.keys().collect::<Vec<_>>(), ["shop"], "{out}");
    assert_eq!(f.users["shop"].gecos, "[provision] a \\c b  c");
    assert_eq!(f.groups.keys().collect::<Vec<_>>(), ["shop"], "{out}");
    // This machine's own files, as the probe reads them on a host.
    let f = parse(
        &run_probe(&accounts_req(&["root"])),
        &accounts_req(&["root"]),
    )
    .unwrap();
    assert_eq!((f.users["root"].uid, f.groups["root"]), (0, 0));
}

#[test]
fn a_host_without_accounts_to_have_reads_neither_file() {
    let script = req().script();
    assert!(!script.contains("/etc/passwd") && !script.contains("/etc/group"));
}
