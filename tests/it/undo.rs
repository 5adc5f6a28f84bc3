//! End-to-end: what a rollback can reach and what a failed swap leaves behind, on fresh plain lab
//! hosts of these tests' own: seven deploys of an application that keeps five releases, then a
//! rollback to the first; a disk that fills up while an apply swaps files in.

use crate::lab::*;
use crate::util::*;
use std::path::Path;

const BASE: &str = "/var/www/foobar.com";

/// A one-page application at `version`, kept as `keep` releases.
fn with_app(inv: &Path, version: &str, keep: u32) {
    let app = inv.parent().unwrap().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("index.php"),
        format!("<?php echo \"release {version}\\n\";\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(inv).unwrap();
    let head = text.split("\n[site.app]").next().unwrap().to_string();
    std::fs::write(
        inv,
        format!(
            "{head}\n[site.app]\nsource = \"{}\"\nkeep = {keep}\n",
            app.display()
        ),
    )
    .unwrap();
}

fn answers(addr: &str) -> String {
    let (status, body) = page(addr);
    assert_eq!(status, 200, "{body}");
    body.trim().to_string()
}

/// The generations `history --json` lists for `host`, oldest first: (id, restorable).
fn generations(inv: &str, host: &str) -> Vec<(String, bool)> {
    let done = Run::new(&["history", "-i", inv, "--host", host, "--json"])
        .output()
        .status(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    v[host]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["id"].as_str().unwrap().to_string(),
                g["restorable"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `rollback --to to` exits 1, naming `oldest` as the oldest generation it can reach.
fn refused(inv: &str, host: &str, to: &str, oldest: &str) {
    let done = Run::new(&["rollback", "-i", inv, "--host", host, "--to", to])
        .output()
        .status(1);
    println!("rollback --to {to}: {}", done.stderr().trim());
    assert!(
        done.stderr().contains(&format!(
            "the oldest generation this host can roll back to is {oldest}; nothing was changed"
        )),
        "{}",
        done.stderr()
    );
}

/// Seven deploys keeping five releases: a rollback to the first would need a release that is gone.
/// It is refused before anything changes, naming the oldest generation the host can go back to,
/// and the site keeps answering; a rollback to that one works. A release deleted by hand is caught
/// by the host itself, again before anything changes.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_a_rollback_never_puts_back_a_release_that_is_gone() {
    let (addr, host) = ("198.18.0.105", "e2e-reach");
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), host, addr, "plain", true);
    let i = inv.to_string_lossy().into_owned();
    for v in 1..=7 {
        with_app(&inv, &format!("v{v}"), 5);
        Run::new(&["apply", "-i", &i]).output().status(0);
        assert_eq!(answers(addr), format!("release v{v}"));
    }
    let gens = generations(&i, host);
    assert_eq!(gens.len(), 7, "{gens:?}");
    let releases = ssh(addr, &format!("ls {BASE}/releases | wc -l"));
    assert_eq!(releases.trim(), "5");
    let first = &gens[0].0;
    let live = ssh(addr, &format!("readlink {BASE}/current"));

    // Undoing the third generation would put the second release back: pruned with it.
    let oldest = &gens[2].0;
    refused(&i, host, first, oldest);
    assert_eq!(answers(addr), "release v7");
    assert_eq!(ssh(addr, &format!("readlink {BASE}/current")), live);
    assert_eq!(generations(&i, host), gens, "the refusal changed the host");
    assert!(!gens[1].1 && !gens[2].1 && gens[3..].iter().all(|g| g.1));

    // A release deleted by hand (the one undoing the fifth generation would put back).
    let fourth = ssh(
        addr,
        &format!(
            "readlink /var/lib/provision/generations/{}/files{BASE}/current",
            gens[4].0
        ),
    );
    ssh(addr, &format!("rm -rf {BASE}/{}", fourth.trim()));
    let reachable = &gens[4].0;
    refused(&i, host, oldest, reachable);
    assert_eq!(answers(addr), "release v7");
    assert_eq!(generations(&i, host), gens, "the refusal changed the host");

    Run::new(&["rollback", "-i", &i, "--host", host, "--to", reachable])
        .output()
        .status(0);
    assert_eq!(answers(addr), "release v5");
    lab(&["down", &i]);
}

/// Every regular file, link and directory under the trees an apply writes: path, type, mode,
/// owner, link target and content digest.
fn live_files(addr: &str) -> String {
    ssh(
        addr,
        "find /etc /var/www -xdev -printf '%p %y %m %u:%g %l\\n' | sort; \
         find /etc /var/www -xdev -type f -exec sha256sum {} + | sort",
    )
}

/// The generations directory on a small tmpfs holding what it held, then filled but for `pages`
/// pages of 4 KiB.
fn fill_generations(addr: &str, pages: u64) {
    ssh(
        addr,
        &format!(
            "set -e; cd /var/lib/provision; cp -a generations /root/generations.kept; \
             mount -t tmpfs -o size=8m,mode=700 tmpfs generations; cp -a /root/generations.kept/. generations/; \
             rm -rf /root/generations.kept; free=$(df --output=avail -B4096 generations | tail -n 1); \
             fallocate -l $(( (free - {pages}) * 4096 )) generations/.filler; \
             test \"$(df --output=avail -B4096 generations | tail -n 1)\" -eq {pages}"
        ),
    );
}

/// The generations back on the host's disk, as the run left them.
fn unfill_generations(addr: &str) {
    ssh(
        addr,
        "set -e; cd /var/lib/provision; rm generations/.filler; cp -a generations /root/generations.kept; \
         umount generations; cp -a /root/generations.kept/. generations/; rm -rf /root/generations.kept",
    );
}

/// The disk under the generations fills up while an apply swaps files in: the first backups fit,
/// a later one does not. The apply fails, undoing what it had swapped: every live file is exactly
/// as before, its generation is rolled back and the host marked; with room again, the same apply
/// goes through.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_a_full_disk_during_the_swap_leaves_the_live_files_as_they_were() {
    let (addr, host) = ("198.18.0.106", "e2e-full-disk");
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), host, addr, "plain", true);
    let i = inv.to_string_lossy().into_owned();
    Run::new(&["apply", "-i", &i]).output().status(0);
    // A second name for the site: its vhost, certificate and zone change (files that exist, each
    // needing a backup of a page or more).
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "server_names = [\"www\"]",
        "server_names = [\"www\", \"shop\"]",
    );
    std::fs::write(&inv, text).unwrap();
    let done = Run::new(&["plan", "--json", "-i", &i]).output().status(2);
    let v: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    let paths: Vec<&str> = v["plan"]["hosts"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    // In the order they are swapped: the size of each regular file (its backup takes pages), or
    // nothing (a backup without content).
    let sizes: Vec<Option<u64>> = ssh(
        addr,
        &format!(
            "for p in {}; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then stat -c %s \"$p\"; else echo -; fi; done",
            paths.join(" ")
        ),
    )
    .lines()
    .map(|l| l.parse().ok())
    .collect();
    let first = sizes.iter().position(Option::is_some).unwrap();
    assert!(
        sizes[first + 1..].iter().any(Option::is_some),
        "fewer than two files replaced: {paths:?}"
    );
    let pages: u64 = sizes[..=first]
        .iter()
        .flatten()
        .map(|s| s.div_ceil(4096))
        .sum();

    let before = live_files(addr);
    // Room for the generation's records (info, status, the list of what it swapped) and the backup
    // of the first file it replaces, not the second.
    fill_generations(addr, 3 + pages);
    let done = Run::new(&["apply", "-i", &i]).output().status(1);
    let said = format!("{}{}", done.stdout(), done.stderr());
    println!("{said}");
    let gen = ssh(addr, "cat /var/lib/provision/current");
    let gen = gen.trim();
    let swapped = ssh(
        addr,
        &format!("cat /var/lib/provision/generations/{gen}/swapped"),
    );
    println!("swapped before the disk was full:\n{swapped}");
    let after = live_files(addr);
    unfill_generations(addr);
    assert!(
        before == after,
        "the live files changed:\n{}",
        diff(&before, &after)
    );
    assert!(
        said.contains("is the disk full?") && said.contains("the previous files were restored"),
        "{said}"
    );
    // Files were live before the failure: the backup of at least one fit.
    assert!(swapped.contains("\tpresent"), "{swapped}");
    assert_eq!(
        ssh(
            addr,
            &format!("cat /var/lib/provision/generations/{gen}/status")
        )
        .trim(),
        "rolled-back"
    );
    assert!(ssh(addr, "cat /var/lib/provision/attention").contains(&format!("apply {gen} failed")));
    assert!(answers(addr).contains("Hello from MariaDB"));
    // With room again, the same change goes through.
    Run::new(&["apply", "-i", &i]).output().status(0);
    Run::new(&["plan", "-i", &i]).output().status(0);
    lab(&["down", &i]);
}

/// The lines only one side has.
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for l in &a {
        if !b.contains(l) {
            out.push_str(&format!("- {l}\n"));
        }
    }
    for l in &b {
        if !a.contains(l) {
            out.push_str(&format!("+ {l}\n"));
        }
    }
    out
}
