//! Application releases on a scratch tree: how far back the generations reach as releases are pruned.

use super::*;

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

/// The PHP version of this machine's `php`, which the check of a release runs as `php<version>`.
fn local_php_version() -> String {
    let out = Command::new("php")
        .args(["-r", "echo PHP_MAJOR_VERSION, '.', PHP_MINOR_VERSION;"])
        .output()
        .expect("php (php-cli) runs the release checks' tests");
    String::from_utf8(out.stdout).unwrap()
}

/// Release `id` at `base` holding `files`, its sums file listing those `sent` (the rest came from
/// the live release by hard links): the sums file.
fn release_with(
    base: &Path,
    id: &str,
    files: &[(&str, &str)],
    sent: &[&str],
) -> std::path::PathBuf {
    let rel = base.join("releases").join(id);
    let mut sums = String::new();
    for (path, text) in files {
        let f = rel.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, text).unwrap();
        if sent.contains(path) {
            sums.push_str(&format!(
                "{}  {path}\n",
                crate::render::manifest::sha256_hex(text.as_bytes())
            ));
        }
    }
    let f = base.join(format!("{id}.sums"));
    std::fs::write(&f, sums).unwrap();
    f
}

/// The check of a release's PHP files, on the host library for real: the PHP files sent are
/// compiled in the release, a syntax error in one fails the apply naming the tool, the files, the
/// release and where PHP stopped; a file not sent (kept from the live release) and a file that is
/// not PHP are not read.
#[test]
fn the_php_check_of_a_release_rejects_a_syntax_error_in_a_php_file_sent() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let base = d.join("www");
    let check = crate::component::php::release_check(&local_php_version());
    let files = [
        ("index.php", "<?php\nrequire __DIR__ . '/lib/a.php';\n"),
        ("lib/a.php", "<?php\nfunction a() {\n    return 1 +;\n}\n"),
        ("kept.php", "<?php $kept = ;\n"),
        ("notes.txt", "<?php $not_php = ;\n"),
    ];
    let call = |sums: &Path| {
        format!(
            "release_check {} R1 {} {} {} {} {}\necho checked\n",
            base.display(),
            sums.display(),
            q(&check.files_ending),
            q(&check.files),
            q(&check.tool),
            q(&check.command)
        )
    };

    let sums = release_with(
        &base,
        "R1",
        &files,
        &["index.php", "lib/a.php", "notes.txt"],
    );
    let (ok, out) = run_library(d, &call(&sums));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "validation failed: {} rejected PHP files of release R1; nothing was changed",
            check.tool
        )),
        "{out}"
    );
    assert!(out.contains("lib/a.php:3: syntax error"), "{out}");
    assert!(!out.contains("kept.php") && !out.contains("notes.txt") && !out.contains("checked"));

    let sums = release_with(&base, "R1", &files, &["index.php", "notes.txt"]);
    let (ok, out) = run_library(d, &call(&sums));
    assert!(ok && out.contains("checked"), "{out}");
}
