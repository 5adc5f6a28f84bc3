//! End-to-end: a user's application deployed as releases on a fresh plain lab host: config file
//! from the user's template, shared directory, release command, delta deploys, rollback, a PHP
//! syntax error and a failing release command that keep the old release live, and a deploy under
//! load where every answer is wholly one release.

use crate::lab::*;
use crate::load::Load;
use crate::util::*;
use std::path::Path;
use std::time::Duration;

const BASE: &str = "/var/www/foobar.com";

/// The application at `version`: 300 library files, two of which carry the version; the page says
/// "consistent" only when both come from the same release, and "db ok" when the config file's
/// database settings work.
fn write_app(dir: &Path, version: &str) {
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("lib")).unwrap();
    std::fs::write(
        app.join("style.css"),
        "body { color: black; }\n".repeat(100),
    )
    .unwrap();
    for i in 0..300 {
        std::fs::write(
            app.join(format!("lib/f{i}.php")),
            format!("<?php\nfunction f{i}() {{ return {i}; }}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        app.join("lib/a.php"),
        format!("<?php\nconst A = '{version}';\n"),
    )
    .unwrap();
    std::fs::write(
        app.join("lib/b.php"),
        format!("<?php\n// Read after a pause, so a switch in between would mix releases.\nusleep(20000);\nconst B = '{version}';\n"),
    )
    .unwrap();
    std::fs::write(
        app.join("index.php"),
        "<?php\nrequire __DIR__ . '/lib/a.php';\nrequire __DIR__ . '/lib/b.php';\n\
         $c = require __DIR__ . '/config/db.php';\n\
         $db = @new mysqli($c['host'], $c['user'], $c['password'], $c['name']);\n\
         $ok = !$db->connect_errno && $db->query('SELECT 1');\n\
         echo 'app ', A, ' ', (A === B ? 'consistent' : 'MIXED ' . B), ' ', ($ok ? 'db ok' : 'db down'), ' mem ', ini_get('memory_limit'), \"\\n\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("db.php.tera"),
        "<?php\nreturn [\n    'host' => {{ app.db_host | php_string }},\n    'name' => {{ db.name | php_string }},\n\
         \x20   'user' => {{ db.user | php_string }},\n    'password' => {{ db.password | php_string }},\n];\n",
    )
    .unwrap();
}

fn with_app(inv: &Path, release_command: &str) {
    let text = std::fs::read_to_string(inv).unwrap();
    let text = match text.split_once("\n[site.app]") {
        Some((head, _)) => head.to_string(),
        None => text,
    };
    let dir = inv.parent().unwrap();
    let app = format!(
        "\n[site.app]\nsource = \"{}\"\nextensions = [\"mysqli\", \"intl\"]\nshared = [\"uploads\"]\nkeep = 3\n\
         release_command = {release_command:?}\n[site.app.php]\nmemory_limit = \"192M\"\n\
         [[site.app.config]]\ntemplate = \"{}\"\npath = \"config/db.php\"\n",
        dir.join("app").display(),
        dir.join("db.php.tera").display(),
    );
    std::fs::write(inv, text + &app).unwrap();
}

/// The response headers of a GET through curl (pinned to the lab address), lowercased.
pub fn headers(addr: &str, path: &str, extra: &[&str]) -> String {
    let url = format!("https://www.foobar.com{path}");
    let mut all = vec!["-o", "/dev/null", "-D", "-"];
    all.extend_from_slice(extra);
    all.push(&url);
    curl(addr, &all).to_lowercase()
}

fn body(addr: &str) -> String {
    let (status, body) = page(addr);
    assert_eq!(status, 200, "{body}");
    body
}

/// A copy of a one-host lab inventory for a host of the test's own (name, address), started fresh.
pub fn stack_host(
    dir: &Path,
    base: &str,
    from: &str,
    name: &str,
    addr: &str,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join(base)).unwrap();
    let old_name = text
        .lines()
        .skip_while(|l| *l != "[[hosts]]")
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .to_string();
    let text = text
        .replace(from, addr)
        .replace(&format!("name = {old_name}"), &format!("name = \"{name}\""))
        .replace(
            "\"secrets/",
            &format!("\"{}/inventories/secrets/", root().display()),
        );
    assert!(text.contains(&format!("name = \"{name}\"")) && !text.contains(from));
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    lab(&["down", &p.to_string_lossy()]);
    lab(&["up", &p.to_string_lossy()]);
    p
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_app_releases_on_a_plain_host() {
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-app", "198.18.0.44", "plain", true);
    releases(dir.path(), &inv, "198.18.0.44", "e2e-app");
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_app_releases_lamp_on_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, host) = ("198.18.0.47", "e2e-app-lamp");
    let inv = stack_host(
        dir.path(),
        "inventories/lab-lamp.toml",
        "198.18.0.12",
        host,
        addr,
    );
    releases(dir.path(), &inv, addr, host);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_app_releases_nginx_apache_on_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, host) = ("198.18.0.48", "e2e-app-single");
    let inv = stack_host(
        dir.path(),
        "inventories/lab-single.toml",
        "198.18.0.10",
        host,
        addr,
    );
    releases(dir.path(), &inv, addr, host);
}

/// The application's whole life on one fresh host of a single-host stack.
fn releases(dir: &Path, inv: &Path, addr: &str, host: &str) {
    let i = inv.to_string_lossy().into_owned();
    write_app(dir, "v1");
    with_app(
        inv,
        "touch ../../shared/uploads/migrated-$(basename \"$PWD\")",
    );

    // First deploy: everything sent (304 files, the links of the shared directory and the config
    // file), the config file rendered, the release command run.
    let done = Run::new(&["plan", "-i", &i]).output().status(2);
    assert!(
        done.stdout().contains("all 306 entries sent"),
        "{}",
        done.stdout()
    );
    let done = Run::new(&["apply", "-i", &i]).output().status(0);
    assert_no_secret(&done);
    assert!(body(addr).contains("app v1 consistent db ok"));
    let live = ssh(addr, &format!("readlink {BASE}/current"));
    assert!(live.starts_with("releases/"), "{live}");
    let id1 = live.trim().trim_start_matches("releases/").to_string();
    assert!(ssh(addr, &format!("ls {BASE}/shared/uploads")).contains(&format!("migrated-{id1}")));
    assert_eq!(
        ssh(addr, &format!("readlink {BASE}/current/uploads")).trim(),
        format!("{BASE}/shared/uploads")
    );
    // The settings and extensions asked for.
    assert!(body(addr).contains("mem 192M"), "{}", body(addr));
    // Static files: cached by browsers for 30 days, compressed for clients that take it.
    let head = headers(addr, "/style.css", &["-H", "Accept-Encoding: gzip"]);
    assert!(head.contains("cache-control: max-age=2592000"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(ssh(addr, "php -m").contains("intl"));
    // The config file holds the password, readable by the site's PHP only (its own user).
    assert_eq!(
        ssh(
            addr,
            "stat -c '%a %U:%G' /etc/provision/sites/foobar.com/app/config/db.php"
        )
        .trim(),
        "640 root:foobar-com"
    );

    // Unchanged: nothing sent, nothing done.
    let done = Run::new(&["apply", "-i", &i]).output().status(0);
    assert!(done.stdout().contains("no changes"), "{}", done.stdout());

    // One file changed: only it is sent, the rest linked from the live release.
    write_app(dir, "v2");
    let done = Run::new(&["plan", "-i", &i]).output().status(2);
    assert!(
        done.stdout().contains("2 of 306 entries sent, 0 removed"),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i", &i]).output().status(0);
    assert!(body(addr).contains("app v2 consistent db ok"));
    // Files the two releases share are one file (hard links), not copies.
    let links = ssh(addr, &format!("stat -c %h {BASE}/current/lib/f7.php"));
    assert_eq!(links.trim(), "2");

    // Rollback puts the previous release back at once.
    Run::new(&["rollback", "-i", &i, "--host", host])
        .output()
        .status(0);
    assert!(body(addr).contains("app v1 consistent db ok"));
    assert_eq!(
        ssh(addr, &format!("readlink {BASE}/current")).trim(),
        live.trim()
    );

    // A PHP syntax error in a file sent: the release's check on the host refuses it before anything
    // changes (exit 1, naming PHP, the files and where PHP stopped), the old release serves.
    write_app(dir, "v3");
    let broken = dir.join("app/lib/broken.php");
    std::fs::write(&broken, "<?php\nfunction broken() {\n    return 1 +;\n}\n").unwrap();
    let done = Run::new(&["apply", "-i", &i]).output().status(1);
    let said = format!("{}\n{}", done.stdout(), done.stderr());
    assert!(
        said.contains("validation failed: php")
            && said.contains(" rejected PHP files of release ")
            && said.contains("lib/broken.php:3: syntax error"),
        "{said}"
    );
    assert_eq!(
        ssh(addr, &format!("readlink {BASE}/current")).trim(),
        live.trim()
    );
    assert!(body(addr).contains("app v1 consistent db ok"));
    std::fs::remove_file(&broken).unwrap();

    // A release command that fails: exit 1, the switch does not happen, the old release serves.
    write_app(dir, "v3");
    with_app(inv, "echo migrating; exit 3");
    let done = Run::new(&["apply", "-i", &i]).output().status(1);
    assert!(
        done.stdout().contains("the release command of release")
            || done.stderr().contains("the release command of release"),
        "{}\n{}",
        done.stdout(),
        done.stderr()
    );
    assert!(body(addr).contains("app v1 consistent db ok"));

    // Fixed, and deployed while a bounded load runs: no failed request, and every answer wholly
    // one release ("consistent", "db ok").
    with_app(inv, "true");
    let load = Load::start(addr, 4, "consistent db ok", Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    Run::new(&["apply", "-i", &i]).output().status(0);
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    println!("{}", tally.line("deploy v3 under load"));
    assert_eq!(tally.failed, 0, "{}", tally.line("deploy v3 under load"));
    assert!(tally.ok > 20, "{}", tally.line("deploy v3 under load"));
    assert!(body(addr).contains("app v3 consistent db ok"));

    // Only the newest releases are kept (keep = 3), the live one always.
    for v in ["v4", "v5"] {
        write_app(dir, v);
        Run::new(&["apply", "-i", &i]).output().status(0);
    }
    let releases = ssh(addr, &format!("ls {BASE}/releases | wc -l"));
    assert_eq!(releases.trim(), "3");
    assert!(body(addr).contains("app v5 consistent db ok"));
    lab(&["down", &i]);
}

/// `site.micro_cache` on a LEMP host: PHP's answer is served from Nginx's cache for a second (the
/// page prints the time it was made), POSTs and session cookies go to PHP every time.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_micro_cache_keeps_pages_a_second_but_not_sessions_or_posts() {
    let (addr, host) = ("198.18.0.49", "e2e-micro");
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), host, addr, "plain", true);
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("index.php"),
        "<?php echo 'made at ', microtime(true), \"\\n\";\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "stack = \"lemp\"",
        &format!(
            "stack = \"lemp\"\nmicro_cache = true\napp_dir = \"{}\"",
            app.display()
        ),
    );
    std::fs::write(&inv, text).unwrap();
    let i = inv.to_string_lossy().into_owned();
    Run::new(&["apply", "-i", &i]).output().status(0);
    std::thread::sleep(Duration::from_millis(1500));
    let status = |extra: &[&str]| {
        let h = headers(addr, "/", extra);
        h.lines()
            .find_map(|l| l.strip_prefix("x-micro-cache: "))
            .unwrap_or("none")
            .trim()
            .to_string()
    };
    // Requests in a row: served from the cache (the first may find an expired entry).
    let seen: Vec<String> = (0..5).map(|_| status(&[])).collect();
    assert!(seen.iter().any(|s| s == "hit"), "{seen:?}");
    // Two pages within a second are one page (tried thrice: a pair may straddle an expiry).
    let a = (0..3)
        .map(|_| (body(addr), body(addr)))
        .find(|(a, b)| a == b)
        .map(|(a, _)| a)
        .expect("two pages in a row were never the cached one");
    assert_eq!(status(&["-H", "Cookie: PHPSESSID=abc"]), "bypass");
    // POSTs are not cached at all (nginx caches GET and HEAD): each one is made by PHP.
    let post = || {
        curl(
            addr,
            &["-D", "-", "--data", "x=1", "https://www.foobar.com/"],
        )
        .to_lowercase()
    };
    let (p1, p2) = (post(), post());
    assert!(
        !p1.contains("x-micro-cache: hit") && !p2.contains("x-micro-cache: hit"),
        "{p1}\n{p2}"
    );
    assert_ne!(
        p1.lines().last(),
        p2.lines().last(),
        "two POSTs got one page"
    );
    // Once the second is over, a request gets the stale page and one refresh runs in the
    // background (its PHP may take a while on a loaded machine): a new page comes soon after.
    std::thread::sleep(Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let mut pages = Vec::new();
    while start.elapsed() < Duration::from_secs(15) {
        pages.push(body(addr));
        if pages.last() != Some(&a) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(
        pages.last(),
        Some(&a),
        "the page was never made again: {pages:?}"
    );
    lab(&["down", &i]);
}
