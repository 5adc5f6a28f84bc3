//! End-to-end: several sites on one host, each isolated from the others. Site A's PHP tries every
//! way into site B (its config file with the database password, its document root, its session
//! files, its PHP code, its database with A's own account) and is refused each time; a request for
//! B's names is answered by B's pool, as B's user.

use crate::lab::*;
use crate::util::*;
use std::path::Path;

const ADDR: &str = "198.18.0.118";

/// Site A's probe: each attempt on B, and what came of it.
const PROBE: &str = r#"<?php
header('Content-Type: text/plain');
$cfg = require '/etc/provision/sites/a.example/config.php';
$try = function ($name, $f) {
    try {
        $r = @$f();
        echo $name, ': ', ($r === false || $r === null) ? 'denied' : 'GOT ' . substr(json_encode($r), 0, 60), "\n";
    } catch (\Throwable $e) {
        echo $name, ': denied (', get_class($e), ")\n";
    }
};
$try('config', fn () => file_get_contents('/etc/provision/sites/b.example/config.php'));
$try('list', fn () => scandir('/var/www/b.example'));
$try('list-current', fn () => scandir('/var/www/b.example/current'));
$try('session', fn () => file_get_contents('/var/lib/php-sites/b/sessions/sess_probe'));
$try('include', fn () => (include '/var/www/b.example/current/whoami.php') ? null : false);
$try('database', function () use ($cfg) {
    $db = new mysqli($cfg['host'], $cfg['user'], $cfg['password'], 'b');
    return $db->query('SELECT 1')->fetch_row();
});
$try('own-database', function () use ($cfg) {
    $db = new mysqli($cfg['host'], $cfg['user'], $cfg['password'], 'a');
    return $db->query('SELECT 1')->fetch_row();
});
echo "done\n";
"#;

fn app(dir: &Path, name: &str, probe: bool) -> std::path::PathBuf {
    let d = dir.join(format!("app-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("index.php"),
        format!("<?php echo 'site {name} ok';\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("whoami.php"),
        "<?php echo 'user=', posix_getpwuid(posix_geteuid())['name'], \"\\n\";\n",
    )
    .unwrap();
    if probe {
        std::fs::write(d.join("probe.php"), PROBE).unwrap();
    }
    d
}

fn site(name: &str, app: &Path) -> String {
    format!(
        r#"[[sites]]
name = "{name}"
domain = "{name}.example"
stack = "lemp"
app_dir = "{app}"
[sites.health_check]
expect = "site {name} ok"
[sites.database]
name = "{name}"
user = "{name}"
password_file = "{secrets}/lab_db_password"
[sites.dns]
soa_contact = "hostmaster@{name}.example"

"#,
        app = app.display(),
        secrets = root().join("inventories/secrets").display(),
    )
}

fn host() -> String {
    format!(
        r#"[[hosts]]
name = "e2e-sites"
public_address = "{ADDR}"
roles = ["web", "app", "db", "dns"]
[hosts.ssh]
address = "{ADDR}"
identity_file = "{KEY}"
known_hosts = "{KNOWN}"
[hosts.lab]
flavour = "plain"
"#
    )
}

fn get(name: &str, path: &str) -> (u16, String) {
    let r = provision::health::get(
        format!("{ADDR}:80").parse().unwrap(),
        &format!("www.{name}.example"),
        path,
        false,
    )
    .unwrap();
    (r.status, r.body)
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_two_sites_on_one_host_cannot_reach_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (app(dir.path(), "a", true), app(dir.path(), "b", false));
    let inv = dir.path().join("sites.toml");
    std::fs::write(
        &inv,
        format!("{}{}{}", site("a", &a), site("b", &b), host()),
    )
    .unwrap();
    let inv = inv.to_string_lossy().to_string();
    lab(&["down", &inv]);
    lab(&["up", &inv]);
    let done = Run::new(&["apply", "-i", &inv]).output().status(0);
    assert_no_secret(&done);
    Run::new(&["plan", "-i", &inv]).output().status(0);

    // Each name is answered by its own pool, as its own user.
    assert_eq!(get("a", "/whoami.php"), (200, "user=a\n".to_string()));
    assert_eq!(get("b", "/whoami.php"), (200, "user=b\n".to_string()));
    assert!(get("b", "/").1.contains("site b ok"));
    // B has no probe, and A's is not B's: a PHP file B does not have is not found.
    assert_eq!(get("b", "/probe.php").0, 404);

    // A session file of B's, as B's PHP would leave it.
    ssh(
        ADDR,
        "su -s /bin/sh -c 'echo secret-session > /var/lib/php-sites/b/sessions/sess_probe' b",
    );
    let (status, said) = get("a", "/probe.php");
    assert_eq!(status, 200, "{said}");
    for attempt in [
        "config",
        "list",
        "list-current",
        "session",
        "include",
        "database",
    ] {
        assert!(
            said.lines()
                .any(|l| l.starts_with(&format!("{attempt}: denied"))),
            "{attempt} was not denied:\n{said}"
        );
    }
    assert!(said.contains("own-database: GOT"), "{said}");
    assert!(said.contains("done"), "{said}");
    // Beyond PHP's own fence: the files themselves are closed to the other site's user.
    let shell = |cmd: &str| {
        ssh(
            ADDR,
            &format!(
                "su -s /bin/sh -c {} a 2>&1; echo rc=$?",
                provision::quote::shell_word(cmd)
            ),
        )
    };
    for cmd in [
        "cat /etc/provision/sites/b.example/config.php",
        "ls /var/www/b.example",
        "cat /var/lib/php-sites/b/sessions/sess_probe",
    ] {
        let out = shell(cmd);
        assert!(
            out.contains("Permission denied") && !out.contains("rc=0"),
            "{cmd}: {out}"
        );
    }
    // The sockets: only the web server may connect to a pool.
    let socks = ssh(
        ADDR,
        "stat -c '%n %U:%G %a' /run/php/php*-fpm-a.sock /run/php/php*-fpm-b.sock",
    );
    for line in socks.lines() {
        assert!(line.ends_with(" www-data:www-data 660"), "{line}");
    }
    lab(&["down", &inv]);
}

/// A site joins a host that serves another under load (plan names only the new site's objects,
/// the pools' new shares and the shared services' reloads; the other site loses no request),
/// then leaves it (plan names what goes and what is kept; its name is no longer served, its data
/// stays), then is deleted on purpose after a backup of its document root and database.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_a_site_joins_and_leaves_while_the_other_keeps_serving() {
    const AT: &str = "198.18.0.119";
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (app(dir.path(), "a", false), app(dir.path(), "b", false));
    let host = host()
        .replace(ADDR, AT)
        .replace("e2e-sites", "e2e-sites-life");
    let inv = dir.path().join("sites.toml");
    let write = |sites: &str| std::fs::write(&inv, format!("{sites}{host}")).unwrap();
    write(&site("a", &a));
    let inv_s = inv.to_string_lossy().to_string();
    lab(&["down", &inv_s]);
    lab(&["up", &inv_s]);
    Run::new(&["apply", "-i", &inv_s]).output().status(0);

    // B joins while A is under load.
    write(&format!("{}{}", site("a", &a), site("b", &b)));
    let plan = Run::new(&["plan", "-i", &inv_s]).output().status(2);
    let said = plan.stdout();
    let changes = said
        .lines()
        .filter(|l| ["  + ", "  ~ ", "  - "].iter().any(|p| l.starts_with(p)) && l.contains(" /"));
    for line in changes {
        let about_b = ["b.example", "/b/", "php-sites/b", "/sql/b.sql"]
            .iter()
            .any(|s| line.contains(s));
        let shared = [
            "provision-status.conf",
            "named.conf.local",
            "a.example.conf",
            "opcache.ini",
            "php-sites",
        ]
        .iter()
        .any(|s| line.contains(s));
        assert!(
            about_b || shared,
            "the plan changes what is not B's: {line}\n{said}"
        );
    }
    let load = crate::load::Load::start_for(
        AT,
        "www.a.example",
        8,
        "site a ok",
        std::time::Duration::from_secs(300),
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    Run::new(&["apply", "-i", &inv_s]).output().status(0);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let tally = load.finish();
    eprintln!("{}", tally.line("site a while b joined"));
    assert!(tally.ok > 50 && tally.failed == 0, "{}", tally.line("a"));
    assert_eq!(
        get_at(AT, "b", "/whoami.php"),
        (200, "user=b\n".to_string())
    );
    Run::new(&["plan", "-i", &inv_s]).output().status(0);

    // B leaves: no longer served, its data kept.
    write(&site("a", &a));
    let plan = Run::new(&["plan", "-i", &inv_s]).output().status(2);
    let said = plan.stdout();
    for gone in [
        "/etc/nginx/sites-enabled/b.example.conf",
        "/etc/php/",
        "/etc/provision/sites/b.example",
    ] {
        assert!(
            said.lines()
                .any(|l| l.contains(gone) && l.contains("site b.example left the inventory")),
            "no {gone} in\n{said}"
        );
    }
    assert!(
        said.contains(
            "kept: its document root /var/www/b.example, uploads, database b and Unix user b"
        ),
        "{said}"
    );
    Run::new(&["apply", "-i", &inv_s]).output().status(0);
    Run::new(&["plan", "-i", &inv_s]).output().status(0);
    assert_ne!(get_at(AT, "b", "/whoami.php").1, "user=b\n");
    assert_eq!(
        get_at(AT, "a", "/whoami.php"),
        (200, "user=a\n".to_string())
    );
    let kept = ssh(
        AT,
        "test -d /var/www/b.example && id -u b > /dev/null && mariadb -NBe \"SHOW DATABASES LIKE 'b'\"",
    );
    assert_eq!(kept.trim(), "b");

    // Deleted on purpose: backed up first.
    let refused = Run::new(&["delete-site", "-i", &inv_s, "--domain", "a.example"]).output();
    assert_eq!(refused.code(), 4, "{}", refused.stderr());
    let done = Run::new(&["delete-site", "-i", &inv_s, "--domain", "b.example"])
        .output()
        .status(0);
    let out = done.stdout();
    assert!(
        out.contains("/var/backups/provision/b.example-before-delete-"),
        "{out}"
    );
    assert!(
        out.contains("/var/backups/provision/b-before-delete-"),
        "{out}"
    );
    let gone = ssh(
        AT,
        "test -e /var/www/b.example && echo root; id -u b 2>/dev/null && echo user; mariadb -NBe \"SHOW DATABASES LIKE 'b'\"; \
         ls /var/backups/provision/ | grep -c before-delete",
    );
    assert_eq!(gone.trim(), "2", "{gone}");
    Run::new(&["plan", "-i", &inv_s]).output().status(0);
    lab(&["down", &inv_s]);
}

fn get_at(addr: &str, name: &str, path: &str) -> (u16, String) {
    let r = provision::health::get(
        format!("{addr}:80").parse().unwrap(),
        &format!("www.{name}.example"),
        path,
        false,
    )
    .unwrap();
    (r.status, r.body)
}

/// The load-balanced lab with a second site that only web2 serves: the balancers send each
/// site's names to its own web hosts (the shop's requests all land on web2, the first site's on
/// both), both over HTTPS with a certificate of their own. Then the shop leaves again.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_each_site_goes_to_the_web_hosts_that_serve_it() {
    const VIP: &str = "198.18.0.19";
    let _hosts = lb_hosts();
    let lb = "inventories/lab-lb.toml";
    // Fresh hosts: another test may have left these promoted.
    lab(&["down", lb]);
    lab(&["up", lb]);
    let text = std::fs::read_to_string(root().join(lb)).unwrap();
    // The same inventory in the [[sites]] form, then a second site on web2 alone.
    let many = text
        .replace("[site]", "[[sites]]")
        .replace(
            "replication_password_file = \"secrets/lab_replication_password\"\n",
            "",
        )
        .replace("[database]", "[sites.database]")
        .replace("[dns]", "[sites.dns]")
        .replace(
            "\"secrets/",
            &format!("\"{}/inventories/secrets/", root().display()),
        );
    let (sites, hosts) = many.split_once("[lb]").unwrap();
    let secrets = root().join("inventories/secrets");
    let shop = format!(
        "[[sites]]\nname = \"shop\"\ndomain = \"shop.example\"\nstack = \"lemp\"\nhosts = [\"web2\"]\n\
         tls = {{ self_signed = true }}\n[sites.database]\nname = \"shop\"\nuser = \"shop\"\n\
         password_file = \"{}/lab_db_password\"\n[sites.dns]\nsoa_contact = \"hostmaster@shop.example\"\n\n",
        secrets.display()
    );
    let replication = format!(
        "[replication]\npassword_file = \"{}/lab_replication_password\"\n\n",
        secrets.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("two-sites.toml");
    std::fs::write(&inv, format!("{sites}{shop}{replication}[lb]{hosts}")).unwrap();
    let inv = inv.to_string_lossy().to_string();
    Run::new(&["apply", "-i", lb]).output().status(0);
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    let served_by = |name: &str| {
        let at = format!("{VIP}:443").parse().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..12 {
            let r = provision::health::get(at, name, "/", true).unwrap();
            assert_eq!(r.status, 200, "{name}: {}", r.body);
            let host = r
                .body
                .split("<b id=\"host\">")
                .nth(1)
                .and_then(|b| b.split('<').next())
                .unwrap_or("?")
                .to_string();
            seen.insert(host);
        }
        seen.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(served_by("www.shop.example"), ["web2"]);
    assert_eq!(served_by("www.foobar.com"), ["web1", "web2"]);
    let check = Run::new(&["check", "-i", &inv]).output().status(0);
    assert!(
        check.stdout().contains("backend web2 of web-shop: UP"),
        "{}",
        check.stdout()
    );
    every_sites_database_moves_with_a_promotion(&inv, &served_by);
    // The shop leaves (from the promoted inventory): web2 stops serving it, the balancers no
    // longer route it.
    let promoted = std::fs::read_to_string(&inv).unwrap();
    let without_shop = promoted.replace(&shop, "");
    assert_ne!(
        without_shop, promoted,
        "promote rewrote more than the roles:\n{promoted}"
    );
    std::fs::write(&inv, without_shop).unwrap();
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    let at = format!("{VIP}:80").parse().unwrap();
    let r = provision::health::get(at, "www.shop.example", "/", false).unwrap();
    assert!(!r.body.contains("shop.example"), "{}", r.body);
    // The databases were moved: the next test of these hosts starts from fresh ones.
    lab(&["down", lb]);
}

/// `provision promote --host db2` with two sites: both databases were on db1 and replicated to
/// db2; afterwards db2 is the writable primary of both, db1 follows it with both, every web host
/// that serves a site points that site at db2, and both sites answer with their rows.
fn every_sites_database_moves_with_a_promotion(inv: &str, served_by: &dyn Fn(&str) -> Vec<String>) {
    const DB1: &str = "198.18.0.23";
    const DB2: &str = "198.18.0.24";
    let done = Run::new(&["promote", "-i", inv, "--host", "db2"])
        .output()
        .status(0);
    assert_no_secret(&done);
    let said = format!("{}{}", done.stdout(), done.stderr());
    assert!(said.contains("db2: promoted"), "{said}");
    Run::new(&["plan", "-i", inv]).output().status(0);
    assert_eq!(ssh(DB2, "mariadb -NBe 'SELECT @@read_only'").trim(), "0");
    ssh(
        DB2,
        "mariadb -e \"INSERT INTO foobar.provision_demo (id, message) VALUES (2, 'foobar, written on db2'); \
         INSERT INTO shop.provision_demo (id, message) VALUES (2, 'shop, written on db2')\"",
    );
    let mut seen = String::new();
    for _ in 0..40 {
        seen = ssh(
            DB1,
            "mariadb -e 'SHOW SLAVE STATUS\\G'; mariadb -NBe 'SELECT @@read_only; \
             SELECT message FROM foobar.provision_demo WHERE id = 2; \
             SELECT message FROM shop.provision_demo WHERE id = 2' 2>&1; true",
        );
        if seen.contains("1\nfoobar, written on db2\nshop, written on db2") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        seen.contains(&format!("Master_Host: {DB2}"))
            && seen.contains("Slave_SQL_Running: Yes")
            && seen.contains("1\nfoobar, written on db2\nshop, written on db2"),
        "db1 does not follow db2 read-only with both sites' rows: {seen}"
    );
    for (web, domain) in [
        ("198.18.0.21", "foobar.com"),
        ("198.18.0.22", "foobar.com"),
        ("198.18.0.22", "shop.example"),
    ] {
        let config = ssh(
            web,
            &format!("cat /etc/provision/sites/{domain}/config.php"),
        );
        assert!(
            config.contains(&format!("'host' => '{DB2}'")),
            "{web} still points {domain} elsewhere"
        );
    }
    assert_eq!(served_by("www.shop.example"), ["web2"]);
    assert_eq!(served_by("www.foobar.com"), ["web1", "web2"]);
}
