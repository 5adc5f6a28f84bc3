use crate::util::*;

const EXAMPLES: [&str; 5] = [
    "single.toml",
    "lemp.toml",
    "lamp.toml",
    "lb.toml",
    "acme.toml",
];

/// The validators that must have run and passed for each example: a missing tool fails the test.
fn expected_checks(inv: &str) -> Vec<&'static str> {
    match inv {
        "single.toml" | "lab-single.toml" => vec![
            "nginx: ok",
            "apache2: ok",
            "php-lint: ok",
            "mariadb: ok",
            "bind: ok",
        ],
        "lemp.toml" | "lab-lemp.toml" => vec![
            "nginx: ok",
            "php-fpm: ok",
            "php-lint: ok",
            "mariadb: ok",
            "bind: ok",
        ],
        // The ACME script stages a placeholder where Nginx's new configuration names the
        // certificate provision-acme will keep.
        "acme.toml" => vec![
            "acme: ok",
            "nginx: ok",
            "php-fpm: ok",
            "php-lint: ok",
            "bind: ok",
        ],
        "lamp.toml" | "lab-lamp.toml" => vec![
            "apache2: ok",
            "php-fpm: ok",
            "php-lint: ok",
            "mariadb: ok",
            "bind: ok",
        ],
        "lb.toml" => vec![
            "lb-01: haproxy: ok",
            "lb-01: keepalived: ok",
            "lb-02: keepalived: ok",
            "lb-01: bind: ok",
            "web-01: nginx: ok",
            "web-02: php-fpm: ok",
            "db-01: mariadb: ok",
            "db-02: mariadb: ok",
        ],
        "lab-lb.toml" => vec![
            "lb: haproxy: ok",
            "lb: keepalived: ok",
            "lb2: keepalived: ok",
            "lb: bind: ok",
            "web1: nginx: ok",
            "web2: php-fpm: ok",
            "db1: mariadb: ok",
            "db2: mariadb: ok",
        ],
        _ => unreachable!(),
    }
}

#[test]
fn every_example_renders_and_passes_the_real_validators() {
    let mut all = EXAMPLES.to_vec();
    all.extend([
        "lab-single.toml",
        "lab-lemp.toml",
        "lab-lamp.toml",
        "lab-lb.toml",
    ]);
    for inv in all {
        let out = tempfile::tempdir().unwrap();
        let done = Run::new(&["render", "--check", "-i"])
            .arg(inventory(inv))
            .arg("--out")
            .arg(out.path())
            .output()
            .status(0);
        let stdout = done.stdout();
        for want in expected_checks(inv) {
            assert!(stdout.contains(want), "{inv}: no {want:?} in\n{stdout}");
        }
        assert!(!stdout.contains("FAILED"), "{inv}:\n{stdout}");
    }
}

#[test]
fn the_same_inventory_renders_the_same_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        Run::new(&["render", "-i", "inventories/lb.toml", "--out"])
            .arg(dir)
            .output()
            .status(0);
    }
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert!(ta.len() > 10, "{} files", ta.len());
    assert_eq!(
        ta.iter().map(|x| &x.0).collect::<Vec<_>>(),
        tb.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(ta == tb, "renders differ");
}

/// Snapshot of every file of every host, so any change to a template or to rendering shows up in review.
#[test]
fn rendered_trees_match_their_snapshots() {
    for inv in EXAMPLES {
        let out = tempfile::tempdir().unwrap();
        Run::new(&["render", "-i"])
            .arg(inventory(inv))
            .arg("--out")
            .arg(out.path())
            .output()
            .status(0);
        let mut text = String::new();
        for (path, content) in tree(out.path()) {
            if path == "manifest.json" {
                continue;
            }
            text.push_str(&format!(
                "==> {path}\n{}\n",
                String::from_utf8_lossy(&content)
            ));
        }
        insta::assert_snapshot!(format!("tree-{inv}"), text);
        let manifest = std::fs::read_to_string(out.path().join("manifest.json")).unwrap();
        let manifest = manifest.replace(&*inventory(inv).to_string_lossy(), "[INVENTORY]");
        insta::assert_snapshot!(format!("manifest-{inv}"), manifest);
    }
}

const NASTY: &str = r#"q'uo"te$HOME\back;semi{brace}$(cmd)`tick`%s"#;

#[test]
fn secrets_are_placeholders_unless_revealed_and_never_printed() {
    let inv = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(inventory("lemp.toml"))
        .unwrap()
        .replace(
            r#"password_file = "secrets/example_db_password""#,
            r#"password_env = "PROVISION_TEST_PW""#,
        );
    let path = inv.path().join("inv.toml");
    std::fs::write(&path, text).unwrap();
    for reveal in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let mut run = Run::new(&["render", "--check", "-i"])
            .arg(&path)
            .arg("--out")
            .arg(out.path())
            .env("PROVISION_TEST_PW", NASTY);
        if reveal {
            run = run.arg("--reveal-secrets");
        }
        let done = run.output().status(0);
        for stream in [done.stdout(), done.stderr()] {
            assert!(!stream.contains("back;semi"), "secret printed:\n{stream}");
        }
        let files = tree(out.path());
        let leaked = files
            .iter()
            .any(|(_, c)| String::from_utf8_lossy(c).contains("back;semi"));
        assert_eq!(leaked, reveal, "secret in files with reveal={reveal}");
        if !reveal {
            let config = files
                .iter()
                .find(|(p, _)| p.ends_with("config.php"))
                .unwrap();
            assert!(String::from_utf8_lossy(&config.1).contains("<secret database.password hidden"));
        }
    }
}

/// The escaped password must not only parse: PHP must read back exactly the original bytes.
#[test]
fn a_password_with_every_special_character_survives_php_escaping() {
    let inv = tempfile::tempdir().unwrap();
    std::fs::write(inv.path().join("pw"), NASTY).unwrap();
    let text = std::fs::read_to_string(inventory("lemp.toml"))
        .unwrap()
        .replace(
            r#"password_file = "secrets/example_db_password""#,
            r#"password_file = "pw""#,
        );
    std::fs::write(inv.path().join("inv.toml"), text).unwrap();
    let out = tempfile::tempdir().unwrap();
    Run::new(&["render", "--check", "--reveal-secrets", "-i"])
        .arg(inv.path().join("inv.toml"))
        .arg("--out")
        .arg(out.path())
        .output()
        .status(0);
    let config = out
        .path()
        .join("web-01/etc/provision/sites/foobar.com/config.php");
    let read = std::process::Command::new("php")
        .args(["-n", "-r", "echo (require $argv[1])['password'];"])
        .arg(&config)
        .output()
        .expect("php runs");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&read.stdout), NASTY);
}

#[test]
fn zone_serial_moves_only_when_records_change() {
    let inv = tempfile::tempdir().unwrap();
    let orig = std::fs::read_to_string(inventory("single.toml"))
        .unwrap()
        .replace(
            "secrets/",
            &format!("{}/inventories/secrets/", root().display()),
        );
    let path = inv.path().join("inv.toml");
    std::fs::write(&path, &orig).unwrap();
    let out = tempfile::tempdir().unwrap();
    let zone = out.path().join("web-01/etc/bind/db.foobar.com");
    let serial = || {
        provision::component::zone::Zone::parse(&std::fs::read_to_string(&zone).unwrap())
            .serial
            .unwrap()
    };
    let render = |epoch: &str| {
        Run::new(&["render", "-i"])
            .arg(&path)
            .arg("--out")
            .arg(out.path())
            .env("SOURCE_DATE_EPOCH", epoch)
            .output()
            .status(0)
    };
    render("1795305600"); // 2026-11-22
    assert_eq!(serial(), 2026112201);
    render("1795392000"); // a day later, same records
    assert_eq!(serial(), 2026112201);
    std::fs::write(&path, orig.replace("8.8.4.4", "8.8.4.5")).unwrap();
    render("1795305600");
    assert_eq!(serial(), 2026112202);
    std::fs::write(&path, orig.replace("8.8.4.4", "8.8.4.6")).unwrap();
    render("1795392000");
    assert_eq!(serial(), 2026112301);
}

#[test]
fn a_template_override_replaces_the_embedded_one() {
    let tpl = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tpl.path().join("nginx")).unwrap();
    let site = std::fs::read_to_string(root().join("templates/nginx/site.conf")).unwrap();
    std::fs::write(
        tpl.path().join("nginx/site.conf"),
        site.replace(
            "index index.php index.html;",
            "index index.php index.html; # overridden",
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    Run::new(&[
        "render",
        "--check",
        "-i",
        "inventories/lemp.toml",
        "--templates",
    ])
    .arg(tpl.path())
    .arg("--out")
    .arg(out.path())
    .output()
    .status(0);
    let conf = std::fs::read_to_string(
        out.path()
            .join("web-01/etc/nginx/sites-available/foobar.com.conf"),
    )
    .unwrap();
    assert!(conf.contains("# overridden"));
}

#[test]
fn an_invalid_override_fails_the_check_and_names_the_tool() {
    for (name, extra, tool) in [
        ("nginx/site.conf", "bogus_directive on;\n", "nginx: FAILED"),
        ("apache/site.conf", "BogusDirective on\n", "apache2: FAILED"),
        ("php/pool.conf", "pm = sometimes\n", "php-fpm: FAILED"),
        (
            "mariadb/provision.cnf",
            "bogus_variable = 1\n",
            "mariadb: FAILED",
        ),
        ("bind/zone.db", "www IN CNAME elsewhere\n", "bind: FAILED"),
        ("bind/zone.db", "x IN A 198.18.0.999\n", "bind: FAILED"),
        ("app/index.php", "<?php $x = ;\n", "php-lint: FAILED"),
        (
            "haproxy/haproxy.cfg",
            "    bogus_keyword\n",
            "haproxy: FAILED",
        ),
        (
            "keepalived/keepalived.conf",
            "vrrp_instance broken {\n    priorty 1\n}\n",
            "keepalived: FAILED",
        ),
    ] {
        let tpl = tempfile::tempdir().unwrap();
        let target = tpl.path().join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let orig = std::fs::read_to_string(root().join("templates").join(name)).unwrap();
        std::fs::write(&target, orig + extra).unwrap();
        let inv = if name.starts_with("apache") {
            "inventories/lamp.toml"
        } else if name.starts_with("haproxy") || name.starts_with("keepalived") {
            "inventories/lb.toml"
        } else {
            "inventories/lemp.toml"
        };
        let out = tempfile::tempdir().unwrap();
        let done = Run::new(&["render", "--check", "-i", inv, "--templates"])
            .arg(tpl.path())
            .arg("--out")
            .arg(out.path())
            .output()
            .status(5);
        assert!(
            done.stdout().contains(tool),
            "{name}: no {tool:?} in\n{}",
            done.stdout()
        );
        assert!(
            done.stderr()
                .contains("validator(s) rejected the rendered configs"),
            "{}",
            done.stderr()
        );
    }
}

#[test]
fn render_refuses_to_write_into_a_directory_that_is_not_a_render() {
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("precious.txt"), "keep me").unwrap();
    let done = Run::new(&["render", "-i", "inventories/lemp.toml", "--out"])
        .arg(out.path())
        .output()
        .status(4);
    assert!(
        done.stderr().contains("is not an earlier render"),
        "{}",
        done.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn the_vagrant_inventory_takes_its_password_from_the_environment() {
    let done = Run::new(&["validate", "-i", "inventories/vagrant.toml"])
        .output()
        .status(4);
    assert!(
        done.stderr()
            .contains("environment variable PROVISION_DB_PASSWORD is not set"),
        "{}",
        done.stderr()
    );
    let out = tempfile::tempdir().unwrap();
    Run::new(&[
        "render",
        "--check",
        "-i",
        "inventories/vagrant.toml",
        "--out",
    ])
    .arg(out.path())
    .env("PROVISION_DB_PASSWORD", "vagrant's $ecret")
    .output()
    .status(0);
}

#[test]
fn an_app_dir_replaces_the_demo_and_its_php_is_linted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app/lib")).unwrap();
    std::fs::write(
        dir.path().join("app/index.php"),
        "<?php require __DIR__ . '/lib/hello.php'; hello();\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("app/lib/hello.php"),
        "<?php function hello() { echo 'hi'; }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("app/style.css"), "body { color: black; }\n").unwrap();
    let text = std::fs::read_to_string(inventory("lemp.toml"))
        .unwrap()
        .replace("# app_dir = \"app\"", "app_dir = \"app\"")
        .replace(
            "secrets/",
            &format!("{}/inventories/secrets/", root().display()),
        );
    assert!(text.contains("\napp_dir = \"app\""));
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, &text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let done = Run::new(&["render", "--check", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(out.path())
        .output()
        .status(0);
    assert!(done.stdout().contains("php-lint: ok"), "{}", done.stdout());
    // The release the `current` link names.
    let base = out.path().join("web-01/var/www/foobar.com");
    let current = std::fs::read_link(base.join("current")).unwrap();
    assert!(current.starts_with("releases"), "{}", current.display());
    let docroot = base.join(current);
    assert_eq!(
        std::fs::read_to_string(docroot.join("lib/hello.php")).unwrap(),
        "<?php function hello() { echo 'hi'; }\n"
    );
    assert!(docroot.join("style.css").exists());
    assert!(!std::fs::read_to_string(docroot.join("index.php"))
        .unwrap()
        .contains("provision_demo"));
    // Without the demo app there is no demo table in the bootstrap SQL.
    let sql = std::fs::read_to_string(out.path().join("web-01/var/lib/provision/sql/foobar.sql"))
        .unwrap();
    assert!(!sql.contains("provision_demo"));

    // A syntax error in the user's PHP fails the check.
    std::fs::write(
        dir.path().join("app/lib/hello.php"),
        "<?php function hello() { echo 'hi' }\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let done = Run::new(&["render", "--check", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(out.path())
        .output()
        .status(5);
    assert!(
        done.stdout().contains("php-lint: FAILED") && done.stdout().contains("hello.php"),
        "{}",
        done.stdout()
    );
}

/// The two Debian releases get one set of templates: the renders differ only where the PHP version
/// is named (paths, packages, services, the pool socket), as the release ships it.
#[test]
fn bookworm_and_trixie_renders_differ_only_in_the_php_version() {
    for inv in ["single.toml", "lemp.toml", "lamp.toml", "lb.toml"] {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for (dir, release) in [(a.path(), "bookworm"), (b.path(), "trixie")] {
            let done = Run::new(&["render", "--release", release, "-i"])
                .arg(inventory(inv))
                .arg("--out")
                .arg(dir)
                .output()
                .status(0);
            let want = if release == "bookworm" {
                "debian 12 (bookworm)"
            } else {
                "debian 13 (trixie)"
            };
            assert!(done.stdout().contains(want), "{}", done.stdout());
        }
        let as_12 = |t: Vec<(String, Vec<u8>)>| -> Vec<(String, String)> {
            t.into_iter()
                .map(|(p, c)| {
                    (
                        p.replace("8.4", "8.2"),
                        String::from_utf8_lossy(&c).replace("8.4", "8.2"),
                    )
                })
                .collect()
        };
        let (ta, tb) = (tree(a.path()), tree(b.path()));
        // Both releases render the same files: same names, same number.
        assert_eq!(ta.len(), tb.len(), "{inv}");
        let mut left: Vec<(String, String)> = as_12(ta)
            .into_iter()
            .filter(|(p, _)| p != "manifest.json")
            .collect();
        let mut right: Vec<(String, String)> = as_12(tb)
            .into_iter()
            .filter(|(p, _)| p != "manifest.json")
            .collect();
        left.sort();
        right.sort();
        assert_eq!(left, right, "{inv}");
    }
}

#[test]
fn a_php_version_the_release_does_not_ship_is_refused_at_render() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(inventory("lemp.toml"))
        .unwrap()
        .replace("# php_version = \"8.4\"", "php_version = \"8.2\"")
        .replace(
            "secrets/",
            &format!("{}/inventories/secrets/", root().display()),
        );
    assert!(text.contains("\nphp_version = \"8.2\""));
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, text).unwrap();
    let out = dir.path().join("out");
    Run::new(&["render", "--release", "bookworm", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .status(0);
    let done = Run::new(&["render", "--release", "trixie", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .status(5);
    assert!(
        done.stderr()
            .contains("site.php_version is 8.2, but debian 13 (trixie) ships PHP 8.4"),
        "{}",
        done.stderr()
    );
}

#[test]
fn render_check_says_which_release_the_tools_here_check_as() {
    let out = tempfile::tempdir().unwrap();
    let done = Run::new(&[
        "render",
        "--check",
        "--release",
        "trixie",
        "-i",
        "inventories/lemp.toml",
        "--out",
    ])
    .arg(out.path())
    .output()
    .status(0);
    // This machine runs Debian 12 (the tests' machine): it checks as bookworm, and says so.
    assert!(
        done.stdout().contains(
            "rendered for debian 13 (trixie), checked as rendered for debian 12 (bookworm)"
        ),
        "{}",
        done.stdout()
    );
    assert!(done.stdout().contains("php-fpm: ok"), "{}", done.stdout());
}

/// A user's application names its own health check: the checks apply runs and HAProxy's backend
/// check both use it.
#[test]
fn a_users_app_gets_the_health_check_the_inventory_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/health.php"),
        "<?php echo 'all good';\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(inventory("lb.toml"))
        .unwrap()
        .replace(
            "[database]",
            "app_dir = \"app\"\n[site.health_check]\npath = \"/health.php\"\nstatus = 200\nexpect = \"all good\"\n\n[database]",
        )
        .replace("\"secrets/", &format!("\"{}/inventories/secrets/", root().display()));
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, text).unwrap();
    let out = dir.path().join("out");
    Run::new(&["render", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .status(0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let web = manifest["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "web-01")
        .unwrap();
    assert_eq!(web["checks"][0]["path"], "/health.php");
    assert_eq!(web["checks"][0]["expect"], "all good");
    let cfg = std::fs::read_to_string(out.join("lb-01/etc/haproxy/haproxy.cfg")).unwrap();
    assert!(
        cfg.contains("http-check send meth GET uri /health.php hdr Host www.foobar.com"),
        "{cfg}"
    );
}

/// gixy-ng, the Nginx configuration auditor `tests/install-deps` puts in a venv of its own.
const GIXY: &str = "/var/tmp/provision-gixy/bin/gixy";

/// Every rendered Nginx configuration, laid over this machine's stock /etc/nginx (mime.types,
/// fastcgi_params, ...), passes gixy with no finding at all. The one finding a template answers
/// instead is the missing HSTS header where the inventory did not ask for it: the template says
/// why, and that is checked too.
#[test]
fn every_rendered_nginx_config_passes_the_auditor() {
    assert!(
        std::path::Path::new(GIXY).exists(),
        "{GIXY} is missing: run tests/install-deps"
    );
    let mut audited = 0;
    for inv in EXAMPLES
        .iter()
        .chain(&["lab-single.toml", "lab-lemp.toml", "lab-lb.toml"])
    {
        let out = tempfile::tempdir().unwrap();
        Run::new(&["render", "-i"])
            .arg(inventory(inv))
            .arg("--out")
            .arg(out.path())
            .output()
            .status(0);
        for host in std::fs::read_dir(out.path()).unwrap() {
            let rendered = host.unwrap().path().join("etc/nginx");
            if !rendered.join("nginx.conf").exists() {
                continue;
            }
            let tree = tempfile::tempdir().unwrap();
            let nginx = tree.path().join("nginx");
            let cp = |from: &std::path::Path| {
                let ok = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(from)
                    .arg(&nginx)
                    .status()
                    .unwrap();
                assert!(ok.success());
            };
            cp(std::path::Path::new("/etc/nginx/."));
            std::fs::remove_file(nginx.join("sites-enabled/default")).ok();
            std::fs::create_dir_all(&nginx).unwrap();
            cp(&rendered.join("."));
            let site: String = std::fs::read_dir(nginx.join("sites-available"))
                .unwrap()
                .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
                .collect();
            let answered = site.contains("No Strict-Transport-Security unless the inventory asks");
            let run = std::process::Command::new(GIXY)
                .args(["-f", "json"])
                .arg(nginx.join("nginx.conf"))
                .output()
                .unwrap();
            let found: serde_json::Value = serde_json::from_slice(&run.stdout)
                .unwrap_or_else(|e| panic!("{inv}: gixy said: {e}: {run:?}"));
            let left: Vec<&serde_json::Value> = found
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| !(answered && f["plugin"] == "hsts_header"))
                .collect();
            assert!(left.is_empty(), "{inv}: {}: {left:#?}", rendered.display());
            audited += 1;
        }
    }
    assert!(audited >= 7, "only {audited} Nginx configs audited");
}

/// `inventories/sites.toml` as its comments say to use it: WordPress made into a directory
/// beside it, then rendered and checked by the real tools (two pools, two vhosts, two zones, two
/// databases on one host), and its Nginx configs audited.
#[test]
fn the_many_sites_example_renders_and_passes_the_real_validators() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = std::process::Command::new(root().join("tests/apps/wordpress/prepare"))
        .arg(dir.path().join("wordpress"))
        .output()
        .unwrap();
    assert!(
        prepared.status.success(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    for f in [
        "secrets/example_db_password",
        "wordpress/wp-config.php.tera",
    ] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(inventory(f), to).unwrap();
    }
    let inv = dir.path().join("sites.toml");
    std::fs::copy(inventory("sites.toml"), &inv).unwrap();
    let out = dir.path().join("out");
    let done = Run::new(&["render", "--check", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .status(0);
    let stdout = done.stdout();
    for want in [
        "nginx: ok",
        "php-fpm: ok",
        "php-lint: ok",
        "mariadb: ok",
        "bind: ok",
    ] {
        assert!(
            stdout.contains(&format!("web-01: {want}")),
            "{want}:\n{stdout}"
        );
    }
    let host = out.join("web-01");
    for (path, holds) in [
        ("etc/php/8.4/fpm/pool.d/shop.example.conf", "user = shop"),
        ("etc/php/8.4/fpm/pool.d/blog.example.conf", "user = blog"),
        (
            "etc/nginx/sites-available/shop.example.conf",
            "server_name www.shop.example shop.example;",
        ),
        (
            "etc/nginx/sites-available/blog.example.conf",
            "server_name www.blog.example;",
        ),
        ("etc/bind/named.conf.local", "zone \"blog.example\""),
        (
            "var/lib/provision/sql/blog.sql",
            "GRANT ALL PRIVILEGES ON `blog`.* TO 'blog'@'localhost';",
        ),
    ] {
        let text = std::fs::read_to_string(host.join(path)).unwrap();
        assert!(text.contains(holds), "{path}: no {holds:?} in\n{text}");
    }
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"name\": \"shop\"") && manifest.contains("\"name\": \"blog\""));
}

/// An ACME site on the lamp stack: Apache answers the CA's HTTP-01 check on port 80 (not
/// redirected) and reads the certificate file provision-acme keeps, and `apache2 -t` accepts the
/// staged tree once the ACME script has put a placeholder there.
#[test]
fn an_acme_site_on_apache_answers_the_challenge_and_passes_apache() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory_copy("inventories/lamp.toml", dir.path(), &|t| {
        t.replace(
            "tls = { self_signed = true }",
            "tls = { acme = { contact = \"hostmaster@foobar.com\" } }",
        )
    });
    assert!(std::fs::read_to_string(&inv).unwrap().contains("acme = {"));
    let out = dir.path().join("out");
    let done = render_checked(&inv, &out);
    for want in ["acme: ok", "apache2: ok"] {
        assert!(done.stdout().contains(want), "{}", done.stdout());
    }
    let site =
        std::fs::read_to_string(out.join("web-01/etc/apache2/sites-available/foobar.com.conf"))
            .unwrap();
    for want in [
        "Alias /.well-known/acme-challenge/ /var/lib/provision-acme/challenges/foobar.com/.well-known/acme-challenge/",
        "RewriteCond %{REQUEST_URI} !^/\\.well-known/acme-challenge/",
        "SSLCertificateFile tls/foobar.com.acme.pem",
    ] {
        assert!(site.contains(want), "{want}\n{site}");
    }
    let conf =
        std::fs::read_to_string(out.join("web-01/etc/provision/acme/foobar.com.conf")).unwrap();
    assert!(
        conf.contains("DEPLOY=/etc/apache2/tls/foobar.com.acme.pem\nSERVICE=apache2\n"),
        "{conf}"
    );
}

/// An ACME site over DNS-01 with wildcards: the dns host serves a challenge zone for each name
/// the CA asks about (the TSIG key may change only their apexes' TXT records), the site's zone
/// delegates each, the web host's nsupdate has the same key; BIND and
/// Nginx accept the staged tree, and the key is masked in the rendered files.
#[test]
fn an_acme_site_over_dns01_gets_its_challenge_zone_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory_copy("inventories/acme.toml", dir.path(), &|t| {
        t.replace(
            "acme = { contact = \"hostmaster@foobar.com\" }",
            "acme = { contact = \"hostmaster@foobar.com\", challenge = \"dns-01\", names = [\"foobar.com\", \"*.foobar.com\", \"*.shop.foobar.com\"] }",
        )
    });
    let out = dir.path().join("out");
    let done = render_checked(&inv, &out);
    for want in ["acme: ok", "nginx: ok", "bind: ok"] {
        assert!(done.stdout().contains(want), "{}", done.stdout());
    }
    let read = |p: &str| std::fs::read_to_string(out.join("web-01").join(p)).unwrap();
    let policy = read("etc/bind/named.conf.acme");
    for want in [
        "zone \"_acme-challenge.foobar.com\" {",
        "zone \"_acme-challenge.shop.foobar.com\" {",
        "grant \"acme-foobar.com\" name _acme-challenge.foobar.com. TXT;",
        "grant \"acme-foobar.com\" name _acme-challenge.shop.foobar.com. TXT;",
    ] {
        assert!(policy.contains(want), "{want}\n{policy}");
    }
    assert_eq!(policy.matches("grant ").count(), 2, "{policy}");
    assert!(read("etc/bind/named.conf.local").contains("include \"/etc/bind/named.conf.acme\";"));
    let zone = read("etc/bind/db.foobar.com");
    for want in [
        "_acme-challenge IN NS ns1.foobar.com.",
        "_acme-challenge.shop IN NS ns1.foobar.com.",
    ] {
        assert!(zone.contains(want), "{want}\n{zone}");
    }
    for key in [
        "etc/bind/provision-acme-foobar.com.key",
        "etc/provision/acme/foobar.com.tsig",
    ] {
        assert!(
            read(key).contains("secret \"<secret site.tls.acme.tsig hidden"),
            "{key}: {}",
            read(key)
        );
    }
    let conf = read("etc/provision/acme/foobar.com.conf");
    assert!(
        conf.contains("CHALLENGE=dns-01\n")
            && conf.contains(
                "DNS_ZONES='_acme-challenge.foobar.com _acme-challenge.shop.foobar.com'\n"
            ),
        "{conf}"
    );
}
