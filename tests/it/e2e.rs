//! End-to-end: the real binary against real Debian hosts of the lab (tests/lab), over SSH with
//! host-key checking on. These tests need root and the lab's dependencies; `tests/run` provides both
//! and runs them with `--ignored`. Each test starts its hosts fresh, so a run always applies from
//! scratch.

use crate::lab::*;
use crate::util::*;
use std::path::Path;
use std::process::Command;

/// The whole life of one stack on one fresh lab host.
fn lifecycle(inventory: &str, addr: &str, broken_template: &str, drift_file: &str) {
    let inv = inventory.to_string();
    lab(&["down", &inv]);
    lab(&["up", &inv]);

    // From scratch: packages, configs, database, services, then the health checks pass.
    let done = Run::new(&["apply", "-i", &inv]).output().status(0);
    assert_no_secret(&done);
    assert!(
        done.stdout()
            .contains("check ok: HTTP GET https://www.foobar.com/"),
        "{}",
        done.stdout()
    );
    let (status, body) = page(addr);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("Hello from MariaDB: the database of foobar.com answers"),
        "{body}"
    );
    assert_eq!(dig(addr), addr);
    tls_is_served(addr);
    status_on_loopback_only(&inv, addr);
    nothing_about_the_servers_to_strangers(addr);
    the_host_is_hardened(addr, &done.stderr());
    php_workers_fit_the_host(addr);

    // Converged: a second apply changes nothing and plan agrees.
    let done = Run::new(&["apply", "-i", &inv]).output().status(0);
    assert!(done.stdout().contains("no changes"), "{}", done.stdout());
    Run::new(&["plan", "-i", &inv]).output().status(0);

    // Drift by hand is shown as a diff and repaired.
    ssh(addr, &format!("echo '# edited by hand' >> {drift_file}"));
    let done = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        done.stdout().contains("-# edited by hand"),
        "{}",
        done.stdout()
    );
    assert_no_secret(&done);
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    assert!(!ssh(addr, &format!("cat {drift_file}")).contains("edited by hand"));

    // A database account dropped by hand is noticed and created again. Meanwhile the page fails
    // without telling visitors why; the server's error log has the reason.
    ssh(addr, "mariadb -e \"DROP USER 'foobar'@'localhost'\"");
    let (status, body) = page(addr);
    assert!(
        status == 500
            && body.contains("the database is not available")
            && !body.contains("Access denied"),
        "{status} {body}"
    );
    let logged = ssh(
        addr,
        "grep -h 'foobar.com demo page: database error' /var/log/php-sites/*/error.log 2>/dev/null; true",
    );
    assert!(logged.contains("Access denied"), "not logged: {logged:?}");
    let done = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        done.stdout()
            .contains("the database account 'foobar'@'localhost' does not exist"),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i", &inv]).output().status(0);
    assert!(page(addr).1.contains("Hello from MariaDB"));
    let done = Run::new(&["check", "-i", &inv]).output().status(0);
    assert!(
        done.stdout()
            .contains("ok: HTTP GET https://www.foobar.com/")
            && done.stdout().contains("ok: DNS A www.foobar.com"),
        "{}",
        done.stdout()
    );

    // An override that yields an invalid config is refused before anything goes live.
    let before = ssh(addr, &format!("sha256sum {drift_file}"));
    let tpl = tempfile::tempdir().unwrap();
    let target = tpl.path().join(broken_template);
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let orig = std::fs::read_to_string(root().join("templates").join(broken_template)).unwrap();
    std::fs::write(&target, orig + "\nthis_is_not_a_directive here;\n").unwrap();
    let done = Run::new(&["apply", "-i", &inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(1);
    assert!(
        done.stderr().contains("validation failed"),
        "{}",
        done.stderr()
    );
    assert_eq!(
        ssh(addr, &format!("sha256sum {drift_file}")),
        before,
        "the live config changed"
    );
    assert_eq!(page(addr).0, 200);
    Run::new(&["plan", "-i", &inv]).output().status(0);

    // A page that no longer shows the database row fails the health check: the previous files come
    // back, the services are reloaded, and the site keeps answering.
    let tpl = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tpl.path().join("app")).unwrap();
    std::fs::write(
        tpl.path().join("app/index.php"),
        "<?php echo 'a valid page without the row';\n",
    )
    .unwrap();
    let done = Run::new(&["apply", "-i", &inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(1);
    assert!(
        done.stderr().contains("health check failed")
            && done.stderr().contains("the health checks pass again"),
        "{}",
        done.stderr()
    );
    let (status, body) = page(addr);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{status} {body}"
    );
    // The host stays marked: plan says so and exits 2 until an apply confirms it with its checks.
    let done = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        done.stdout().contains("needs attention")
            && done.stdout().contains("failed its health checks"),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);

    history_and_rollback(&inv, addr);
    password_change_rolled_back_with_the_database(&inv, addr);
    saved_plans(&inv, addr, drift_file);

    // Reloads left pending by an apply that was cut off are done by the next one.
    ssh(
        addr,
        "printf 'reload nginx\\n' > /var/lib/provision/pending",
    );
    let probe = if inventory.contains("lamp") {
        "reload apache2"
    } else {
        "reload nginx"
    };
    if probe == "reload apache2" {
        ssh(
            addr,
            "printf 'reload apache2\\n' > /var/lib/provision/pending",
        );
    }
    let done = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        done.stdout()
            .contains(&format!("* {probe}: left pending by an interrupted apply")),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);

    // The zone serial is learned from the host and moves only when the records change.
    let serial = || {
        ssh(addr, "grep -m1 serial /etc/bind/db.foobar.com")
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let first = serial();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join(&inv)).unwrap().replace(
        "\"secrets/",
        &format!("\"{}/inventories/secrets/", root().display()),
    );
    let changed = dir.path().join("inv.toml");
    std::fs::write(
        &changed,
        format!("{text}\n[[dns.records]]\nname = \"extra\"\ntype = \"A\"\nvalue = \"{addr}\"\n"),
    )
    .unwrap();
    let done = Run::new(&["plan", "-i"]).arg(&changed).output().status(2);
    assert!(
        done.stdout().contains("+extra IN A") && done.stdout().contains("reload named"),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i"]).arg(&changed).output().status(0);
    assert!(serial() > first);
    let soa = Command::new("dig")
        .args(["+short", &format!("@{addr}"), "foobar.com", "SOA"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&soa.stdout).contains(&serial().to_string()));
    Run::new(&["plan", "-i"]).arg(&changed).output().status(0);
    Run::new(&["apply", "-i", &inv]).output().status(0);

    // -v shows the remote commands, and still no secret.
    let done = Run::new(&["plan", "-v", "-i", &inv]).output().status(0);
    assert!(done.stderr().contains("$ sh -s"), "{}", done.stderr());
    assert_no_secret(&done);
    let done = Run::new(&["plan", "--json", "-i", &inv]).output().status(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    assert_eq!(
        v["plan"]["hosts"][0]["changes"].as_array().unwrap().len(),
        0
    );
    assert_no_secret(&done);
}

/// An inventory copy with absolute secret paths, `edit` applied, written into `dir`.
/// The web server and PHP name no version in their headers; BIND does not say its version and
/// recurses for nobody.
/// HTTPS as a client that trusts nothing but the host's own certificate sees it: `curl --cacert`
/// with the certificate read from the host gets the page with the database row and HSTS; HTTP
/// answers 301 to the same URL over HTTPS; TLS 1.1 is refused where 1.2 is taken (one client, only
/// the version differs); the key file is 0600 root and holds the certificate's key.
pub fn tls_is_served(addr: &str) {
    let file = ssh(
        addr,
        "ls /etc/nginx/tls/*.pem /etc/apache2/tls/*.pem /etc/haproxy/tls/*.pem 2>/dev/null; true",
    );
    let file = file.trim();
    assert_eq!(file.lines().count(), 1, "one certificate file: {file:?}");
    assert_eq!(
        ssh(addr, &format!("stat -c '%a %U' {file}")).trim(),
        "600 root"
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("site.crt");
    std::fs::write(&ca, ssh(addr, &format!("openssl x509 -in {file}"))).unwrap();
    let ca = ca.display().to_string();
    let curl = |args: &[&str]| curl_verified(addr, args);
    let got = curl(&["--cacert", &ca, "-D", "-", "https://www.foobar.com/"]);
    assert!(got.starts_with("HTTP/") && got.contains(" 200"), "{got}");
    assert!(
        got.contains("Hello from MariaDB: the database of foobar.com answers"),
        "{got}"
    );
    assert!(
        got.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{got}"
    );
    let moved = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        "http://www.foobar.com/a/b?c=d",
    ]);
    assert_eq!(moved, "301 https://www.foobar.com/a/b?c=d");
    let handshake = |version: &str| {
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("{addr}:443"),
                "-servername",
                "www.foobar.com",
            ])
            .args([version, "-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl runs")
            .status
            .success()
    };
    assert!(handshake("-tls1_2"), "TLS 1.2 refused by {addr}");
    assert!(!handshake("-tls1_1"), "TLS 1.1 accepted by {addr}");
}

/// The PHP workers are as many as the host's memory holds, with the reason beside the number:
/// PHP-FPM's pool, or with mod_php (nginx-apache) Apache's prefork processes, which Apache runs
/// with those limits.
fn php_workers_fit_the_host(addr: &str) {
    let mpm = ssh(
        addr,
        "cat /etc/apache2/conf-enabled/provision-mpm.conf 2>/dev/null; true",
    );
    let (text, key) = if mpm.is_empty() {
        (
            ssh(addr, "cat /etc/php/*/fpm/pool.d/foobar.com.conf"),
            "pm.max_children = ",
        )
    } else {
        let mpms = ssh(addr, "apache2ctl -M 2>/dev/null | grep mpm_");
        assert!(mpms.contains("mpm_prefork_module"), "{mpms}");
        (mpm, "MaxRequestWorkers ")
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key}in {text}"));
    let n: u64 = lines[i][key.len()..].parse().unwrap();
    assert!((5..=256).contains(&n), "{text}");
    assert!(lines[i - 1].contains("MiB of memory"), "{text}");
}

/// `[hardening]` after the first apply: sshd's new settings were confirmed by a new connection,
/// sshd takes keys only (and says so to a client that offers none), security updates are set up
/// with the host's reboot slot, the network namespace ignores redirects, no core dumps.
fn the_host_is_hardened(addr: &str, first_apply: &str) {
    assert!(
        first_apply.lines().any(|l| l
            .contains("a new SSH connection got through: sshd's new settings")
            && l.ends_with(" confirmed")),
        "{first_apply}"
    );
    let sshd = ssh(addr, "sshd -T");
    for want in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "maxauthtries 3",
        "maxsessions 2",
        "allowtcpforwarding no",
        "x11forwarding no",
        "loglevel VERBOSE",
    ] {
        assert!(
            sshd.lines().any(|l| l == want),
            "no {want:?} in sshd -T:\n{sshd}"
        );
    }
    // OpenSSH 9 prints the old name of the setting, 10 the new one.
    assert!(
        sshd.lines()
            .any(|l| l == "permitrootlogin without-password"
                || l == "permitrootlogin prohibit-password"),
        "{sshd}"
    );
    // A client that offers no key is told that only keys are taken.
    let out = ssh_with(addr, &["-o", "PubkeyAuthentication=no"])
        .arg("true")
        .output()
        .expect("ssh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Permission denied (publickey)"),
        "{err}"
    );
    let apt = ssh(
        addr,
        "dpkg-query -W -f='${db:Status-Status}\n' unattended-upgrades && apt-config dump",
    );
    for want in [
        "installed",
        "APT::Periodic::Unattended-Upgrade \"1\";",
        "Unattended-Upgrade::Automatic-Reboot \"true\";",
        "Unattended-Upgrade::Automatic-Reboot-Time \"03:00\";",
    ] {
        assert!(apt.lines().any(|l| l == want), "no {want:?} in:\n{apt}");
    }
    assert_eq!(
        ssh(
            addr,
            "sysctl -n net.ipv4.conf.all.accept_redirects net.ipv4.conf.all.rp_filter; ulimit -Hc"
        ),
        "0\n1\n0\n"
    );
}

fn nothing_about_the_servers_to_strangers(addr: &str) {
    let run = |cmd: &str, args: &[&str]| {
        let out = std::process::Command::new(cmd)
            .args(args)
            .output()
            .expect("runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let headers = run(
        "curl",
        &[
            "-sI",
            "-H",
            "Host: www.foobar.com",
            &format!("http://{addr}/"),
        ],
    );
    let server = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("server:"))
        .unwrap_or("");
    assert!(
        !server.is_empty() && !server.chars().any(|c| c.is_ascii_digit()),
        "{headers}"
    );
    assert!(
        !headers.to_ascii_lowercase().contains("x-powered-by"),
        "{headers}"
    );
    let at = format!("@{addr}");
    let version = run(
        "dig",
        &["+short", "+time=2", &at, "version.bind", "chaos", "txt"],
    );
    assert!(!version.contains("9."), "version.bind: {version}");
    let recursion = run("dig", &["+time=2", "+tries=1", &at, "www.example.org", "A"]);
    assert!(recursion.contains("status: REFUSED"), "{recursion}");
}

/// GET http://127.0.0.1:8090PATH on the lab host itself (the status endpoints' address), over SSH.
fn loopback_get(addr: &str, path: &str) -> String {
    ssh(
        addr,
        &format!("python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8090{path}').read().decode())\""),
    )
}

/// The status endpoints for monitoring answer on the host's loopback (127.0.0.1:8090), and neither
/// that port nor the paths are reachable from outside.
fn status_on_loopback_only(inv: &str, addr: &str) {
    let text = std::fs::read_to_string(root().join(inv)).unwrap();
    let stack = text
        .lines()
        .find_map(|l| l.strip_prefix("stack = \""))
        .and_then(|l| l.split('"').next())
        .unwrap_or("")
        .to_string();
    let expected: &[(&str, &str)] = match stack.as_str() {
        // Each site's pool under its name (the lab's site is foobar.com's, named foobar-com).
        "lemp" | "nginx-apache" => &[
            ("/nginx_status", "Active connections"),
            ("/fpm-status/foobar-com", "pool:"),
            ("/fpm-ping/foobar-com", "pong"),
        ],
        "lamp" => &[
            ("/server-status?auto", "Scoreboard:"),
            ("/fpm-status/foobar-com", "pool:"),
            ("/fpm-ping/foobar-com", "pong"),
        ],
        other => panic!("{inv}: stack {other:?}"),
    };
    for (path, says) in expected {
        let got = loopback_get(addr, path);
        assert!(got.contains(says), "{addr} 127.0.0.1:8090{path}: {got}");
    }
    let outside: std::net::SocketAddr = format!("{addr}:8090").parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&outside, std::time::Duration::from_secs(2)).is_err(),
        "{outside} answers from outside"
    );
    for path in ["/fpm-status/foobar-com", "/nginx_status", "/server-status"] {
        let (_, body) = provision::health::http_get(
            format!("{addr}:80").parse().unwrap(),
            "www.foobar.com",
            path,
        )
        .unwrap();
        assert!(
            !body.contains("pool:")
                && !body.contains("Active connections")
                && !body.contains("Scoreboard"),
            "{path} through the site: {body}"
        );
    }
}

fn host_name(inv: &str) -> String {
    let text = std::fs::read_to_string(root().join(inv)).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["hosts"][0]["name"].as_str().unwrap().to_string()
}

/// Generations: an apply that changes the page is recorded; `rollback` undoes it, the page comes
/// back, the checks pass, and the rollback is a generation of its own.
fn history_and_rollback(inv: &str, addr: &str) {
    let host = host_name(inv);
    let tpl = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tpl.path().join("app")).unwrap();
    let page_v2 = std::fs::read_to_string(root().join("templates/app/index.php")).unwrap()
        + "<p id=\"v\">v2</p>\n";
    std::fs::write(tpl.path().join("app/index.php"), page_v2).unwrap();
    Run::new(&["apply", "-i", inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(0);
    assert!(page(addr).1.contains("v2"));
    let done = Run::new(&["history", "-i", inv, "--host", &host])
        .output()
        .status(0);
    let newest = done
        .stdout()
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        done.stdout().contains("apply") && done.stdout().contains("checked"),
        "{}",
        done.stdout()
    );
    let done = Run::new(&["rollback", "-i", inv, "--host", &host])
        .output()
        .status(0);
    assert!(
        done.stdout().contains("rolled back") && done.stdout().contains("check ok"),
        "{}",
        done.stdout()
    );
    let (status, body) = page(addr);
    assert!(
        status == 200 && !body.contains("v2") && body.contains("Hello from MariaDB"),
        "{body}"
    );
    let done = Run::new(&["history", "-i", inv, "--host", &host, "--json"])
        .output()
        .status(0);
    let v: serde_json::Value = serde_json::from_str(&done.stdout()).unwrap();
    let gens = v[&host].as_array().unwrap();
    let last = gens.last().unwrap();
    assert_eq!(last["kind"], "rollback");
    assert_eq!(last["status"], "checked");
    let undone = gens.iter().find(|g| g["id"] == newest.as_str()).unwrap();
    assert_eq!(undone["status"], "rolled-back");
    // Back at what the inventory says: nothing to do.
    Run::new(&["plan", "-i", inv]).output().status(0);
    let done = Run::new(&[
        "rollback",
        "-i",
        inv,
        "--host",
        &host,
        "--to",
        "G999999-nope",
    ])
    .output()
    .status(1);
    assert!(
        done.stderr().contains("no such generation") && done.stderr().contains("allowed:"),
        "{}",
        done.stderr()
    );
}

/// A new database password whose apply fails its health checks: the rollback puts the old
/// config.php back and runs the restored bootstrap again, so the application and the database
/// agree on the old password and the site answers.
fn password_change_rolled_back_with_the_database(inv: &str, addr: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("new_pw"), "An0ther'pa\"ss$\\;\n").unwrap();
    let changed = inventory_copy(inv, dir.path(), &|t| {
        t.replace(
            &format!("{}/inventories/secrets/lab_db_password", root().display()),
            &dir.path().join("new_pw").to_string_lossy(),
        )
    });
    let tpl = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tpl.path().join("app")).unwrap();
    std::fs::write(
        tpl.path().join("app/index.php"),
        "<?php echo 'no row here';\n",
    )
    .unwrap();
    let done = Run::new(&["apply", "-i"])
        .arg(&changed)
        .arg("--templates")
        .arg(tpl.path())
        .output()
        .status(1);
    assert!(
        done.stderr().contains("the health checks pass again"),
        "{}",
        done.stderr()
    );
    assert!(!done.stderr().contains("An0ther") && !done.stdout().contains("An0ther"));
    let (status, body) = page(addr);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{status} {body}"
    );
    Run::new(&["apply", "-i", inv]).output().status(0);
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// `plan --out` + `apply --plan`: exactly the plan runs; a plan that no longer matches the host,
/// was made for another inventory, is older than the host's newest generation, or was edited, is
/// refused with the host untouched.
fn saved_plans(inv: &str, addr: &str, drift_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("plan.json");
    let file = f.to_string_lossy().to_string();
    ssh(addr, &format!("echo '# drift' >> {drift_file}"));
    Run::new(&["plan", "-i", inv, "--out", &file])
        .output()
        .status(2);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(!text.contains(&secret()), "{text}");
    Run::new(&["apply", "-i", inv, "--plan", &file])
        .output()
        .status(0);
    Run::new(&["plan", "-i", inv]).output().status(0);

    // Older than the host's newest generation (the apply above made one).
    let done = Run::new(&["apply", "-i", inv, "--plan", &file])
        .output()
        .status(1);
    assert!(
        done.stderr().contains("newest generation"),
        "{}",
        done.stderr()
    );

    // The host changed after the plan was made.
    ssh(addr, &format!("echo '# drift' >> {drift_file}"));
    Run::new(&["plan", "-i", inv, "--out", &file])
        .output()
        .status(2);
    ssh(addr, &format!("echo '# more drift' >> {drift_file}"));
    let before = ssh(addr, &format!("sha256sum {drift_file}"));
    let done = Run::new(&["apply", "-i", inv, "--plan", &file])
        .output()
        .status(1);
    assert!(
        done.stderr().contains("does not match") && done.stderr().contains(drift_file),
        "{}",
        done.stderr()
    );
    assert_eq!(
        ssh(addr, &format!("sha256sum {drift_file}")),
        before,
        "the host was touched"
    );

    // Made for another inventory (another record), edited, or cut short.
    Run::new(&["plan", "-i", inv, "--out", &file])
        .output()
        .status(2);
    let other = inventory_copy(inv, dir.path(), &|t| {
        format!("{t}\n[[dns.records]]\nname = \"other\"\ntype = \"A\"\nvalue = \"{addr}\"\n")
    });
    let done = Run::new(&["apply", "-i"])
        .arg(&other)
        .args(&["--plan", &file])
        .output()
        .status(1);
    assert!(
        done.stderr().contains("does not match"),
        "{}",
        done.stderr()
    );
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replacen("\"update\"", "\"delete\"", 1)).unwrap();
    let done = Run::new(&["apply", "-i", inv, "--plan", &file])
        .output()
        .status(1);
    assert!(
        done.stderr().contains("changed after it was written"),
        "{}",
        done.stderr()
    );
    std::fs::write(&f, &text[..text.len() / 2]).unwrap();
    let done = Run::new(&["apply", "-i", inv, "--plan", &file])
        .output()
        .status(1);
    assert!(
        done.stderr().contains("not a readable plan file"),
        "{}",
        done.stderr()
    );
    assert_eq!(
        ssh(addr, &format!("sha256sum {drift_file}")),
        before,
        "the host was touched"
    );
    Run::new(&["apply", "-i", inv]).output().status(0);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_single_nginx_apache_on_systemd() {
    lifecycle(
        "inventories/lab-single.toml",
        "198.18.0.10",
        "apache/site.conf",
        "/etc/apache2/sites-available/foobar.com.conf",
    );
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lemp_on_a_plain_host() {
    lifecycle(
        "inventories/lab-lemp.toml",
        "198.18.0.11",
        "nginx/site.conf",
        "/etc/nginx/sites-available/foobar.com.conf",
    );
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lamp_on_systemd() {
    lifecycle(
        "inventories/lab-lamp.toml",
        "198.18.0.12",
        "apache/site.conf",
        "/etc/apache2/sites-available/foobar.com.conf",
    );
}

/// A copy of a single-host lab inventory for a Debian 13 host of its own: another name and
/// address, `release = "trixie"` (the lab builds its host from the trixie image; provision reads
/// the release from the host and refuses if the two differ).
fn on_trixie(inv: &str, from: &str, to: &str, dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join(inv)).unwrap();
    let name = host_name(inv);
    let text = text
        .replace(from, to)
        .replace(
            &format!("name = \"{name}\""),
            &format!("name = \"{name}13\"\nrelease = \"trixie\""),
        )
        .replace(
            "\"secrets/",
            &format!("\"{}/inventories/secrets/", root().display()),
        );
    assert!(text.contains("release = \"trixie\"") && !text.contains(from));
    let p = dir.join(format!("{name}13.toml"));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The lifecycle on a Debian 13 copy of a single-host lab inventory, on a host of its own.
fn lifecycle_on_trixie(inv: &str, from: &str, to: &str, broken_template: &str, drift_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let inv = on_trixie(inv, from, to, dir.path());
    lifecycle(&inv, to, broken_template, drift_file);
    lab(&["down", &inv]);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_single_nginx_apache_on_systemd_debian_13() {
    lifecycle_on_trixie(
        "inventories/lab-single.toml",
        "198.18.0.10",
        "198.18.0.13",
        "apache/site.conf",
        "/etc/apache2/sites-available/foobar.com.conf",
    );
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lemp_on_a_plain_host_debian_13() {
    lifecycle_on_trixie(
        "inventories/lab-lemp.toml",
        "198.18.0.11",
        "198.18.0.14",
        "nginx/site.conf",
        "/etc/nginx/sites-available/foobar.com.conf",
    );
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lamp_on_systemd_debian_13() {
    lifecycle_on_trixie(
        "inventories/lab-lamp.toml",
        "198.18.0.12",
        "198.18.0.15",
        "apache/site.conf",
        "/etc/apache2/sites-available/foobar.com.conf",
    );
}

/// The host of the host-key and lock tests: only read-only commands and a refused apply run there.
const SPARE: &str = "198.18.0.32";

fn spare_inventory(dir: &Path, known: &Path) -> std::path::PathBuf {
    let text = format!(
        "[site]\ndomain = \"foobar.com\"\nstack = \"lemp\"\n[database]\nname = \"foobar\"\nuser = \"foobar\"\n\
         password_file = \"{pw}\"\n[dns]\nsoa_contact = \"hostmaster@foobar.com\"\n[[hosts]]\nname = \"e2e-spare\"\n\
         public_address = \"{SPARE}\"\nroles = [\"web\", \"app\", \"db\", \"dns\"]\n\
         ssh = {{ address = \"{SPARE}\", identity_file = \"{KEY}\", known_hosts = \"{known}\" }}\n",
        pw = root().join("inventories/secrets/lab_db_password").display(),
        known = known.display()
    );
    let p = dir.join("inv.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn unknown_and_changed_host_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    own_host(dir.path(), "e2e-spare", SPARE, "plain", false);
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let inv = spare_inventory(dir.path(), &known);
    let done = Run::new(&["plan", "-i"]).arg(&inv).output().status(3);
    assert!(
        done.stderr().contains("unknown host key"),
        "{}",
        done.stderr()
    );

    // Trust on first use records the key; the next run verifies it.
    Run::new(&["plan", "--trust-new-hosts", "-i"])
        .arg(&inv)
        .output();
    assert!(std::fs::read_to_string(&known).unwrap().contains(SPARE));
    let done = Run::new(&["plan", "-i"]).arg(&inv).output();
    assert!(!done.stderr().contains("host key"), "{}", done.stderr());

    // A different key for the same address is always refused, even with --trust-new-hosts.
    let other = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(other.status.success());
    let pubkey = std::fs::read_to_string(dir.path().join("other.pub")).unwrap();
    let mut fields = pubkey.split_whitespace();
    std::fs::write(
        &known,
        format!(
            "{SPARE} {} {}\n",
            fields.next().unwrap(),
            fields.next().unwrap()
        ),
    )
    .unwrap();
    let done = Run::new(&["plan", "--trust-new-hosts", "-i"])
        .arg(&inv)
        .output()
        .status(3);
    assert!(
        done.stderr().contains("HOST KEY CHANGED"),
        "{}",
        done.stderr()
    );
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_second_concurrent_apply_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    own_host(dir.path(), "e2e-spare", SPARE, "plain", false);
    let inv = spare_inventory(dir.path(), Path::new(KNOWN));
    // Hold the host's lock the way a running apply does.
    let mut holder = ssh_to(SPARE)
        .arg("mkdir -p /var/lib/provision && exec 9>>/var/lib/provision/lock && flock -n 9 && echo \"$$ test@holder\" > /var/lib/provision/lock.info && echo LOCKED && exec cat > /dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first.trim(), "LOCKED");
    let done = Run::new(&["apply", "-i"]).arg(&inv).output().status(1);
    drop(holder.stdin.take());
    holder.wait().unwrap();
    assert!(
        done.stderr()
            .contains("another apply holds the lock on this host (test@holder)"),
        "{}",
        done.stderr()
    );
}

/// `--local`: provision copied onto a lab host converges the machine it runs on, without SSH.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn local_transport_converges_the_machine_it_runs_on() {
    const LOCAL: &str = "198.18.0.30";
    let dir = tempfile::tempdir().unwrap();
    let lab_inv = own_host(dir.path(), "e2e-local", LOCAL, "plain", true);
    let secret_path = root().join("inventories/secrets/lab_db_password");
    let inv = std::fs::read_to_string(&lab_inv)
        .unwrap()
        .replace(&*secret_path.to_string_lossy(), "/root/db_password");
    let copy = |from: &[u8], to: &str, mode: &str| {
        let mut child = ssh_to(LOCAL)
            .arg(format!("cat > {to} && chmod {mode} {to}"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), from).unwrap();
        assert!(child.wait().unwrap().success());
    };
    copy(
        &std::fs::read(env!("CARGO_BIN_EXE_provision")).unwrap(),
        "/root/provision",
        "755",
    );
    copy(inv.as_bytes(), "/root/inv.toml", "644");
    copy(secret().as_bytes(), "/root/db_password", "600");
    let out = ssh(
        LOCAL,
        "/root/provision apply --local -i /root/inv.toml 2>&1; echo exit=$?",
    );
    assert!(
        out.contains("exit=0") && out.contains("check ok: HTTP GET"),
        "{out}"
    );
    assert!(!out.contains("pa\"ss"), "{out}");
    let (status, body) = page(LOCAL);
    assert!(
        status == 200
            && body.contains("Served by <b id=\"host\">e2e-local</b>")
            && body.contains("Hello from MariaDB"),
        "{body}"
    );
    let out = ssh(
        LOCAL,
        "/root/provision plan --local -i /root/inv.toml 2>&1; echo exit=$?",
    );
    assert!(
        out.contains("No changes") && out.contains("exit=0"),
        "{out}"
    );
}

/// Kills the ssh-agent this test started, by its PID, however the test ends.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A non-root SSH user with passwordless sudo, authenticated by ssh-agent (no identity_file): the
/// whole apply runs through `sudo -n`.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn apply_as_a_sudo_user_with_a_key_from_ssh_agent() {
    const SUDO: &str = "198.18.0.31";
    let dir = tempfile::tempdir().unwrap();
    let lab_inv = own_host(dir.path(), "e2e-sudo", SUDO, "systemd", true);
    ssh(
        SUDO,
        "id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; install -d -m 700 -o deploy -g deploy ~deploy/.ssh; \
         install -m 600 -o deploy -g deploy /root/.ssh/authorized_keys ~deploy/.ssh/authorized_keys; \
         echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy; chmod 440 /etc/sudoers.d/deploy",
    );
    let sock = dir.path().join("agent.sock");
    let agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg("-q")
        .arg(KEY)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let inv = std::fs::read_to_string(&lab_inv)
        .unwrap()
        .replace("user = \"root\"", "user = \"deploy\"")
        .replace(&format!("identity_file = \"{KEY}\"\n"), "");
    assert!(
        !inv.contains("identity_file") && inv.contains("user = \"deploy\""),
        "{inv}"
    );
    let path = dir.path().join("inv.toml");
    std::fs::write(&path, inv).unwrap();
    let done = Run::new(&["apply", "-i"])
        .arg(&path)
        .env("SSH_AUTH_SOCK", &sock.to_string_lossy())
        .output()
        .status(0);
    assert_no_secret(&done);
    let (status, body) = page(SUDO);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{body}"
    );
    Run::new(&["plan", "-i"])
        .arg(&path)
        .env("SSH_AUTH_SOCK", &sock.to_string_lossy())
        .output()
        .status(0);
    // Without the agent there is no key to offer.
    let done = Run::new(&["plan", "-i"])
        .arg(&path)
        .env("SSH_AUTH_SOCK", "/nonexistent")
        .env("HOME", &dir.path().to_string_lossy())
        .output()
        .status(3);
    assert!(
        done.stderr().contains("authentication failed"),
        "{}",
        done.stderr()
    );
    drop(agent);
}

/// The load-balanced variant: HAProxy on lb over web1 and web2 (one systemd, one plain host), a
/// MariaDB primary and a replica that follows it, DNS www → the load balancer.
/// A ruleset that would cut SSH: it goes live, no new SSH connection gets through, and the apply
/// undoes it through the connection it has (its conntrack entry still lets it through) and exits
/// 1 saying so; the host's own guard would have put the previous ruleset back anyway. Then the
/// host is reachable again and converged.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_a_firewall_that_cuts_ssh_reverts_itself() {
    const ADDR: &str = "198.18.0.50";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-firewall", ADDR, "plain", true);
    let inv = inv.to_string_lossy().to_string();
    let done = Run::new(&["apply", "-i", &inv]).output().status(0);
    assert!(
        done.stderr()
            .contains("sshd's new settings and the new firewall confirmed"),
        "{}",
        done.stderr()
    );
    assert!(ssh(ADDR, "nft list table inet provision").contains("policy drop"));
    let tpl = tempfile::tempdir().unwrap();
    let rule = "        tcp dport {{ fw.ssh_port }} ip saddr @admin4 accept\n";
    template_override(tpl.path(), "nftables/nftables.conf", &|t| {
        t.replace(rule, "        # SSH forgotten\n")
    });
    let started = std::time::Instant::now();
    let done = Run::new(&["apply", "-i", &inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(1);
    eprintln!(
        "the cutting ruleset was undone after {:.1?}",
        started.elapsed()
    );
    let err = done.stderr();
    assert!(
        err.contains("the new firewall let no new SSH connection through")
            && err.contains("the previous files were restored"),
        "{err}"
    );
    // Reachable again by a new connection, the good ruleset live; the host stays marked until an
    // apply has checked it again, then nothing is left to do.
    assert!(ssh(ADDR, "nft list table inet provision").contains("ip saddr @admin4 accept"));
    let plan = Run::new(&["plan", "-i", &inv]).output().status(2);
    assert!(
        plan.stdout()
            .contains("the new firewall let no new SSH connection through"),
        "{}",
        plan.stdout()
    );
    Run::new(&["apply", "-i", &inv]).output().status(0);
    Run::new(&["plan", "-i", &inv]).output().status(0);
    lab(&["down", &inv]);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_haproxy_over_two_web_hosts_with_a_replica() {
    let _hosts = lb_hosts();
    let inv = "inventories/lab-lb.toml";
    lab(&["down", inv]);
    lab(&["up", inv]);
    let done = Run::new(&["apply", "-i", inv]).output().status(0);
    assert_no_secret(&done);
    // TLS ends on each balancer, with a certificate of its own; the web hosts serve plain HTTP
    // to them (and no certificate).
    tls_is_served("198.18.0.20");
    tls_is_served("198.18.0.26");
    assert_eq!(page("198.18.0.21").0, 200);
    assert!(ssh("198.18.0.21", "ls /etc/nginx/tls 2>&1; true").contains("No such file"));
    // Reboots for updates: hosts that stand in for each other take theirs 30 minutes apart.
    let at = |addr: &str| {
        let out = ssh(
            addr,
            "eval \"$(apt-config shell T Unattended-Upgrade::Automatic-Reboot-Time)\"; echo \"$T\"",
        );
        out.trim().to_string()
    };
    for (a, b) in [
        ("198.18.0.20", "198.18.0.26"),
        ("198.18.0.21", "198.18.0.22"),
        ("198.18.0.23", "198.18.0.24"),
    ] {
        assert_eq!(
            (at(a), at(b)),
            ("03:00".to_string(), "03:30".to_string()),
            "{a} {b}"
        );
    }
    // The firewall: the primary's MariaDB answers a web host and the replica, not this machine
    // nor a balancer.
    let mariadb: std::net::SocketAddr = "198.18.0.23:3306".parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&mariadb, std::time::Duration::from_secs(3)).is_err(),
        "MariaDB answers this machine"
    );
    let reach =
        "timeout 5 bash -c '</dev/tcp/198.18.0.23/3306' 2>/dev/null && echo open || echo closed";
    assert_eq!(ssh("198.18.0.21", reach).trim(), "open");
    assert_eq!(ssh("198.18.0.24", reach).trim(), "open");
    assert_eq!(ssh("198.18.0.20", reach).trim(), "closed");
    let mut served = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (status, body) = page("198.18.0.20");
        assert!(
            status == 200 && body.contains("Hello from MariaDB"),
            "{status} {body}"
        );
        let host = body
            .split("id=\"host\">")
            .nth(1)
            .and_then(|r| r.split('<').next())
            .unwrap_or("")
            .to_string();
        served.insert(host);
    }
    assert_eq!(served.into_iter().collect::<Vec<_>>(), ["web1", "web2"]);
    // www points at the floating address the two balancers share.
    assert_eq!(dig("198.18.0.20"), "198.18.0.19");
    // HAProxy's statistics on each balancer's loopback, not from outside.
    for lb in ["198.18.0.20", "198.18.0.26"] {
        let stats = loopback_get(lb, "/haproxy_status;csv");
        assert!(
            stats.contains("web-foobar-com,web1,") && stats.contains("web-foobar-com,web2,"),
            "{lb}: {stats}"
        );
        let outside: std::net::SocketAddr = format!("{lb}:8090").parse().unwrap();
        assert!(
            std::net::TcpStream::connect_timeout(&outside, std::time::Duration::from_secs(2))
                .is_err(),
            "{outside} answers from outside"
        );
    }
    let replica = "198.18.0.24";
    let mut status = String::new();
    for _ in 0..40 {
        status = ssh(replica, "mariadb -e 'SHOW SLAVE STATUS\\G'; mariadb -NBe 'SELECT message FROM foobar.provision_demo' 2>&1; true");
        if status.contains("Slave_SQL_Running: Yes") && status.contains("Hello from MariaDB") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes"),
        "{status}"
    );
    assert!(
        status.contains("Hello from MariaDB: the database of foobar.com answers"),
        "{status}"
    );
    let done = Run::new(&["apply", "-i", inv]).output().status(0);
    assert!(
        done.stdout().contains("Apply: no changes."),
        "{}",
        done.stdout()
    );
    Run::new(&["plan", "-i", inv]).output().status(0);
    plan_over_kept_connections_changes_nothing(inv);
    // `check` reads the services that report on themselves over SSH: each balancer's backends,
    // which balancer holds the floating address, the replica's threads.
    let checked = Run::new(&["check", "-i", inv]).output().status(0);
    let out = checked.stdout();
    for lb in ["lb", "lb2"] {
        for web in ["web1", "web2"] {
            assert!(
                out.contains(&format!("{lb}: ok: haproxy: backend {web}: UP")),
                "{out}"
            );
        }
    }
    assert_eq!(
        out.matches("holds the floating address 198.18.0.19")
            .count(),
        1,
        "{out}"
    );
    assert!(
        out.contains(
            "db2: ok: mariadb-replica: replication from 198.18.0.23: IO and SQL threads running"
        ),
        "{out}"
    );
    a_rolling_apply_under_load_fails_no_request(inv);
    a_failed_web_host_stops_the_roll_and_stays_out_of_the_pool(inv);
    a_web_host_joins_and_leaves_under_load_and_no_request_fails(inv);
    the_floating_address_moves_when_the_active_balancer_dies();
    the_floating_address_moves_when_haproxy_dies();
    a_replica_added_later_is_seeded_and_nobody_is_renumbered(inv);
}

/// The floating-address failover when HAProxy dies, alone, on the lab-lb hosts as they are (they
/// are brought up and converged first if need be).
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_the_floating_address_moves_within_2s_when_haproxy_dies() {
    let _hosts = lb_hosts();
    lab_lb_converged();
    the_floating_address_moves_when_haproxy_dies();
}

/// Every web host's config and application files change while 50 clients keep asking the site
/// through the floating address: the web hosts change one at a time, each drained in HAProxy first,
/// and not one request fails. Then a web host dies under load: failures only while HAProxy notices.
fn a_rolling_apply_under_load_fails_no_request(inv: &str) {
    use crate::load::Load;
    use std::time::{Duration, Instant};
    const VIP: &str = "198.18.0.19";
    let tpl = tempfile::tempdir().unwrap();
    for (name, edit) in [
        (
            "nginx/site.conf",
            (
                "    index index.php index.html;",
                "    index index.php index.html;\n    add_header X-Provision-Roll v2;",
            ),
        ),
        ("app/index.php", ("<h1>", "<!-- rolled: v2 --><h1>")),
    ] {
        let orig = std::fs::read_to_string(root().join("templates").join(name)).unwrap();
        assert!(orig.contains(edit.0), "{name}");
        let target = tpl.path().join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, orig.replacen(edit.0, edit.1, 1)).unwrap();
    }
    let start = Instant::now();
    let load = Load::start(VIP, 50, "Hello from MariaDB", Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(10));
    let done = Run::new(&["apply", "-i", inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(0);
    let applied = start.elapsed();
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let tally = load.finish();
    eprintln!(
        "rolling apply (both web hosts, config and code) done after {applied:.1?}; {}",
        tally.line("load through the floating address")
    );
    let stderr = done.stderr();
    let drained = stderr.lines().filter(|l| l.contains("drained web")).count();
    assert_eq!(
        drained, 4,
        "each web host drained on both balancers:\n{stderr}"
    );
    assert!(tally.ok > 1000 && tally.failed == 0, "{tally:?}");
    for addr in ["198.18.0.21", "198.18.0.22"] {
        assert!(page(addr).1.contains("rolled: v2"), "{addr} did not change");
    }

    // A web host vanishes under load: HAProxy takes it out after its checks fail.
    let load = Load::start(VIP, 50, "Hello from MariaDB", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    lab(&["cut", "web1"]);
    std::thread::sleep(Duration::from_secs(20));
    let tally = load.finish();
    // While it is gone, `check` says so, from both balancers, and fails.
    let checked = Run::new(&["check", "-i", inv, "--host", "lb", "--host", "lb2"])
        .output()
        .status(1);
    assert_eq!(
        checked
            .stdout()
            .matches("FAILED: haproxy: backend web1: DOWN")
            .count(),
        2,
        "{}",
        checked.stdout()
    );
    lab(&["heal", "web1"]);
    eprintln!(
        "web1 cut at 5 s: {}",
        tally.line("load through the floating address")
    );
    assert!(tally.ok > 0, "{tally:?}");
    // Failures only inside the detection window: checks every 1 s, down after 2 failures, then
    // the sessions it had are cut (their clients are answered at once, not after a timeout). The
    // window is 15 s: with 50 clients making a TLS handshake per request, the balancers share
    // the machine's two cores with them, and a mark-down was seen 7.5 s after the cut, and
    // 10.1 s with other tests and builds beside (every failure then at once, the cut sessions).
    assert!(
        tally.failures.iter().all(|(t, _)| *t >= 5.0 && *t < 20.0),
        "{tally:?}"
    );
    // Back to the inventory's own templates (rolling again).
    std::thread::sleep(Duration::from_secs(3));
    Run::new(&["apply", "-i", inv]).output().status(0);
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// A change that breaks web1 (its page answers 500 there only) is rolled out under load: web1 goes
/// first, drained, fails its direct checks, is rolled back and kept out of the pool (maint on both
/// balancers); the roll stops, web2 is not touched, apply exits 1 saying so, and no request fails.
/// The next good apply puts web1 back.
fn a_failed_web_host_stops_the_roll_and_stays_out_of_the_pool(inv: &str) {
    use crate::load::Load;
    use std::time::Duration;
    const VIP: &str = "198.18.0.19";
    const BALANCERS: [&str; 2] = ["198.18.0.20", "198.18.0.26"];
    let tpl = tempfile::tempdir().unwrap();
    let orig = std::fs::read_to_string(root().join("templates/app/index.php")).unwrap();
    std::fs::create_dir_all(tpl.path().join("app")).unwrap();
    std::fs::write(
        tpl.path().join("app/index.php"),
        format!(
            "<?php if (gethostname() === 'web1') {{ http_response_code(500); echo 'broken on purpose'; exit; }} ?><!-- roll-fail: v3 -->{orig}"
        ),
    )
    .unwrap();
    let state = |lb: &str, web: &str| {
        let stat = ssh(
            lb,
            "echo 'show stat' | socat stdio unix-connect:/run/haproxy/admin.sock",
        );
        stat.lines()
            .find(|l| l.starts_with(&format!("web-foobar-com,{web},")))
            .and_then(|l| l.split(',').nth(17))
            .unwrap_or("")
            .to_string()
    };
    let load = Load::start(VIP, 25, "Hello from MariaDB", Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2));
    let done = Run::new(&["apply", "-i", inv, "--templates"])
        .arg(tpl.path())
        .output()
        .status(1);
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    eprintln!(
        "web1 broken by a change: {}",
        tally.line("load through the floating address")
    );
    let said = format!("{}{}", done.stdout(), done.stderr());
    for line in [
        "kept out of service web1",
        "the roll stopped: web1 failed (check)",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    assert!(tally.ok > 200 && tally.failed == 0, "{tally:?}");
    for lb in BALANCERS {
        assert_eq!(state(lb, "web1"), "MAINT", "web1 on {lb}");
        assert_eq!(state(lb, "web2"), "UP", "web2 on {lb}");
    }
    // web1 rolled back, web2 never changed.
    for addr in ["198.18.0.21", "198.18.0.22"] {
        let (status, body) = page(addr);
        assert!(
            status == 200 && body.contains("Hello from MariaDB") && !body.contains("roll-fail"),
            "{addr}: {status} {body}"
        );
    }
    // The inventory's own templates: web1 is applied (it needs attention) and put back.
    Run::new(&["apply", "-i", inv]).output().status(0);
    for lb in BALANCERS {
        let mut st = String::new();
        for _ in 0..20 {
            st = state(lb, "web1");
            if st == "UP" {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert_eq!(st, "UP", "web1 on {lb} after the good apply");
    }
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// `plan --ssh-reuse` over every host of a converged inventory, twice (the masters opened, then
/// reused): nothing to change, so each host's commands went to that host (the same options reach
/// every host of a lab: only their addresses tell their masters apart).
fn plan_over_kept_connections_changes_nothing(inv: &str) {
    use std::os::unix::fs::PermissionsExt;
    let run = tempfile::tempdir().unwrap();
    std::fs::set_permissions(run.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let xdg = run.path().to_string_lossy().to_string();
    let plans: Vec<Done> = (0..2)
        .map(|_| {
            Run::new(&["plan", "--ssh-reuse", "60", "-i", inv])
                .env("XDG_RUNTIME_DIR", &xdg)
                .output()
        })
        .collect();
    let sockets: Vec<_> = std::fs::read_dir(run.path().join("provision-ssh"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    // The masters are this test's: told to end before anything is asserted.
    for s in &sockets {
        let _ = std::process::Command::new("ssh")
            .args(["-F", "none", "-S"])
            .arg(s)
            .args(["-O", "exit", "lab"])
            .output();
    }
    for p in plans {
        p.status(0);
    }
    let hosts = std::fs::read_to_string(root().join(inv))
        .unwrap()
        .matches("[[hosts]]")
        .count();
    assert_eq!(sockets.len(), hosts, "{sockets:?}");
}

/// A third web host added to the inventory joins the pool, and then leaves it, while 25 clients
/// ask each balancer directly (lb reloads through systemd, lb2 with `-x`, init-less): the
/// balancers' reloads refuse and reset nothing, the old processes finish the requests they hold,
/// and the leaving host is drained before its database access goes, so not one request fails
/// either way.
fn a_web_host_joins_and_leaves_under_load_and_no_request_fails(inv: &str) {
    use crate::load::Load;
    use std::time::Duration;
    const NEW: &str = "198.18.0.27";
    const BALANCERS: [&str; 2] = ["198.18.0.20", "198.18.0.26"];
    let dir = tempfile::tempdir().unwrap();
    let (with_web3, web3_only) =
        with_a_copy(dir.path(), inv, ("web2", "198.18.0.22"), ("web3", NEW));
    lab(&["down", &web3_only.to_string_lossy()]);
    lab(&["up", &web3_only.to_string_lossy()]);
    let under_load = |inventory: &std::path::Path, what: &str| {
        let loads: Vec<Load> = BALANCERS
            .iter()
            .map(|b| Load::start(b, 25, "Hello from MariaDB", Duration::from_secs(300)))
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        let done = Run::new(&["apply", "-i"]).arg(inventory).output().status(0);
        std::thread::sleep(Duration::from_secs(3));
        for (b, load) in BALANCERS.iter().zip(loads) {
            let tally = load.finish();
            eprintln!("{what}: {}", tally.line(&format!("load through {b}")));
            assert!(
                tally.ok > 200 && tally.failed == 0,
                "{what} via {b}: {tally:?}"
            );
        }
        done
    };
    under_load(&with_web3, "web3 joins");
    // It serves through each balancer, and both balancers see it up.
    for b in BALANCERS {
        let mut served = std::collections::BTreeSet::new();
        for _ in 0..9 {
            let body = page(b).1;
            if let Some(h) = body
                .split("id=\"host\">")
                .nth(1)
                .and_then(|r| r.split('<').next())
            {
                served.insert(h.to_string());
            }
        }
        assert!(served.contains("web3"), "{b} served only {served:?}");
    }
    let checked = Run::new(&["check", "-i"])
        .arg(&with_web3)
        .output()
        .status(0);
    assert_eq!(
        checked
            .stdout()
            .matches("haproxy: backend web3: UP")
            .count(),
        2,
        "{}",
        checked.stdout()
    );
    // The database hosts alone would stop serving web3 while the balancers, left out of the
    // run, still send it requests: refused before anything changes, saying how to run it.
    let alone = Run::new(&["apply", "-i"])
        .arg(root().join(inv))
        .args(&["--host", "db1"])
        .output()
        .status(1);
    let said = format!("{}{}", alone.stdout(), alone.stderr());
    assert!(
        said.contains("it would stop serving 198.18.0.27")
            && said.contains("select them too (--host lb,lb2,db1)"),
        "{said}"
    );
    let left = under_load(&root().join(inv), "web3 leaves");
    // Before anything else changes (the database stops serving web3 in the same run, which
    // would fail its health check and cut the requests it held), each balancer drains it.
    let said = format!("{}{}", left.stdout(), left.stderr());
    for b in ["lb", "lb2"] {
        let line = format!("{b}: took web3 out of service (drained)");
        assert!(said.contains(&line), "{line:?} not in:\n{said}");
    }
    for b in BALANCERS {
        let stat = ssh(
            b,
            "echo 'show stat' | socat stdio unix-connect:/run/haproxy/admin.sock",
        );
        assert!(
            !stat.contains("web-foobar-com,web3,"),
            "{b} still balances to web3: {stat}"
        );
    }
    // Its database account is gone from the primary, and the replica followed.
    for db in ["198.18.0.23", "198.18.0.24"] {
        let accounts = ssh(
            db,
            &format!("mariadb -NBe \"SELECT COUNT(*) FROM mysql.user WHERE Host = '{NEW}'\""),
        );
        assert_eq!(accounts.trim(), "0", "{db}");
    }
    lab(&["down", &web3_only.to_string_lossy()]);
}

/// The lab inventory `inv` with a copy of host `of` (name, address) added as `new` (name, address),
/// written in `dir`; and an inventory of the copy alone, for `lab up` and `lab down`.
fn with_a_copy(
    dir: &std::path::Path,
    inv: &str,
    of: (&str, &str),
    new: (&str, &str),
) -> (std::path::PathBuf, std::path::PathBuf) {
    let text = std::fs::read_to_string(root().join(inv)).unwrap().replace(
        "\"secrets/",
        &format!("\"{}/inventories/secrets/", root().display()),
    );
    let host = text
        .split("[[hosts]]")
        .find(|h| h.contains(&format!("name = \"{}\"", of.0)))
        .unwrap()
        .replace(of.0, new.0)
        .replace(of.1, new.1);
    let with = dir.join(format!("with-{}.toml", new.0));
    std::fs::write(&with, format!("{text}\n[[hosts]]{host}")).unwrap();
    let only = dir.join(format!("{}.toml", new.0));
    std::fs::write(&only, format!("[[hosts]]{host}")).unwrap();
    (with, only)
}

/// Two load balancers share 198.18.0.19: DNS www points at it, it serves the site, and when the
/// balancer holding it vanishes from the network, the other takes it over within seconds. The
/// requests that fail under load, and when, are counted.
fn the_floating_address_moves_when_the_active_balancer_dies() {
    use crate::load::Load;
    const VIP: &str = "198.18.0.19";
    let balancers = [("lb", "198.18.0.20"), ("lb2", "198.18.0.26")];
    assert_eq!(
        dig("198.18.0.20"),
        VIP,
        "www does not point at the floating address"
    );
    let (status, body) = page(VIP);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{body}"
    );
    let holds = |addr: &str| ssh(addr, "ip -o addr show").contains(&format!(" {VIP}/"));
    let holders: Vec<_> = balancers.iter().filter(|(_, a)| holds(a)).collect();
    assert_eq!(
        holders.len(),
        1,
        "exactly one balancer holds the address: {holders:?}"
    );
    let (name, _) = *holders[0];
    let (other_name, other) = *balancers.iter().find(|(n, _)| *n != name).unwrap();
    let load = Load::start(
        VIP,
        20,
        "Hello from MariaDB",
        std::time::Duration::from_secs(120),
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    lab(&["cut", name]);
    let cut = std::time::Instant::now();
    let mut moved = None;
    while cut.elapsed() < std::time::Duration::from_secs(30) {
        if holds(other) {
            moved = Some(cut.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    let tally = load.finish();
    lab(&["heal", name]);
    let moved = moved.unwrap_or_else(|| panic!("{other_name} never took the floating address"));
    eprintln!(
        "floating address: {name} cut, {other_name} held {VIP} after {moved:.1?}; {}",
        tally.line("load through the floating address")
    );
    assert!(moved < std::time::Duration::from_secs(10), "took {moved:?}");
    assert!(
        tally.ok > 0 && tally.failures.iter().all(|(t, _)| *t >= 3.0),
        "{tally:?}"
    );
    let (status, body) = page(VIP);
    assert!(
        status == 200 && body.contains("Hello from MariaDB"),
        "{body}"
    );
    // Back on the network, the first balancer does not take the address back (no flapping).
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(holds(other) && !holds(balancers.iter().find(|(n, _)| *n == name).unwrap().1));
}

/// Probes the site through `addr` over HTTPS, a new connection every 50 ms (each probe on its own
/// thread, so a hung one does not delay the next), until `stop`; then the probes' start (since
/// `t0`) and whether each got the page within a second.
fn probe_every_50ms(
    addr: &str,
    t0: std::time::Instant,
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<(f64, bool)> {
    use std::time::Duration;
    let at: std::net::SocketAddr = format!("{addr}:443").parse().unwrap();
    std::thread::scope(|s| {
        let mut probes = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let started = t0.elapsed();
            probes.push(s.spawn(move || {
                let got = provision::health::get(at, "www.foobar.com", "/", true);
                let ok = got
                    .is_ok_and(|a| a.status == 200 && a.body.contains("Hello from MariaDB"))
                    && t0.elapsed() - started < Duration::from_secs(1);
                (started.as_secs_f64(), ok)
            }));
            std::thread::sleep(Duration::from_millis(50));
        }
        probes.into_iter().map(|p| p.join().unwrap()).collect()
    })
}

/// HAProxy stops on the balancer holding the floating address (the host stays up): the address
/// moves to the other balancer, and the requests through it fail for at most 2 s. Measured once
/// on each balancer (one Debian 12 with keepalived 2.2, one Debian 13 with 2.3), by probes every
/// 50 ms: the window runs from the first probe that got no page (or got it later than a second) to
/// the last one. HAProxy is started again after each; the address stays where it went.
fn the_floating_address_moves_when_haproxy_dies() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    const VIP: &str = "198.18.0.19";
    let balancers = [("lb", "198.18.0.20"), ("lb2", "198.18.0.26")];
    let holds = |addr: &str| ssh(addr, "ip -o addr show").contains(&format!(" {VIP}/"));
    for round in 0..2 {
        // The address settles where it is (a balancer just started keeps its FAULT state until its
        // HAProxy has passed the check twice).
        std::thread::sleep(Duration::from_secs(3));
        let holder = *balancers
            .iter()
            .find(|(_, a)| holds(a))
            .expect("a balancer holds the floating address");
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        let (probes, stopped_at) = std::thread::scope(|s| {
            let probing = s.spawn(|| probe_every_50ms(VIP, t0, &stop));
            std::thread::sleep(Duration::from_secs(2));
            let stopped_at = t0.elapsed().as_secs_f64();
            ssh(holder.1, "service haproxy stop > /dev/null 2>&1; true");
            std::thread::sleep(Duration::from_secs(6));
            stop.store(true, Ordering::SeqCst);
            (probing.join().unwrap(), stopped_at)
        });
        ssh(holder.1, "service haproxy start > /dev/null 2>&1");
        let failed: Vec<f64> = probes.iter().filter(|p| !p.1).map(|p| p.0).collect();
        let window = match (failed.first(), failed.last()) {
            (Some(first), Some(last)) => last - first + 0.05,
            _ => 0.0,
        };
        let other = balancers.iter().find(|b| b.0 != holder.0).unwrap();
        eprintln!(
            "round {round}: HAProxy stopped on {} at {stopped_at:.2} s; {} of {} probes failed, from {:.2} s to {:.2} s: a window of {window:.2} s; {} holds {VIP}: {}",
            holder.0,
            failed.len(),
            probes.len(),
            failed.first().copied().unwrap_or(0.0),
            failed.last().copied().unwrap_or(0.0),
            other.0,
            holds(other.1)
        );
        assert!(holds(other.1), "{} did not take {VIP}", other.0);
        assert!(
            probes.iter().any(|p| p.1 && p.0 > stopped_at),
            "no page through {VIP} after HAProxy stopped on {}",
            holder.0
        );
        assert!(window <= 2.0, "the site failed for {window:.2} s");
    }
}

/// The newest generation of a lab host.
fn current_generation(addr: &str) -> String {
    ssh(addr, "cat /var/lib/provision/current")
        .trim()
        .to_string()
}

/// A database-side change that cuts a web host off (issue 22): web1 gets a second address, and the
/// inventory names it as web1's private address. The balancers would reach web1 there, but web1
/// still connects to the primary from 198.18.0.21, which the primary's firewall and accounts then
/// leave out. The primary's own check (MariaDB reached from each web host, over SSH on it) fails,
/// the primary is rolled back, and no other host changes: not the web hosts (they did nothing
/// wrong), nor the replica and balancers after it. The site keeps its database row throughout.
fn a_database_side_break_is_rolled_back_on_the_database_host(inv: &str) {
    const WEB1: &str = "198.18.0.21";
    const EXTRA: &str = "198.18.0.109";
    let others = [
        "198.18.0.20",
        WEB1,
        "198.18.0.22",
        "198.18.0.24",
        "198.18.0.26",
    ];
    ssh(
        WEB1,
        &format!("ip addr add {EXTRA}/24 dev host0 2> /dev/null; ip -o addr show dev host0"),
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = inventory_copy(inv, dir.path(), &|t| {
        t.replace(
            &format!("public_address = \"{WEB1}\""),
            &format!("public_address = \"{WEB1}\"\nprivate_address = \"{EXTRA}\""),
        )
    });
    let db1_before = current_generation("198.18.0.23");
    let before: Vec<String> = others.iter().map(|a| current_generation(a)).collect();
    let done = Run::new(&["apply", "-i"]).arg(&broken).output();
    let said = format!("{}{}", done.stdout(), done.stderr());
    ssh(WEB1, &format!("ip addr del {EXTRA}/24 dev host0"));
    eprintln!("a database-side break: {}", done.stderr().trim());
    done.status(1);
    for line in [
        "db1: check failed: health check failed: MariaDB on db1 (198.18.0.23:3306) from web1: connection refused",
        "the previous files were restored, the services restarted, and the health checks pass again",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    assert_ne!(
        current_generation("198.18.0.23"),
        db1_before,
        "db1 was not changed"
    );
    let history = Run::new(&["history", "-i", inv, "--host", "db1"]).output();
    assert!(
        history.stdout().contains("rollback"),
        "{}",
        history.stdout()
    );
    let after: Vec<String> = others.iter().map(|a| current_generation(a)).collect();
    assert_eq!(after, before, "a host other than db1 changed");
    for addr in [WEB1, "198.18.0.22"] {
        let (status, body) = page(addr);
        assert!(
            status == 200 && body.contains("Hello from MariaDB"),
            "{addr}: {status} {body}"
        );
    }
    // db1 needs attention (its generation was rolled back): the next apply checks it again.
    Run::new(&["apply", "-i", inv]).output().status(0);
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// A primary whose MariaDB answers its socket only (an admin's `skip-networking` left behind and
/// a restart): its plan has nothing to change, yet no web host reaches it. A run that only has to
/// confirm it (it needs attention, as an interrupted apply leaves it) checks it from each web host
/// and fails, with nothing to roll back; once MariaDB listens again, the next run passes.
fn an_unchanged_primary_the_web_hosts_cannot_reach_fails_its_check(inv: &str) {
    const DB: &str = "198.18.0.23";
    let cnf = "/etc/mysql/mariadb.conf.d/99-e2e-socket-only.cnf";
    ssh(
        DB,
        &format!(
            "printf '[mysqld]\\nskip-networking\\n' > {cnf} && systemctl restart mariadb && \
             echo 'generation not confirmed by health checks (e2e)' > /var/lib/provision/attention"
        ),
    );
    let plan = Run::new(&["plan", "-i", inv, "--host", "db1"]).output();
    let done = Run::new(&["apply", "-i", inv, "--host", "db1"]).output();
    ssh(DB, &format!("rm -f {cnf} && systemctl restart mariadb"));
    let planned = plan.stdout();
    // Nothing to change: only the confirmation is due.
    assert!(
        planned.contains("needs attention")
            && !planned.contains("\n  ~ ")
            && !planned.contains("\n  * "),
        "{planned}"
    );
    let said = format!("{}{}", done.stdout(), done.stderr());
    eprintln!(
        "an unchanged primary nobody reaches: {}",
        done.stderr().trim()
    );
    done.status(1);
    for line in [
        "MariaDB on db1 (198.18.0.23:3306) from web1: connection refused",
        "nothing to roll back (this run changed nothing)",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    Run::new(&["apply", "-i", inv, "--host", "db1"])
        .output()
        .status(0);
    // The replica reconnects to the restarted primary (it retries every 5 s).
    let start = std::time::Instant::now();
    while !ssh("198.18.0.24", "mariadb -e 'SHOW SLAVE STATUS\\G'").contains("Slave_IO_Running: Yes")
    {
        assert!(
            start.elapsed().as_secs() < 30,
            "db2 never reconnected to db1"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// A replica's seed killed half-way through its load (issue 22): the dump sets the GTID position
/// and creates the database before any row, so without a record of the seed finishing the
/// replica looked seeded, replication started with rows missing, and `plan` said nothing. Now the
/// next plan says it must be seeded again, and the apply seeds it whole.
fn a_seed_killed_mid_load_is_seeded_again_whole(inv: &str) {
    const PRIMARY: &str = "198.18.0.23";
    const REPLICA: &str = "198.18.0.24";
    const ROWS: u32 = 400_000;
    ssh(
        PRIMARY,
        &format!(
            "mariadb -e 'DROP TABLE IF EXISTS foobar.e2e_big; \
             CREATE TABLE foobar.e2e_big (id INT PRIMARY KEY, pad VARCHAR(200)); \
             INSERT INTO foobar.e2e_big SELECT seq, REPEAT(\"x\", 200) FROM foobar.seq_1_to_{ROWS}'"
        ),
    );
    // The replica as a new one: following nobody, without the database.
    ssh(
        REPLICA,
        "mariadb -e 'STOP SLAVE; RESET SLAVE ALL; SET SESSION sql_log_bin = 0; \
         DROP DATABASE IF EXISTS foobar; SET GLOBAL gtid_slave_pos = \"\"' && \
         rm -f /var/lib/provision/sql/foobar.seeded",
    );
    // Every load of a copy is killed half a second after it started (it takes 3-13 s here, as
    // busy as the machine is), for as long as the apply runs (its rollback runs the step again).
    // The pattern's brackets keep the killer from matching its own command line.
    ssh(
        REPLICA,
        "rm -f /tmp/e2e-killer.stop /tmp/e2e-killer.log; nohup sh -c 'p=\"init-comman[d]=SET SESSION sql_log_bi[n]\"; \
         end=$(( $(date +%s) + 300 )); while [ ! -f /tmp/e2e-killer.stop ] && [ $(date +%s) -lt $end ]; do \
         if pgrep -f \"$p\" > /dev/null; then sleep 0.5; pkill -9 -f \"$p\" && echo killed >> /tmp/e2e-killer.log; fi; \
         sleep 0.1; done' > /dev/null 2>&1 &",
    );
    let done = Run::new(&["apply", "-i", inv, "--host", "db2"]).output();
    let killed = ssh(
        REPLICA,
        "touch /tmp/e2e-killer.stop; cat /tmp/e2e-killer.log; \
         mariadb -NBe 'SELECT COUNT(*) FROM foobar.e2e_big' 2>&1; true",
    );
    eprintln!(
        "seed killed mid-load: apply exit {:?}; killer and the replica's rows after it: {}",
        done.code(),
        killed.replace('\n', " ")
    );
    assert!(killed.contains("killed"), "no load was killed: {killed}");
    done.status(1);
    let plan = Run::new(&["plan", "-i", inv, "--host", "db2"])
        .output()
        .status(2);
    assert!(
        plan.stdout().contains("no seed of the replica finished"),
        "{}",
        plan.stdout()
    );
    Run::new(&["apply", "-i", inv, "--host", "db2"])
        .output()
        .status(0);
    let count = |addr: &str| {
        ssh(
            addr,
            "mariadb -NBe 'SELECT COUNT(*) FROM foobar.e2e_big' 2>&1; true",
        )
        .trim()
        .to_string()
    };
    let mut rows = String::new();
    for _ in 0..60 {
        rows = count(REPLICA);
        if rows == ROWS.to_string() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!((count(PRIMARY), rows), (ROWS.to_string(), ROWS.to_string()));
    ssh(PRIMARY, "mariadb -e 'DROP TABLE foobar.e2e_big'");
    Run::new(&["plan", "-i", inv]).output().status(0);
}

/// `promote` holds every database server's lock from its first step to its last (issue 22): an
/// apply started while the replica catches up is refused on the read-only primary, where it could
/// have made it writable again. The replica is kept from catching up (a read lock on a table a
/// write of the primary's goes to), so the switchover fails at step 2 and says what it left: the
/// primary writable again, the inventory unchanged.
fn an_apply_during_a_switchover_is_refused(inv: &str) {
    use std::time::{Duration, Instant};
    const PRIMARY: &str = "198.18.0.23";
    const REPLICA: &str = "198.18.0.24";
    let dir = tempfile::tempdir().unwrap();
    let copy = inventory_copy(inv, dir.path(), &|t| t);
    let original = std::fs::read_to_string(&copy).unwrap();
    ssh(
        PRIMARY,
        "mariadb -e 'DROP TABLE IF EXISTS foobar.e2e_lock; CREATE TABLE foobar.e2e_lock (id INT PRIMARY KEY)'",
    );
    let start = Instant::now();
    while !ssh(REPLICA, "mariadb -NBe 'SHOW TABLES FROM foobar'").contains("e2e_lock") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the table never reached db2"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut reader = ssh_to(REPLICA)
        .arg("mariadb -e 'LOCK TABLES foobar.e2e_lock READ; SELECT SLEEP(30)'")
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    ssh(
        PRIMARY,
        "mariadb -e 'INSERT INTO foobar.e2e_lock VALUES (1)'",
    );
    let promote = Run::new(&["promote", "-i"])
        .arg(&copy)
        .args(&["--host", "db2", "--catch-up", "10"])
        .spawn();
    let start = Instant::now();
    while ssh(PRIMARY, "mariadb -NBe 'SELECT @@read_only'").trim() != "1" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "db1 never went read-only"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let apply = Run::new(&["apply", "-i"])
        .arg(&copy)
        .args(&["--host", "db1"])
        .output();
    let promoted = promote.wait_output();
    let _ = reader.kill();
    ssh(
        REPLICA,
        "for id in $(mariadb -NBe \"SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%'\"); do mariadb -e \"KILL $id\"; done",
    );
    let _ = reader.wait();
    eprintln!(
        "an apply during a switchover: exit {}: {}\npromote: exit {}: {}",
        apply.code(),
        apply.stderr().trim(),
        promoted.code(),
        promoted.stderr().trim()
    );
    let said = apply.stderr();
    apply.status(1);
    assert!(
        said.contains("another apply holds the lock on this host"),
        "{said}"
    );
    let said = format!("{}{}", promoted.stdout(), promoted.stderr());
    promoted.status(1);
    assert!(
        said.contains("db2: did not catch up within 10 s; nothing else was changed; db1 is writable again; the inventory is unchanged"),
        "{said}"
    );
    assert_eq!(
        ssh(PRIMARY, "mariadb -NBe 'SELECT @@read_only'").trim(),
        "0"
    );
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), original);
    ssh(PRIMARY, "mariadb -e 'DROP TABLE foobar.e2e_lock'");
    Run::new(&["apply", "-i", inv]).output().status(0);
    Run::new(&["plan", "-i", inv]).output().status(0);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_an_apply_during_a_switchover_is_refused() {
    let _hosts = lb_hosts();
    an_apply_during_a_switchover_is_refused(lab_lb_converged());
}

/// The lab-lb hosts up and converged, for the tests that start from a working site.
fn lab_lb_converged() -> &'static str {
    let inv = "inventories/lab-lb.toml";
    lab(&["up", inv]);
    Run::new(&["apply", "-i", inv]).output().status(0);
    inv
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_a_database_side_break_is_rolled_back_on_the_database_host() {
    let _hosts = lb_hosts();
    a_database_side_break_is_rolled_back_on_the_database_host(lab_lb_converged());
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_an_unchanged_primary_the_web_hosts_cannot_reach_fails_its_check() {
    let _hosts = lb_hosts();
    an_unchanged_primary_the_web_hosts_cannot_reach_fails_its_check(lab_lb_converged());
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_lb_a_seed_killed_mid_load_is_seeded_again_whole() {
    let _hosts = lb_hosts();
    a_seed_killed_mid_load_is_seeded_again_whole(lab_lb_converged());
}

/// A replica added to a primary that already holds data, and whose early binary logs are gone:
/// it is seeded from a copy carrying its GTID position (a replay from the binlog's beginning would
/// fail), follows the primary, and the other servers keep their ids.
fn a_replica_added_later_is_seeded_and_nobody_is_renumbered(inv: &str) {
    const PRIMARY: &str = "198.18.0.23";
    const REPLICA: &str = "198.18.0.24";
    const NEW: &str = "198.18.0.25";
    let id = |addr: &str| {
        ssh(addr, "mariadb -NBe 'SELECT @@server_id'")
            .trim()
            .to_string()
    };
    let ids_before = (id(PRIMARY), id(REPLICA));
    ssh(
        PRIMARY,
        "mariadb -e \"CREATE TABLE IF NOT EXISTS foobar.e2e_rows (id INT PRIMARY KEY); \
         INSERT IGNORE INTO foobar.e2e_rows VALUES (1), (2), (3); FLUSH BINARY LOGS; \
         PURGE BINARY LOGS BEFORE NOW();\"",
    );
    let dir = tempfile::tempdir().unwrap();
    // Only the new host is started fresh; the others keep their data.
    let (with_db3, db3_only) = with_a_copy(dir.path(), inv, ("db2", REPLICA), ("db3", NEW));
    lab(&["down", &db3_only.to_string_lossy()]);
    lab(&["up", &db3_only.to_string_lossy()]);
    let done = Run::new(&["plan", "-i"]).arg(&with_db3).output().status(2);
    assert!(
        done.stdout()
            .contains("the replica does not follow its primary yet"),
        "{}",
        done.stdout()
    );
    Run::new(&["apply", "-i"]).arg(&with_db3).output().status(0);
    let mut status = String::new();
    for _ in 0..40 {
        status = ssh(NEW, "mariadb -e 'SHOW SLAVE STATUS\\G'; mariadb -NBe 'SELECT COUNT(*) FROM foobar.e2e_rows' 2>&1; true");
        if status.contains("Slave_SQL_Running: Yes") && status.trim_end().ends_with('3') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        status.contains("Slave_IO_Running: Yes") && status.contains("Slave_SQL_Running: Yes"),
        "{status}"
    );
    assert!(
        status.trim_end().ends_with('3'),
        "the seeded rows are missing: {status}"
    );
    // A row written after the seed arrives through replication.
    ssh(
        PRIMARY,
        "mariadb -e 'INSERT INTO foobar.e2e_rows VALUES (4)'",
    );
    let mut rows = String::new();
    for _ in 0..40 {
        rows = ssh(NEW, "mariadb -NBe 'SELECT COUNT(*) FROM foobar.e2e_rows'");
        if rows.trim() == "4" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert_eq!(rows.trim(), "4");
    assert_eq!(
        (id(PRIMARY), id(REPLICA)),
        ids_before,
        "a server was renumbered"
    );
    Run::new(&["plan", "-i"]).arg(&with_db3).output().status(0);
    a_replica_is_promoted_under_load_with_no_lost_write(&with_db3);
    lab(&["down", &db3_only.to_string_lossy()]);
}

/// `provision promote --host db2` while 25 clients read the site through the floating address:
/// db1 goes read-only, db2 and db3 catch up, db2 becomes the primary, the inventory's roles are
/// swapped in the file, and the apply that follows points the web hosts at db2 (rolling) and makes
/// db1 and db3 follow it. Rows written before (on db1) and after (on db2) are on every server; no
/// request fails.
fn a_replica_is_promoted_under_load_with_no_lost_write(inv: &std::path::Path) {
    use crate::load::Load;
    use std::time::Duration;
    const OLD: &str = "198.18.0.23";
    const NEW: &str = "198.18.0.24";
    const OTHER: &str = "198.18.0.25";
    ssh(OLD, "mariadb -e 'INSERT INTO foobar.e2e_rows VALUES (10)'");
    let load = Load::start(
        "198.18.0.19",
        25,
        "Hello from MariaDB",
        Duration::from_secs(300),
    );
    std::thread::sleep(Duration::from_secs(2));
    let done = Run::new(&["promote", "-i"])
        .arg(inv)
        .arg("--host")
        .arg("db2")
        .output()
        .status(0);
    std::thread::sleep(Duration::from_secs(2));
    let tally = load.finish();
    eprintln!(
        "promote db2: {}",
        tally.line("load through the floating address")
    );
    assert_no_secret(&done);
    let said = format!("{}{}", done.stdout(), done.stderr());
    for line in [
        "db1: read-only; its binary log stands at",
        "db2: caught up",
        "db3: caught up",
        "db2: promoted",
        "the roles are swapped: db2 is \"db\", db1 is \"db-replica\"",
    ] {
        assert!(said.contains(line), "{line:?} not in:\n{said}");
    }
    assert!(tally.ok > 200 && tally.failed == 0, "{tally:?}");
    let text = std::fs::read_to_string(inv).unwrap();
    let roles = |name: &str| {
        text.split("[[hosts]]")
            .find(|h| h.contains(&format!("name = \"{name}\"")))
            .and_then(|h| h.lines().find(|l| l.starts_with("roles")))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(roles("db2"), "roles = [\"db\"]");
    assert_eq!(roles("db1"), "roles = [\"db-replica\"]");
    assert_eq!(roles("db3"), "roles = [\"db-replica\"]");
    // A row written on the new primary reaches both others, after the one written before.
    ssh(NEW, "mariadb -e 'INSERT INTO foobar.e2e_rows VALUES (11)'");
    for addr in [OLD, OTHER] {
        let mut seen = String::new();
        for _ in 0..40 {
            seen = ssh(addr, "mariadb -e 'SHOW SLAVE STATUS\\G'; mariadb -NBe 'SELECT @@read_only; SELECT GROUP_CONCAT(id ORDER BY id) FROM foobar.e2e_rows' 2>&1; true");
            // (Two statements: in one that reads a table, MariaDB 11.8 shows read_only as 0.)
            if seen.contains("1\n1,2,3,4,10,11") {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(
            seen.contains("Master_Host: 198.18.0.24")
                && seen.contains("Slave_IO_Running: Yes")
                && seen.contains("Slave_SQL_Running: Yes")
                && seen.contains("1\n1,2,3,4,10,11"),
            "{addr} does not follow db2 read-only with every row: {seen}"
        );
    }
    assert_eq!(ssh(NEW, "mariadb -NBe 'SELECT @@read_only'").trim(), "0");
    let checked = Run::new(&["check", "-i"]).arg(inv).output().status(0);
    assert!(
        checked
            .stdout()
            .contains("db1: ok: mariadb-replica: replication from 198.18.0.24"),
        "{}",
        checked.stdout()
    );
    Run::new(&["plan", "-i"]).arg(inv).output().status(0);
}

/// A host running a release provision does not support, or another OS, or not the release the
/// inventory names, is refused by plan and apply before anything is changed.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn unsupported_releases_are_refused_before_anything_changes() {
    const ADDR: &str = "198.18.0.16";
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), "e2e-release", ADDR, "plain", true);
    let os_release = |id: &str, version: &str, codename: &str| {
        ssh(
            ADDR,
            &format!("rm -f /etc/os-release && printf 'ID={id}\\nVERSION_ID=\"{version}\"\\nVERSION_CODENAME={codename}\\n' > /etc/os-release"),
        );
    };
    for (id, version, codename) in [("debian", "11", "bullseye"), ("fedora", "41", "unknown")] {
        os_release(id, version, codename);
        for cmd in ["plan", "apply"] {
            let done = Run::new(&[cmd, "-i"]).arg(&inv).output().status(1);
            assert!(
                done.stderr().contains(&format!(
                    "e2e-release runs {id} {version} ({codename}), which provision does not support; nothing was changed"
                )) && done.stderr().contains("\"trixie\" (debian 13)"),
                "{}",
                done.stderr()
            );
        }
    }
    assert!(
        ssh(
            ADDR,
            "dpkg-query -W -f='${db:Status-Status}' nginx 2>/dev/null; echo ."
        )
        .trim()
            != "installed."
    );
    assert!(!ssh(ADDR, "ls /var/lib/provision").contains("generations"));
    // The host runs Debian 12 again; an inventory that says it runs trixie is refused.
    os_release("debian", "12", "bookworm");
    let text = std::fs::read_to_string(&inv).unwrap().replace(
        "name = \"e2e-release\"",
        "name = \"e2e-release\"\nrelease = \"trixie\"",
    );
    std::fs::write(&inv, text).unwrap();
    let done = Run::new(&["plan", "-i"]).arg(&inv).output().status(1);
    assert!(
        done.stderr().contains("the inventory says e2e-release runs debian 13 (trixie), but it runs debian 12 (bookworm)"),
        "{}",
        done.stderr()
    );
    lab(&["down", &inv.to_string_lossy()]);
}

/// `[backup]` on one host: the nightly schedule (cron without systemd, the timer with it), a dump
/// taken now, rows deleted, the dump restored, the page and the rows back; the database as it was
/// before the restore kept; dumps older than keep_days pruned.
fn backup_and_restore(name: &str, addr: &str, flavour: &str) {
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), name, addr, flavour, true);
    let inv = inv.to_string_lossy().to_string();
    Run::new(&["apply", "-i", &inv]).output().status(0);
    let scheduled = if flavour == "systemd" {
        "systemctl is-active provision-backup.timer"
    } else {
        "service cron status > /dev/null && grep -c /usr/local/sbin/provision-backup /etc/cron.d/provision-backup"
    };
    assert!(
        ["active", "1"].contains(&ssh(addr, scheduled).trim()),
        "{scheduled}"
    );
    Run::new(&["plan", "-i", &inv]).output().status(0);
    let sql = |q: &str| ssh(addr, &format!("mariadb -N -e \"{q}\""));
    sql("INSERT INTO foobar.provision_demo (id, message) VALUES (2, 'kept by the backup')");
    // An old dump, to be pruned by the next one (keep_days = 7).
    ssh(
        addr,
        "mkdir -p /var/backups/provision && touch -d '8 days ago' /var/backups/provision/foobar-nightly-old.sql.gz",
    );
    let done = Run::new(&["backup", "-i", &inv]).output().status(0);
    let path = done
        .stdout()
        .trim()
        .strip_prefix(&format!("{name}: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        path.starts_with("/var/backups/provision/foobar-manual-") && path.ends_with(".sql.gz"),
        "{}",
        done.stdout()
    );
    assert!(ssh(addr, &format!("zcat {path}")).contains("kept by the backup"));
    assert!(!ssh(addr, "ls /var/backups/provision").contains("foobar-nightly-old"));
    assert_eq!(ssh(addr, &format!("stat -c %a {path}")).trim(), "600");
    sql("DELETE FROM foobar.provision_demo");
    let (status, body) = page(addr);
    assert!(
        status == 200 && body.contains(">no row<"),
        "{status} {body}"
    );
    let done = Run::new(&["restore", "-i", &inv, "--from", &path])
        .output()
        .status(0);
    assert!(
        done.stdout().contains("restored foobar"),
        "{}",
        done.stdout()
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM foobar.provision_demo").trim(),
        "2"
    );
    let (status, body) = page(addr);
    assert!(
        status == 200 && body.contains("Hello from MariaDB: the database of foobar.com answers"),
        "{status} {body}"
    );
    // The emptied database was dumped before the restore.
    let kept = ssh(addr, "ls /var/backups/provision");
    assert!(kept.contains("foobar-before-restore-"), "{kept}");
    // Only dumps of the backup directory are taken.
    let done = Run::new(&["restore", "-i", &inv, "--from", "/etc/shadow"])
        .output()
        .status(4);
    assert!(
        done.stderr().contains("not a dump of the backup host"),
        "{}",
        done.stderr()
    );
    lab(&["down", &inv]);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_backup_and_restore_on_a_plain_host() {
    backup_and_restore("e2e-backup", "198.18.0.51", "plain");
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_backup_and_restore_on_systemd() {
    backup_and_restore("e2e-backup-sd", "198.18.0.52", "systemd");
}
