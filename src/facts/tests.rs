use super::*;
use crate::component::Beside;
use crate::desired::PathState;
use crate::render::manifest::sha256_hex;

fn req() -> ProbeRequest {
    ProbeRequest {
        packages: vec!["nginx".into(), "php8.2-fpm".into()],
        paths: vec![
            ("/etc/nginx/nginx.conf".into(), Some("abc".into())),
            ("/etc/nginx/sites-enabled/foobar.com.conf".into(), None),
            ("/etc/nginx/sites-enabled/default".into(), None),
            ("/var/www/foobar.com".into(), None),
        ],
        services: vec![(
            "nginx".into(),
            Some(("/run/nginx.pid".into(), "nginx".into())),
        )],
        components: vec![("mariadb".into(), "echo up".into())],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    }
}

const CANNED: &str = "Welcome banner\n@os debian 12 bookworm\n@init systemd\n@dpkg nginx ii 1.22.1-9+deb12u1\n@dpkg php8.2-fpm rc 8.2.1\n\
@aptm 1000.5\n@aptm 1080.0\n@now 1200\n@path /etc/nginx/nginx.conf f 644 root root 6 \n\
@path /etc/nginx/sites-enabled/foobar.com.conf l 777 root root 33 ../sites-available/foobar.com.conf\n\
@path /var/www/foobar.com d 755 root www-data 4096 \n@files H4sIAAAAAAAEA+3QTQqAIBCGYdedwhOUkXifiP4gFMqg42dIm5DatHDxzsKBGZWPp+p9V9lxtkc8y87ZQfxbKpTRWlw91LOHkblncV832igh1b8x0r/tm29XKcXqnE/fiNOv/dvbjHdTvyyuyDgg0RBAAAEEEEAAAQQQQAABBBBAAAEEEEAAAQQQQAABBBBAAAEEEEAAAQQQQAABBJICJ6422kQAKAAA\n\
@svc nginx active\n\
@@c mariadb\nup\ndb\tfoobar\n\n@@c-end\n@state pending reload nginx\n@state pending reload nginx\n\
@state key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n@state current G000003-20261123T000000Z\n@end\n";

#[test]
fn parses_every_fact_from_canned_output() {
    let f = parse(CANNED, &req()).unwrap();
    assert_eq!(
        (
            f.os_id.as_str(),
            f.os_version.as_str(),
            f.os_codename.as_str(),
            f.systemd
        ),
        ("debian", "12", "bookworm", true)
    );
    assert_eq!(f.packages["nginx"].as_deref(), Some("1.22.1-9+deb12u1"));
    assert_eq!(f.packages["php8.2-fpm"], None);
    assert!(f.no_candidate.contains("php8.2-fpm"));
    assert_eq!(f.apt_lists_age, Some(120));
    assert_eq!(
        f.paths["/etc/nginx/nginx.conf"],
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"hello\n".to_vec())
        }
    );
    assert_eq!(f.content("/etc/nginx/nginx.conf").unwrap(), b"hello\n");
    assert_eq!(
        f.paths["/etc/nginx/sites-enabled/foobar.com.conf"],
        PathFact::Link {
            target: "../sites-available/foobar.com.conf".into()
        }
    );
    assert_eq!(
        f.paths["/etc/nginx/sites-enabled/default"],
        PathFact::Absent
    );
    assert_eq!(
        f.paths["/var/www/foobar.com"],
        PathFact::Dir {
            mode: 0o755,
            owner: "root".into(),
            group: "www-data".into()
        }
    );
    assert!(f.services["nginx"]);
    assert_eq!(f.components["mariadb"], ["up", "db\tfoobar"]);
    assert_eq!(
        f.state.pending,
        vec![crate::desired::Handler::reload("nginx")]
    );
    assert_eq!(f.state.current.as_deref(), Some("G000003-20261123T000000Z"));
    assert!(f.state.key.is_some());
}

#[test]
fn a_missing_package_apt_has_a_candidate_for_does_not_ask_for_new_lists() {
    // What dpkg.sh prints: php8.2-fpm is not installed, and apt-cache knows a version of it.
    let out =
        "@dpkg nginx ii 1.22.1-9+deb12u1\n@dpkg php8.2-fpm rc 8.2.1\n@cand php8.2-fpm\n@end\n";
    let f = parse(out, &req()).unwrap();
    assert_eq!(f.packages["php8.2-fpm"], None);
    assert!(f.no_candidate.is_empty());
}

#[test]
fn a_cut_off_probe_is_an_error() {
    let cut = CANNED.replace("@end\n", "");
    assert!(parse(&cut, &req()).is_err());
}

#[test]
fn a_fresh_host_has_everything_absent() {
    let f = parse("@os debian 12 bookworm\n@init none\n@end\n", &req()).unwrap();
    assert!(!f.systemd);
    assert!(f.paths.values().all(|p| *p == PathFact::Absent));
    assert_eq!(f.apt_lists_age, None);
    assert!(f.components.is_empty());
    assert_eq!(f.state, HostState::default());
}

#[test]
fn the_probe_quotes_every_path_and_is_valid_sh() {
    let mut r = req();
    r.paths
        .push(("/var/www/it's $(here)".into(), Some("x".into())));
    let script = r.script();
    assert!(script.contains("'/var/www/it'\\''s $(here)'"), "{script}");
    let out = std::process::Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dpkg_cache_is_in_the_state_directory() {
    let script = req().script();
    for redirect in ["<", ">"] {
        let cache = format!("{redirect} {}/dpkg.cache", crate::host_state::DIR);
        assert!(script.contains(&cache), "{cache}");
    }
}

#[test]
fn secret_files_are_never_compared_by_a_hash_in_the_probe() {
    let mut d = crate::desired::Desired::new("h");
    d.paths.push(crate::desired::ManagedPath {
        path: "/etc/secret.php".into(),
        state: PathState::File {
            content: b"hunter2".to_vec(),
            mode: 0o640,
            owner: "root".into(),
            group: "root".into(),
            sensitive: true,
        },
        notify: vec![],
        validator: None,
        from_previous: false,
        code: false,
        because: None,
    });
    let r = ProbeRequest::for_desired(&d);
    assert_eq!(r.paths, [("/etc/secret.php".to_string(), None)]);
    assert!(!r.script().contains(&sha256_hex(b"hunter2")));
}

#[test]
fn a_component_snippet_comes_back_to_its_component_only() {
    // The real probe run by sh: the component's lines are tagged with its name.
    let r = ProbeRequest {
        packages: vec![],
        paths: vec![],
        services: vec![],
        components: vec![
            ("example".into(), "echo one; echo 'two words'; x=1".into()),
            ("silent".into(), "false".into()),
            ("other".into(), "echo \"three $x\"; printf '@end'".into()),
        ],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    };
    let f = parse(&run_probe(&r), &r).unwrap();
    assert_eq!(f.components["example"], ["one", "two words"]);
    // Lines that look like the probe's own are the component's, up to its end marker.
    assert_eq!(f.components["other"], ["three 1", "@end"]);
    assert!(!f.components.contains_key("silent"), "{:?}", f.components);
}

/// What `script` prints, run by sh here.
fn sh(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real probe of `r` run by sh here, its state directory in a temporary one: its output.
fn run_probe(r: &ProbeRequest) -> String {
    let state = tempfile::tempdir().unwrap();
    let script = r
        .script()
        .replace("/var/lib/provision", &state.path().to_string_lossy());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn desired_with(paths: &[(&str, &str)], packages: &[&str]) -> crate::desired::Desired {
    let mut d = crate::desired::Desired::new("h");
    d.packages = packages.iter().map(|p| p.to_string()).collect();
    for (p, content) in paths {
        d.paths.push(crate::desired::ManagedPath {
            path: p.to_string(),
            state: PathState::File {
                content: content.as_bytes().to_vec(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
            },
            notify: vec![],
            validator: None,
            from_previous: false,
            code: false,
            because: None,
        });
    }
    d
}

#[test]
fn one_probe_asks_every_candidate_release_and_shares_what_they_have_in_common() {
    use crate::release::{DEBIAN_12, DEBIAN_13};
    let d12 = desired_with(
        &[
            ("/etc/nginx/nginx.conf", "same"),
            ("/etc/php/8.2/fpm/pool.d/x.conf", "pool"),
        ],
        &["php8.2-fpm"],
    );
    let d13 = desired_with(
        &[
            ("/etc/nginx/nginx.conf", "same"),
            ("/etc/php/8.4/fpm/pool.d/x.conf", "pool"),
        ],
        &["php8.4-fpm"],
    );
    let probe = Probe::new(&[(DEBIAN_12, &d12), (DEBIAN_13, &d13)]);
    let script = probe.script();
    assert_eq!(
        script.matches("/etc/nginx/nginx.conf").count(),
        2,
        "once in the paths, once in the hash lines, before the branches:\n{script}"
    );
    assert!(
        script.contains("debian-12)") && script.contains("debian-13)"),
        "{script}"
    );
    let r13 = probe.request_for(DEBIAN_13).unwrap();
    assert_eq!(r13.packages, ["php8.4-fpm"]);
    let paths: Vec<&str> = r13.paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["/etc/nginx/nginx.conf", "/etc/php/8.4/fpm/pool.d/x.conf"]
    );
    assert!(probe.request_for(crate::release::SUPPORTED[3]).is_none());
    let out = std::process::Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_path_several_sites_declare_is_asked_once() {
    let mut d = desired_with(&[("/etc/a.conf", "a"), ("/etc/b.conf", "b")], &[]);
    let shared = d.paths[0].clone();
    d.paths.push(shared);
    let r = ProbeRequest::for_desired(&d);
    let paths: Vec<&str> = r.paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/etc/a.conf", "/etc/b.conf"]);
    assert_eq!(
        r.script().matches("/etc/a.conf").count(),
        2,
        "{}",
        r.script()
    );
}

#[test]
fn the_release_line_is_read_first() {
    assert_eq!(
        os_of("banner\n@os debian 11 bullseye\n@init none\n"),
        Some(("debian".into(), "11".into(), "bullseye".into()))
    );
    assert_eq!(os_of("@init none\n"), None);
}

/// The probe run for real by sh on this machine, on files and a process of the test's own: hashes
/// compared in one sha256sum, content only of what differs, a service's pid file read without
/// running its init script.
#[test]
fn the_probe_reads_files_and_pid_files_for_real() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let same = d.join("same.conf");
    let differs = d.join("differs.conf");
    std::fs::write(&same, "as desired\n").unwrap();
    std::fs::write(&differs, "changed by hand\n").unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    std::fs::write(d.join("up.pid"), format!("{}\n", sleeper.id())).unwrap();
    std::fs::write(d.join("gone.pid"), "999999999\n").unwrap();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let r = ProbeRequest {
        // Not installed here: the plan would install it, so the probe tells the lists' age.
        packages: vec!["provision-no-such-package".into()],
        paths: vec![
            (path(&same), Some(sha256_hex(b"as desired\n"))),
            (path(&differs), Some(sha256_hex(b"as desired\n"))),
            (path(&d.join("missing.conf")), Some(sha256_hex(b"x"))),
        ],
        services: vec![
            ("up".into(), Some((path(&d.join("up.pid")), "sleep".into()))),
            (
                "gone".into(),
                Some((path(&d.join("gone.pid")), "sleep".into())),
            ),
            (
                "wrong".into(),
                Some((path(&d.join("up.pid")), "nginx".into())),
            ),
        ],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    };
    let script = r
        .script()
        .replace("/var/lib/provision", &path(&d.join("state")))
        // This machine may run systemd; the pid-file path is the one under test.
        .replace("[ -d /run/systemd/system ]", "false");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let f = parse(&String::from_utf8_lossy(&out.stdout), &r).unwrap();
    assert!(matches!(
        &f.paths[&path(&same)],
        PathFact::File { content: None, .. }
    ));
    assert_eq!(f.content(&path(&differs)).unwrap(), b"changed by hand\n");
    assert_eq!(f.paths[&path(&d.join("missing.conf"))], PathFact::Absent);
    // Owner and group by name, as this machine names them.
    let named = std::process::Command::new("stat")
        .args(["-c", "%U %G", &path(&same)])
        .output()
        .unwrap();
    let named = String::from_utf8_lossy(&named.stdout);
    assert!(
        matches!(&f.paths[&path(&same)], PathFact::File { owner, group, .. } if format!("{owner} {group}") == named.trim()),
        "{:?} vs {named}",
        f.paths[&path(&same)]
    );
    assert_eq!(
        (f.services["up"], f.services["gone"], f.services["wrong"]),
        (true, false, false)
    );
    // The package lists' age, from the same find and the clock read from /proc, agrees with
    // this machine's own view of its newest list.
    let newest = std::fs::read_dir("/var/lib/apt/lists")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .expect("this machine has package lists (tests/install-deps updates them)");
    let age = newest.elapsed().unwrap_or_default().as_secs();
    let probed = f.apt_lists_age.expect("the probe tells the lists' age");
    assert!(probed.abs_diff(age) <= 2, "probe {probed} s, here {age} s");

    // Every package installed (coreutils is essential): nothing to install, so no clock is read.
    let installed = ProbeRequest {
        packages: vec!["coreutils".into()],
        ..r
    };
    let out = sh(&installed
        .script()
        .replace("/var/lib/provision", &path(&d.join("state"))));
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
        packages: vec![],
        paths,
        services: vec![],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
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
        packages: vec![],
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
        services: vec![],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
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

/// A request for `accounts` alone.
fn accounts_req(accounts: &[&str]) -> ProbeRequest {
    ProbeRequest {
        packages: vec![],
        paths: vec![],
        services: vec![],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
    }
}

#[test]
fn accounts_are_read_from_their_passwd_and_group_lines() {
    let r = accounts_req(&["shop", "blog", "alice"]);
    let out = "@os debian 12 bookworm\n\
        @pw shop:x:998:997:[provision] site shop.example.com:/var/www/shop:/usr/sbin/nologin\n\
        @gr shop:x:997:\n@pw alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n@gr alice:x:1000:\n@end\n";
    let f = parse(out, &r).unwrap();
    let shop = &f.users["shop"];
    assert_eq!(
        (shop.uid, shop.gid, shop.home.as_str()),
        (998, 997, "/var/www/shop")
    );
    assert!(shop.is_provisions());
    let alice = &f.users["alice"];
    assert!(!alice.is_provisions());
    assert_eq!(alice.shell, "/bin/bash");
    assert_eq!(f.groups["shop"], 997);
    assert!(!f.users.contains_key("blog") && !f.groups.contains_key("blog"));
    for bad in [
        "@pw shop:x:998\n",
        "@pw shop:x:abc:1:c:/h:/s\n",
        "@gr shop:x\n",
    ] {
        let e = parse(&format!("{bad}@end\n"), &r).unwrap_err();
        assert!(e.0.contains("bad /etc/"), "{e}");
    }
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
