//! Accounts made by the library against a scratch /etc/passwd and /etc/group.

use super::*;

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
