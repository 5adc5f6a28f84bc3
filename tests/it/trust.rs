//! End-to-end, issue 22: a TLS key the user gives reaches no output (plan, `--json`, the saved
//! plan, apply, `-v`, render), and no application config file that holds a secret is served.

use crate::lab::*;
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// Makes `NAME.key` (EC P-256) and `NAME.crt` (self-signed for www.foobar.com) in `dir` with the
/// openssl tool, as a user would; the key file's text.
fn make_certificate(dir: &Path, name: &str) -> String {
    let (key, crt) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "90"])
        .args(["-subj", "/CN=www.foobar.com"])
        .args(["-addext", "subjectAltName=DNS:www.foobar.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(key).unwrap()
}

/// The inventory's `tls` line set to the certificate `name` made by `make_certificate`.
fn give_certificate(inv: &Path, dir: &Path, name: &str) {
    let text = std::fs::read_to_string(inv).unwrap();
    let old = text
        .lines()
        .find(|l| l.starts_with("tls = "))
        .unwrap()
        .to_string();
    let new = format!(
        "tls = {{ certificate = \"{}/{name}.crt\", key = \"{}/{name}.key\" }}",
        dir.display(),
        dir.display()
    );
    std::fs::write(inv, text.replace(&old, &new)).unwrap();
}

/// The base64 lines of PEM private keys.
fn key_lines(pems: &[&str]) -> Vec<String> {
    pems.iter()
        .flat_map(|p| p.lines())
        .filter(|l| !l.starts_with("-----") && !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// `text` (what `what` printed or wrote) holds no line of the keys and no PEM key block.
fn assert_no_key(what: &str, text: &str, keys: &[&str]) {
    assert!(
        !text.contains("PRIVATE KEY"),
        "{what} shows a private key:\n{text}"
    );
    for l in key_lines(keys) {
        assert!(
            !text.contains(&l),
            "{what} shows a line of the private key ({l}):\n{text}"
        );
    }
}

fn assert_run_shows_no_key(what: &str, done: &Done, keys: &[&str]) {
    assert_no_key(&format!("{what} (stdout)"), &done.stdout(), keys);
    assert_no_key(&format!("{what} (stderr)"), &done.stderr(), keys);
    assert_no_secret(done);
}

/// The key part of the certificate file provision put on the host: what it would print if it
/// printed the file.
fn key_on_host(addr: &str) -> String {
    ssh(
        addr,
        "sed -n '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/p' /etc/nginx/tls/foobar.com.pem",
    )
}

/// A certificate and key of the user's on a fresh LEMP host: plan, `plan --json`, `plan --out`
/// (a file only its owner can read), `apply --plan -v`, then a new key (the plan's diff has the
/// host's old key on one side and the new key on the other), `apply --json` and `render`: none
/// shows the key, whole or a line of it. The site then serves the given certificate.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_a_given_tls_key_reaches_no_output() {
    let (addr, host) = ("198.18.0.102", "e2e-tlskey");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = own_host(d, host, addr, "plain", true);
    let i = inv.to_string_lossy().into_owned();
    let one = make_certificate(d, "one");
    give_certificate(&inv, d, "one");

    let done = Run::new(&["plan", "-i", &i]).output().status(2);
    // The certificate file's diff is shown, its key masked.
    assert!(
        done.stdout().contains("+<secret site.tls.key hidden>"),
        "{}",
        done.stdout()
    );
    assert_run_shows_no_key("plan", &done, &[&one]);
    let done = Run::new(&["plan", "-i", &i, "--json", "-v"])
        .output()
        .status(2);
    assert_run_shows_no_key("plan --json -v", &done, &[&one]);
    let saved = d.join("plan.json");
    let done = Run::new(&["plan", "-i", &i, "--out"])
        .arg(&saved)
        .output()
        .status(2);
    assert_run_shows_no_key("plan --out", &done, &[&one]);
    assert_no_key(
        "the saved plan",
        &std::fs::read_to_string(&saved).unwrap(),
        &[&one],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the saved plan's mode is {mode:o}");

    let done = Run::new(&["apply", "-i", &i, "-v", "--plan"])
        .arg(&saved)
        .output()
        .status(0);
    assert_run_shows_no_key("apply --plan -v", &done, &[&one]);
    // The key provision wrote is the user's (re-encoded or not): what a leak would show.
    let written = key_on_host(addr);
    assert!(written.contains("BEGIN PRIVATE KEY"), "{written}");
    let crt = d.join("one.crt").to_string_lossy().into_owned();
    let head = curl_verified(
        addr,
        &[
            "--cacert",
            &crt,
            "-D",
            "-",
            "-o",
            "/dev/null",
            "https://www.foobar.com/",
        ],
    );
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/2 200"),
        "{head}"
    );

    // A new key: the diff of the certificate file has the old key (on the host) and the new one.
    let two = make_certificate(d, "two");
    give_certificate(&inv, d, "two");
    let keys = [one.as_str(), two.as_str(), written.as_str()];
    let done = Run::new(&["plan", "-i", &i]).output().status(2);
    assert!(
        done.stdout().contains("/etc/nginx/tls/foobar.com.pem"),
        "{}",
        done.stdout()
    );
    assert_run_shows_no_key("plan of a new key", &done, &keys);
    let done = Run::new(&["plan", "-i", &i, "--json"]).output().status(2);
    assert_run_shows_no_key("plan --json of a new key", &done, &keys);
    let done = Run::new(&["apply", "-i", &i, "--json"]).output().status(0);
    assert_run_shows_no_key("apply --json", &done, &keys);
    let crt = d.join("two.crt").to_string_lossy().into_owned();
    curl_verified(
        addr,
        &[
            "--cacert",
            &crt,
            "-o",
            "/dev/null",
            "https://www.foobar.com/",
        ],
    );

    // The host's own logs of the runs (tool output) hold no key either.
    let logs = ssh(addr, "cat /var/lib/provision/run/*.log");
    assert!(!logs.is_empty());
    assert_no_key("the run logs on the host", &logs, &keys);

    let out = d.join("render");
    let done = Run::new(&["render", "-i", &i, "--out"])
        .arg(&out)
        .output()
        .status(0);
    assert_run_shows_no_key("render", &done, &keys);
    for (path, content) in tree(&out) {
        assert_no_key(&path, &String::from_utf8_lossy(&content), &keys);
    }
    lab(&["down", &i]);
}

/// A one-host inventory in `dir` with the application `app` of `dir` (its `public` line given or
/// empty) and one config file at `path`: the `path` line is line 9, its value at column 8.
fn config_inventory(dir: &Path, stack: &str, public: &str, path: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("pw"), "pw\n").unwrap();
    std::fs::create_dir_all(dir.join("app/public")).unwrap();
    std::fs::write(dir.join("app/index.php"), "<?php echo 1;\n").unwrap();
    std::fs::write(dir.join("app/public/index.php"), "<?php echo 1;\n").unwrap();
    std::fs::write(
        dir.join("c.tera"),
        "{\"db\": {{ db.password | json_string }}}\n",
    )
    .unwrap();
    let text = format!(
        "[site]\ndomain = \"foobar.com\"\nstack = \"{stack}\"\n[site.app]\nsource = \"app\"\n{public}\n\
         [[site.app.config]]\ntemplate = \"c.tera\"\npath = \"{path}\"\n\
         [database]\nname = \"foobar\"\nuser = \"foobar\"\npassword_file = \"pw\"\n\
         [dns]\nsoa_contact = \"hostmaster@foobar.com\"\n\
         [[hosts]]\nname = \"web-01\"\npublic_address = \"8.8.8.8\"\nroles = [\"web\", \"app\", \"db\", \"dns\"]\nssh = {{ address = \"198.18.0.10\" }}\n"
    );
    let inv = dir.join("inv.toml");
    std::fs::write(&inv, text).unwrap();
    inv
}

/// A config file (it holds the database password) where the web server would send it as it is is
/// refused before any host is touched, at its `path`, in every stack; outside the served
/// directory, or as a `.php` file (PHP runs it), it is taken.
#[test]
fn an_app_config_the_web_server_would_send_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = "public = \"public\"";
    for stack in ["lemp", "lamp", "nginx-apache"] {
        for (public, path, why) in [
            (
                "",
                "config.json",
                "(the release itself: site.app.public is not set)",
            ),
            (
                "",
                ".env",
                "(the release itself: site.app.public is not set)",
            ),
            (
                "",
                "config/db.PHP",
                "(the release itself: site.app.public is not set)",
            ),
            (
                public,
                "public/config.json",
                "(site.app.public = \"public\")",
            ),
            (
                public,
                "public/.config/app.json",
                "(site.app.public = \"public\")",
            ),
        ] {
            let inv = config_inventory(d, stack, public, path);
            let done = Run::new(&["validate", "-i"]).arg(&inv).output().status(4);
            let want = format!(
                "inv.toml:9:8: site.app.config[0].path: found \"{path}\", inside the directory the web server serves {why}, which would send the file as it is, secrets included; allowed: a path outside the served directory"
            );
            assert!(
                done.stderr().contains(&want),
                "{stack} {path}:\n{}",
                done.stderr()
            );
            assert!(done
                .stderr()
                .contains("or a \".php\" file, which PHP runs instead of sending"));
        }
        for (public, path) in [
            ("", "wp-config.php"),
            ("", "config/db.php"),
            (public, "config.json"),
            (public, ".env"),
            (public, "public/settings.php"),
        ] {
            let inv = config_inventory(d, stack, public, path);
            Run::new(&["validate", "-i"]).arg(&inv).output().status(0);
        }
    }
}

/// The config files inside the served directory (PHP ones) are refused by the web server by path
/// as well, in front of PHP: never a page, and never its source should PHP not run it.
#[test]
fn the_web_server_refuses_the_config_files_it_serves_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (stack, file, want) in [
        (
            "lemp",
            "etc/nginx/sites-available/foobar.com.conf",
            "location = /settings.php {\n        deny all;\n    }",
        ),
        (
            "nginx-apache",
            "etc/nginx/sites-available/foobar.com.conf",
            "location = /settings.php {\n        deny all;\n    }",
        ),
        (
            "nginx-apache",
            "etc/apache2/sites-available/foobar.com.conf",
            "<Location \"/settings.php\">\n        Require all denied\n    </Location>",
        ),
        (
            "lamp",
            "etc/apache2/sites-available/foobar.com.conf",
            "<Location \"/settings.php\">\n        Require all denied\n    </Location>",
        ),
    ] {
        let inv = config_inventory(d, stack, "public = \"public\"", "public/settings.php");
        let out = d.join(format!("out-{stack}"));
        let done = Run::new(&["render", "--check", "-i"])
            .arg(&inv)
            .arg("--out")
            .arg(&out)
            .output()
            .status(0);
        assert!(!done.stdout().contains("FAILED"), "{}", done.stdout());
        let conf = std::fs::read_to_string(out.join("web-01").join(file)).unwrap();
        assert!(conf.contains(want), "{stack}: {conf}");
        // A config outside the served directory has no rule: no URL reaches it.
        let inv = config_inventory(d, stack, "public = \"public\"", "config.json");
        Run::new(&["render", "-i"])
            .arg(&inv)
            .arg("--out")
            .arg(&out)
            .output()
            .status(0);
        let conf = std::fs::read_to_string(out.join("web-01").join(file)).unwrap();
        assert!(!conf.contains("config.json"), "{stack}: {conf}");
    }
}

/// The application of `lab_app_configs_*`: its page (in `public`) says whether it reads the same
/// password from its two config files, `config.json` beside `public` and `public/settings.php`.
fn write_config_app(dir: &Path) {
    let public = dir.join("app/public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(
        public.join("index.php"),
        "<?php\n$c = json_decode(file_get_contents(__DIR__ . '/../config.json'), true);\n\
         $s = require __DIR__ . '/settings.php';\n\
         echo ($c['db'] !== '' && $c['db'] === $s['db']) ? \"configs ok\\n\" : \"configs differ\\n\";\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json.tera"),
        "{\"db\": {{ db.password | json_string }}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("settings.php.tera"),
        "<?php\nreturn ['db' => {{ db.password | php_string }}];\n",
    )
    .unwrap();
}

/// The lab inventory `inv` with the application of `write_config_app`, `config.json` at `json`.
fn with_config_app(inv: &Path, dir: &Path, json: &str) {
    let text = std::fs::read_to_string(inv).unwrap();
    // [site.app] goes at the end of the [site] table, in place of an earlier one.
    let (site, rest) = text.split_once("\n[database]").unwrap();
    let site = site.split("\n[site.app]").next().unwrap();
    let app = format!(
        "\n[site.app]\nsource = \"{}\"\npublic = \"public\"\n\
         [[site.app.config]]\ntemplate = \"{}\"\npath = \"{json}\"\n\
         [[site.app.config]]\ntemplate = \"{}\"\npath = \"public/settings.php\"\n",
        dir.join("app").display(),
        dir.join("config.json.tera").display(),
        dir.join("settings.php.tera").display(),
    );
    std::fs::write(inv, format!("{site}{app}\n[database]{rest}")).unwrap();
}

/// GET `path` as sent (no `..` folding by curl), following nothing: status and body.
fn get_as_is(addr: &str, path: &str) -> (String, String) {
    let out = curl(
        addr,
        &[
            "--path-as-is",
            "-w",
            "\n%{http_code}",
            &format!("https://www.foobar.com{path}"),
        ],
    );
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.to_string(), body.to_string())
}

/// A config file holding the password, in the served directory or not, on a fresh host of `inv`:
/// `config.json` in `public` is refused before the host is touched (apply exits 4); beside
/// `public` the application reads it and no URL reaches it; `public/settings.php` (PHP) is read by
/// the application and refused by the web server by path. No answer carries the password.
fn app_configs(dir: &Path, inv: &Path, addr: &str) {
    let i = inv.to_string_lossy().into_owned();
    write_config_app(dir);
    with_config_app(inv, dir, "public/config.json");
    let done = Run::new(&["apply", "-i", &i]).output().status(4);
    assert!(
        done.stderr().contains("site.app.config[0].path: found \"public/config.json\", inside the directory the web server serves"),
        "{}",
        done.stderr()
    );
    assert_eq!(
        ssh(
            addr,
            "test -e /etc/provision && echo touched || echo untouched"
        )
        .trim(),
        "untouched"
    );

    with_config_app(inv, dir, "config.json");
    Run::new(&["apply", "-i", &i]).output().status(0);
    let (status, body) = page(addr);
    assert_eq!((status, body.trim()), (200, "configs ok"));
    let secret = secret();
    let tail = &secret[secret.len() - 8..];
    // Paths that are not files get the front controller's page: never the file.
    for path in [
        "/config.json",
        "/../config.json",
        "/settings.php",
        "/public/settings.php",
    ] {
        let (status, body) = get_as_is(addr, path);
        println!("{addr} {path}: {status}");
        assert!(
            !body.contains(tail) && !body.contains("\"db\""),
            "{path} ({status}) shows the config: {body}"
        );
    }
    assert_eq!(get_as_is(addr, "/settings.php").0, "403");
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_app_configs_are_not_served_lemp_plain() {
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-appconf", "198.18.0.103", "plain", true);
    app_configs(dir.path(), &inv, "198.18.0.103");
    lab(&["down", &inv.to_string_lossy()]);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_app_configs_are_not_served_lamp_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, host) = ("198.18.0.104", "e2e-appconf-lamp");
    let inv = crate::app::stack_host(
        dir.path(),
        "inventories/lab-lamp.toml",
        "198.18.0.12",
        host,
        addr,
    );
    app_configs(dir.path(), &inv, addr);
    lab(&["down", &inv.to_string_lossy()]);
}

/// A config template may write a secret as it is or through the escaping filters, which the
/// masking of every output knows; one that writes it in another form (which plan's diff would show
/// whole) is refused by validate, naming the line.
#[test]
fn a_config_template_that_writes_a_secret_in_an_unmaskable_form_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inv = config_inventory(d, "lemp", "", "config/db.php");
    for (template, ok) in [
        ("<?php\nreturn {{ db.password | php_string }};\n", true),
        ("DB_PASSWORD={{ db.password }}\nSALT={{ app.salt }}\n", true),
        (
            "{\"url\": {{ (\"mysql://u:\" ~ db.password ~ \"@h/d\") | json_string }}}\n",
            true,
        ),
        ("# {{ db.password | length }} characters\n", true),
        ("<?php\n// ok\n$p = '{{ db.password | upper }}';\n", false),
        (
            "<?php\n// ok\n$s = '{{ app.salt | truncate(length=16, end=\"\") }}';\n",
            false,
        ),
        (
            "<?php\n// ok\n$p = '{{ db.password | escape_xml }}';\n",
            false,
        ),
    ] {
        std::fs::write(d.join("c.tera"), template).unwrap();
        let done = Run::new(&["validate", "-i"]).arg(&inv).output();
        if ok {
            assert_eq!(done.code(), 0, "{template}\n{}", done.stderr());
        } else {
            let want = "c.tera writes a secret in a form provision cannot mask (line 3 of config/db.php), so plan would show it; allowed: a secret as it is, or through php_string, json_string, sql_string, shell_word or cnf_string";
            assert!(
                done.code() != 0 && done.stderr().contains(want),
                "{template}\n{}",
                done.stderr()
            );
        }
    }
}
