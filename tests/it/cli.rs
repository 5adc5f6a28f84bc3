//! The command line around the work: `init`, `completions`, `man`, and `--help` with an example
//! and the exit statuses for every command.

use crate::util::*;

#[test]
fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    let done = Run::new(&["init"]).arg(&path).output().status(0);
    assert!(done.stdout().contains("edit the values marked CHANGE"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("provision plan -i {}", path.display())));
    // The password comes from the environment it names; with it, the starter is valid as written.
    let done = Run::new(&["validate", "-i"]).arg(&path).output().status(4);
    assert!(
        done.stderr()
            .contains("database.password_env: environment variable EXAMPLE_DB_PASSWORD is not set"),
        "{}",
        done.stderr()
    );
    Run::new(&["validate", "-i"])
        .arg(&path)
        .env("EXAMPLE_DB_PASSWORD", "s3cret")
        .output()
        .status(0);
    Run::new(&["render", "-i"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("EXAMPLE_DB_PASSWORD", "s3cret")
        .output()
        .status(0);
    // A second init on the same path is refused, and the file is left as it was.
    std::fs::write(&path, "# mine\n").unwrap();
    let done = Run::new(&["init"]).arg(&path).output().status(4);
    assert!(
        done.stderr().contains("never overwrites"),
        "{}",
        done.stderr()
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
}

#[test]
fn completions_for_each_shell_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let done = Run::new(&["completions", shell]).output().status(0);
        for cmd in ["apply", "plan", "rollback", "promote", "init"] {
            assert!(done.stdout().contains(cmd), "{shell}: no {cmd}");
        }
    }
    let done = Run::new(&["completions", "tcsh"]).output().status(4);
    assert!(
        done.stderr().contains("possible values"),
        "{}",
        done.stderr()
    );
}

#[test]
fn the_manual_page_is_roff_that_man_reads() {
    let done = Run::new(&["man"]).output().status(0);
    let page = done.stdout();
    assert!(page.contains(".TH provision 1"), "{page}");
    assert!(page.contains("promote"), "{page}");
    // man itself formats it without a warning (man-db is on every Debian).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provision.1");
    std::fs::write(&file, page).unwrap();
    let out = std::process::Command::new("man")
        .arg("--warnings")
        .arg("-l")
        .arg(&file)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .expect("man runs (apt install man-db)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Exit statuses"));
}

#[test]
fn every_command_says_an_example_and_the_exit_statuses() {
    for cmd in [
        "init",
        "validate",
        "render",
        "plan",
        "apply",
        "history",
        "rollback",
        "check",
        "promote",
        "completions",
        "man",
    ] {
        let done = Run::new(&[cmd, "--help"]).output().status(0);
        assert!(
            done.stdout().contains("Example: provision "),
            "{cmd} --help has no example:\n{}",
            done.stdout()
        );
    }
    let done = Run::new(&["--help"]).output().status(0);
    assert!(done.stdout().contains("Exit statuses:"));
    assert!(done
        .stdout()
        .contains("4  the inventory or the command line is invalid"));
}
