use crate::util::*;

fn validate_text(text: &str) -> Done {
    validate_bytes(text.as_bytes())
}

fn validate_bytes(bytes: &[u8]) -> Done {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(dir.path().join("pw"), "pw").unwrap();
    let done = Run::new(&["validate", "-i"]).arg(&path).output();
    // Keep the directory alive until the run is over.
    drop(dir);
    done
}

const GOOD: &str = r#"[site]
domain = "foobar.com"
stack = "lemp"
[database]
name = "foobar"
user = "foobar"
password_file = "pw"
[dns]
soa_contact = "hostmaster@foobar.com"
[[hosts]]
name = "web-01"
public_address = "8.8.8.8"
roles = ["web", "app", "db", "dns"]
ssh = { address = "198.18.0.10" }
"#;

#[test]
fn a_good_inventory_validates() {
    let done = validate_text(GOOD).status(0);
    assert!(done
        .stdout()
        .contains("valid: site foobar.com (stack lemp), 1 host(s)"));
}

#[test]
fn each_bad_input_gets_one_located_error_and_exit_4() {
    let cases: &[(&str, &str, &str)] = &[
        ("stack = \"lemp\"", "stack = \"lemp\"\ncolour = \"red\"", ":4:1: site.colour: found an unknown key; allowed in the table site: domain,"),
        ("domain = \"foobar.com\"", "domain = \"foo\\nbar.com\"", ":2:10: site.domain: found \"foo\\nbar.com\""),
        ("domain = \"foobar.com\"", "domain = \"foobar.com;\"", ":2:10: site.domain: found \"foobar.com;\"; allowed: a DNS name"),
        ("stack = \"lemp\"", "stack = \"mean\"", ":3:9: site.stack: found \"mean\"; allowed: one of \"lemp\", \"lamp\", \"nginx-apache\""),
        ("name = \"foobar\"", "name = \"foo'bar\"", ":5:8: database.name: found \"foo'bar\"; allowed: a SQL identifier"),
        ("password_file = \"pw\"", "password_file = \"missing\"", ":7:17: database.password_file: cannot read file"),
        ("public_address = \"8.8.8.8\"", "public_address = \"8.8.8\"", ":12:18: hosts[0].public_address: found \"8.8.8\"; allowed: an IPv4 or IPv6 address"),
        ("{ address = \"198.18.0.10\" }", "{ address = \"198.18.0.10\", port = 0 }", "hosts[0].ssh.port: found 0; allowed: a whole number from 1 to 65535"),
        ("{ address = \"198.18.0.10\" }", "{ address = \"$(reboot)\" }", "hosts[0].ssh.address: found \"$(reboot)\"; allowed: an IP address or a DNS name"),
        ("roles = [\"web\", \"app\", \"db\", \"dns\"]", "roles = [\"lb\", \"db\", \"dns\"]", "no host has the \"web\" role"),
        ("{ address = \"198.18.0.10\" }", "{ address = \"198.18.0.10\", port = \"22\" }", ":14:41: hosts[0].ssh.port: found a string \"22\"; allowed: a whole number from 1 to 65535"),
        ("stack = \"lemp\"", "stack = \"lemp\"\ndomain = \"foobar.org\"", ":4:1: site.domain: found a second definition of this key (the first is at line 2); allowed: each key once per table"),
        ("roles = [\"web\", \"app\", \"db\", \"dns\"]\n", "", ":10:1: hosts[0].roles: missing from the table hosts[0]; allowed: an array of strings"),
    ];
    for (from, to, want) in cases {
        let done = validate_text(&GOOD.replacen(from, to, 1)).status(4);
        assert!(
            done.stderr().contains(want),
            "for {to:?}: want {want:?} in\n{}",
            done.stderr()
        );
        assert!(done.stdout().is_empty());
    }
}

#[test]
fn duplicate_host_names_are_one_error() {
    let text = format!("{GOOD}[[hosts]]\nname = \"web-01\"\npublic_address = \"8.8.8.9\"\nroles = [\"dns\"]\nssh = {{ address = \"198.18.0.11\" }}\n");
    let done = validate_text(&text).status(4);
    assert!(
        done.stderr()
            .contains(":16:8: hosts[1].name: found \"web-01\" again (first at hosts[0])"),
        "{}",
        done.stderr()
    );
}

#[test]
fn a_missing_inventory_is_an_error_not_a_panic() {
    let done = Run::new(&["validate", "-i", "/nonexistent/inv.toml"])
        .output()
        .status(4);
    assert!(
        done.stderr()
            .contains("/nonexistent/inv.toml: cannot read the inventory"),
        "{}",
        done.stderr()
    );
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
    let latin1 = GOOD.replace("foobar.com\"\nstack", "foobar.com\" # caf\u{e9}\nstack");
    let bytes: Vec<u8> = latin1.chars().map(|c| c as u8).collect();
    let done = validate_bytes(&bytes).status(4);
    assert!(
        done.stderr()
            .contains(":2:28: found the byte 0xE9, which is not UTF-8"),
        "{}",
        done.stderr()
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(GOOD.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let done = validate_bytes(&utf16).status(4);
    assert!(
        done.stderr()
            .contains("bad.toml:1:1: the file is UTF-16; allowed: UTF-8"),
        "{}",
        done.stderr()
    );
}

/// Runs validate on `text` written as `inv.toml` in `dir`.
fn validate_in(dir: &std::path::Path, text: &str) -> Done {
    let path = dir.join("inv.toml");
    std::fs::write(&path, text).unwrap();
    Run::new(&["validate", "-i"]).arg(&path).output()
}

#[test]
fn an_app_dir_holding_the_secrets_and_the_inventory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "pw\n").unwrap();
    std::fs::write(dir.path().join("index.php"), "<?php echo 1;\n").unwrap();
    let text = GOOD.replace("stack = \"lemp\"", "stack = \"lemp\"\napp_dir = \".\"");
    let done = validate_in(dir.path(), &text).status(4);
    let err = done.stderr();
    let d = dir.path().display();
    for what in [
        format!("the password file {d}/pw (database.password_file), as \"pw\""),
        format!("the inventory file {d}/inv.toml, as \"inv.toml\""),
    ] {
        assert!(
            err.contains(&format!(":4:11: site.app_dir: the application directory {d} contains {what}; allowed: a directory that holds only the application")),
            "{what} in\n{err}"
        );
    }
}

#[test]
fn an_endless_password_file_or_inventory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = GOOD.replace("password_file = \"pw\"", "password_file = \"/dev/zero\"");
    let done = validate_in(dir.path(), &text).status(4);
    assert!(
        done.stderr().contains(":7:17: database.password_file: file /dev/zero is longer than 4096 bytes; allowed: a file holding only the password (at most 512 bytes)"),
        "{}",
        done.stderr()
    );
    let done = Run::new(&["validate", "-i", "/dev/zero"])
        .output()
        .status(4);
    assert!(
        done.stderr()
            .contains("/dev/zero: the inventory is longer than 16 MiB"),
        "{}",
        done.stderr()
    );
}

#[test]
fn a_password_fifo_fed_by_another_process_validates() {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pw");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = std::thread::spawn(move || {
        // Waits for provision to open the FIFO, as a password manager would; a non-blocking open
        // (ENXIO while there is no reader) keeps a provision that never opens it from hanging
        // the test.
        use std::os::unix::fs::OpenOptionsExt;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut w = loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
            {
                Ok(w) => break w,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("provision never opened the FIFO: {e}"),
            }
        };
        w.write_all(b"from-the-fifo\n").unwrap();
    });
    let done = validate_in(dir.path(), GOOD).status(0);
    writer.join().unwrap();
    assert!(done.stdout().contains("valid: site foobar.com"));
}

#[test]
fn what_would_fail_at_render_fails_at_validate() {
    let long = |n: usize| {
        [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".")[..n]
            .to_string()
    };
    let cases = [
        (
            "[[hosts]]".to_string(),
            "[[dns.records]]\nname = \"@\"\ntype = \"CNAME\"\nvalue = \"example.net.\"\n[[hosts]]".to_string(),
            ":11:8: dns.records[0].name: found a CNAME at \"@\"",
        ),
        (
            "[[hosts]]".to_string(),
            "[[dns.records]]\nname = \"www\"\ntype = \"CNAME\"\nvalue = \"example.net.\"\n[[hosts]]".to_string(),
            ":11:8: dns.records[0].name: found a CNAME on \"www\", which also has the address records of site.server_names (by default \"www\")",
        ),
        (
            "domain = \"foobar.com\"".to_string(),
            format!("domain = \"{}\"", long(253)),
            ":2:10: site.domain: found a domain of 253 characters with stack \"lemp\"; allowed: at most 226 characters: the self-signed certificate Nginx reads is named <domain>.self-signed-0123456789ab.pem",
        ),
        (
            "stack = \"lemp\"".to_string(),
            "stack = \"lemp\"\ndocument_root = \"/var\"".to_string(),
            ":4:17: site.document_root: found \"/var\" (it contains /var/lib); allowed: a directory of the site's own",
        ),
    ];
    for (from, to, want) in cases {
        let done = validate_text(&GOOD.replacen(&from, &to, 1)).status(4);
        assert!(
            done.stderr().contains(want),
            "for {to:?}: want {want:?} in\n{}",
            done.stderr()
        );
    }
}

#[test]
fn system_databases_and_accounts_are_refused() {
    for (from, to, want) in [
        ("name = \"foobar\"", "name = \"MySQL\"", ":5:8: database.name: found \"MySQL\"; allowed: a name other than the system databases"),
        ("user = \"foobar\"", "user = \"root\"", ":6:8: database.user: found \"root\"; allowed: a name other than the system accounts"),
        ("password_file = \"pw\"", "password_file = \"pw\"\nreplication_user = \"foobar\"\nreplication_password_file = \"pw\"", ":8:20: database.replication_user: found \"foobar\", the same as database.user"),
    ] {
        let done = validate_text(&GOOD.replacen(from, to, 1)).status(4);
        assert!(done.stderr().contains(want), "want {want:?} in\n{}", done.stderr());
    }
}

#[test]
fn the_lab_release_is_checked_like_the_flavour() {
    let lab = |v: &str| {
        GOOD.replace(
            "ssh = { address = \"198.18.0.10\" }",
            &format!("ssh = {{ address = \"198.18.0.10\" }}\nlab = {{ release = \"{v}\" }}"),
        )
    };
    validate_text(&lab("trixie")).status(0);
    let done = validate_text(&lab("buster")).status(4);
    assert!(
        done.stderr().contains(":15:19: hosts[0].lab.release: found \"buster\"; allowed: \"bookworm\" (Debian 12) or \"trixie\" (Debian 13)"),
        "{}",
        done.stderr()
    );
}

/// Two load balancers without a floating address, an address outside their network, a third
/// balancer, and (allowed, with a warning) a balancer in front of one web host.
#[test]
fn load_balancer_mistakes_are_located_and_one_web_host_is_a_warning() {
    let host = |name: &str, addr: &str, roles: &str| {
        format!("[[hosts]]\nname = \"{name}\"\npublic_address = \"{addr}\"\nroles = [{roles}]\nssh = {{ address = \"{addr}\" }}\n")
    };
    let base = GOOD.to_string();
    let two_web = format!("{base}{}", host("web-02", "8.8.8.9", "\"web\", \"app\""));
    let lbs = format!(
        "{two_web}{}{}",
        host("lb-01", "8.8.8.20", "\"lb\""),
        host("lb-02", "8.8.8.21", "\"lb\"")
    );
    let done = validate_text(&lbs).status(4);
    assert!(
        done.stderr()
            .contains("hosts[3].roles: a second \"lb\" host and no [lb] table"),
        "{}",
        done.stderr()
    );
    let with_lb = |cidr: &str| {
        lbs.replace(
            "[[hosts]]\nname = \"web-01\"",
            &format!("[lb]\nfloating_address = \"{cidr}\"\nvirtual_router_id = 51\n[[hosts]]\nname = \"web-01\""),
        )
    };
    validate_text(&with_lb("8.8.8.30/24")).status(0);
    let done = validate_text(&with_lb("9.9.9.30/24")).status(4);
    assert!(
        done.stderr().contains(
            "lb.floating_address: 9.9.9.30/24 is not in the network of hosts[2] (8.8.8.20)"
        ),
        "{}",
        done.stderr()
    );
    let done = validate_text(&with_lb("8.8.8.30")).status(4);
    assert!(
        done.stderr().contains(
            "lb.floating_address: found \"8.8.8.30\"; allowed: an address with its prefix length"
        ),
        "{}",
        done.stderr()
    );
    let three = format!(
        "{}{}",
        with_lb("8.8.8.30/24"),
        host("lb-03", "8.8.8.22", "\"lb\"")
    );
    let done = validate_text(&three).status(4);
    assert!(
        done.stderr()
            .contains("hosts[4].roles: a third \"lb\" host"),
        "{}",
        done.stderr()
    );
    // One web host behind a balancer works, and is said to be no redundancy.
    let one = format!("{base}{}", host("lb-01", "8.8.8.20", "\"lb\""));
    let done = validate_text(&one).status(0);
    assert!(
        done.stderr().contains("warning:") && done.stderr().contains("nothing is redundant"),
        "{}",
        done.stderr()
    );
}

/// GOOD with `[site.app]` (the given lines) in `dir`, where `pw` and the application live.
fn app_inventory(dir: &std::path::Path, app: &str) -> String {
    std::fs::write(dir.join("pw"), "pw\n").unwrap();
    GOOD.replace(
        "stack = \"lemp\"\n",
        &format!("stack = \"lemp\"\n[site.app]\n{app}\n"),
    )
}

fn write_app(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("app")).unwrap();
    std::fs::write(dir.join("app/index.php"), "<?php echo 'hi';\n").unwrap();
}

#[test]
fn application_mistakes_are_named_before_any_host_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path());
    std::fs::write(dir.path().join("outside.php"), "<?php\n").unwrap();
    std::os::unix::fs::symlink("../outside.php", dir.path().join("app/link.php")).unwrap();
    for (app, want) in [
        (
            "source = \"missing\"".to_string(),
            "site.app.source: cannot use the application directory".to_string(),
        ),
        (
            "source = \"app\"".to_string(),
            "link.php is a symlink to".to_string(),
        ),
        (
            "source = \"app.tar.gz\"".to_string(),
            "site.app.source: cannot use the archive".to_string(),
        ),
        (
            "extensions = [\"mysqli\", \"oracle\"]".to_string(),
            "site.app.extensions[1]: found \"oracle\", which Debian does not ship as a PHP extension; allowed: apcu,".to_string(),
        ),
        (
            "shared = [\"../up\"]".to_string(),
            "site.app.shared[0]: found \"../up\"; allowed: a relative path".to_string(),
        ),
        (
            "release_command = \" \"".to_string(),
            "site.app.release_command: found an empty command".to_string(),
        ),
        (
            "keep = 1".to_string(),
            "site.app.keep: found 1; allowed:".to_string(),
        ),
        (
            "[site.app.php]\nmemory_limit = \"1G; x\"".to_string(),
            "site.app.php.memory_limit: found \"1G; x\"; allowed: a value of letters".to_string(),
        ),
        (
            "[[site.app.config]]\ntemplate = \"nope.tera\"\npath = \"config.php\"".to_string(),
            "site.app.config[0].template: cannot read the template".to_string(),
        ),
        (
            "git = \"app\"\nref = \"main\"".to_string(),
            "site.app.git: cannot read \"main\" of the git repository".to_string(),
        ),
        (
            "git = \"app\"\nref = \"--upload-pack=x\"".to_string(),
            "site.app.ref: found \"--upload-pack=x\"".to_string(),
        ),
    ] {
        let done = validate_in(dir.path(), &app_inventory(dir.path(), &app)).status(4);
        assert!(done.stderr().contains(&want), "{app}: {want}\n{}", done.stderr());
    }
}

#[test]
fn a_config_template_naming_an_unknown_value_fails_the_render() {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path());
    std::fs::write(
        dir.path().join("c.tera"),
        "<?php return {{ db.pasword | php_string }};\n",
    )
    .unwrap();
    let text = app_inventory(
        dir.path(),
        "source = \"app\"\n[[site.app.config]]\ntemplate = \"c.tera\"\npath = \"config.php\"",
    );
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let done = Run::new(&["render", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(out.path())
        .output();
    assert_ne!(done.code(), 0);
    let err = done.stderr();
    assert!(err.contains("c.tera") && err.contains("pasword"), "{err}");
}

#[test]
fn an_application_from_a_git_ref_or_an_archive_renders_as_a_release() {
    let dir = tempfile::tempdir().unwrap();
    write_app(dir.path());
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir.path().join("app"))
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "index.php"]);
    git(&["commit", "-q", "-m", "v1"]);
    git(&["tag", "v1"]);
    // Not committed: never deployed.
    std::fs::write(dir.path().join("app/draft.php"), "<?php\n").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-czf", "app.tar.gz", "-C", "app", "index.php"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(tar.success());
    for app in ["git = \"app\"\nref = \"v1\"", "source = \"app.tar.gz\""] {
        let inv = dir.path().join("inv.toml");
        std::fs::write(&inv, app_inventory(dir.path(), app)).unwrap();
        let out = tempfile::tempdir().unwrap();
        Run::new(&["render", "-i"])
            .arg(&inv)
            .arg("--out")
            .arg(out.path())
            .output()
            .status(0);
        let current = out.path().join("web-01/var/www/foobar.com/current");
        assert_eq!(
            std::fs::read_to_string(current.join("index.php")).unwrap(),
            "<?php echo 'hi';\n",
            "{app}"
        );
        assert!(!current.join("draft.php").exists(), "{app}");
    }
}

#[test]
fn the_micro_cache_needs_nginx() {
    let done =
        validate_text(&GOOD.replace("stack = \"lemp\"", "stack = \"lamp\"\nmicro_cache = true"))
            .status(4);
    assert!(
        done.stderr().contains(":4:15: site.micro_cache: found true with stack \"lamp\", which has no Nginx to cache in"),
        "{}",
        done.stderr()
    );
    let done = validate_text(&GOOD.replace(
        "stack = \"lemp\"",
        "stack = \"lemp\"\nmicro_cache = \"yes\"",
    ))
    .status(4);
    assert!(
        done.stderr()
            .contains("site.micro_cache: found a string \"yes\"; allowed: true or false"),
        "{}",
        done.stderr()
    );
}

/// A certificate for `names` valid from `from` to `to` days from now, signed by its own key (or
/// by `issuer`), written to DIR/NAME.crt with its key in DIR/NAME.key.
fn write_cert(
    dir: &std::path::Path,
    name: &str,
    names: &[&str],
    (from, to): (i32, i32),
    issuer: Option<(
        &openssl::x509::X509,
        &openssl::pkey::PKey<openssl::pkey::Private>,
    )>,
) -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject
        .append_entry_by_text("CN", names.first().copied().unwrap_or("test"))
        .unwrap();
    let subject = subject.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_pubkey(&key).unwrap();
    let day = 86_400i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + from as i64 * day).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + to as i64 * day).unwrap())
        .unwrap();
    if names.is_empty() {
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
    } else {
        let mut san = SubjectAlternativeName::new();
        for n in names {
            san.dns(n);
        }
        let ext = san.build(&b.x509v3_context(None, None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    match issuer {
        Some((ca, ca_key)) => {
            b.set_issuer_name(ca.subject_name()).unwrap();
            b.sign(ca_key, MessageDigest::sha256()).unwrap();
        }
        None => {
            b.set_issuer_name(&subject).unwrap();
            b.sign(&key, MessageDigest::sha256()).unwrap();
        }
    }
    let cert = b.build();
    std::fs::write(dir.join(format!("{name}.crt")), cert.to_pem().unwrap()).unwrap();
    std::fs::write(
        dir.join(format!("{name}.key")),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    (cert, key)
}

/// GOOD (www.foobar.com and foobar.com) with `tls = { ... }` in `dir`.
fn tls_inventory(dir: &std::path::Path, tls: &str) -> String {
    std::fs::write(dir.join("pw"), "pw\n").unwrap();
    GOOD.replace(
        "stack = \"lemp\"\n",
        &format!("stack = \"lemp\"\nserver_names = [\"www\", \"@\"]\ntls = {{ {tls} }}\n"),
    )
}

#[test]
fn a_given_certificate_is_checked_before_any_host_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["www.foobar.com", "foobar.com"];
    write_cert(d, "good", &names, (-1, 90), None);
    write_cert(d, "other", &names, (-1, 90), None);
    write_cert(d, "expired", &names, (-30, -1), None);
    write_cert(d, "later", &names, (2, 90), None);
    write_cert(d, "soon", &names, (-1, 10), None);
    write_cert(d, "www", &["www.foobar.com"], (-1, 90), None);
    write_cert(d, "wild", &["*.foobar.com"], (-1, 90), None);
    let (ca, ca_key) = write_cert(d, "ca", &[], (-1, 900), None);
    let (leaf, _) = write_cert(d, "leaf", &names, (-1, 90), Some((&ca, &ca_key)));
    // The leaf then its issuer: a chain in order; the other way round is refused.
    let pem = |x: &openssl::x509::X509| String::from_utf8(x.to_pem().unwrap()).unwrap();
    std::fs::write(d.join("chain.crt"), pem(&leaf) + &pem(&ca)).unwrap();
    std::fs::write(d.join("reversed.crt"), pem(&ca) + &pem(&leaf)).unwrap();
    std::fs::write(d.join("garbage.crt"), "not a certificate\n").unwrap();
    let encrypted =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(d.join("good.key")).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
            .unwrap();
    std::fs::write(d.join("encrypted.key"), encrypted).unwrap();

    let ok = |tls: &str| validate_in(d, &tls_inventory(d, tls)).status(0);
    ok("certificate = \"good.crt\", key = \"good.key\", hsts = true");
    ok("certificate = \"chain.crt\", key = \"leaf.key\"");
    ok("self_signed = true");
    let done = ok("certificate = \"soon.crt\", key = \"soon.key\"");
    assert!(
        done.stderr().contains("warning:") && done.stderr().contains("in less than 30 days"),
        "{}",
        done.stderr()
    );
    for (tls, want) in [
        (
            "certificate = \"good.crt\", key = \"other.key\"",
            format!("site.tls.key: the key in {0}/other.key is not the key of the certificate in {0}/good.crt", d.display()),
        ),
        (
            "certificate = \"expired.crt\", key = \"expired.key\"",
            format!("site.tls.certificate: the certificate in {}/expired.crt expired on", d.display()),
        ),
        (
            "certificate = \"later.crt\", key = \"later.key\"",
            "site.tls.certificate: the certificate in".to_string() + " " + &format!("{}/later.crt is valid only from", d.display()),
        ),
        (
            "certificate = \"www.crt\", key = \"www.key\"",
            "does not cover \"foobar.com\" (it has www.foobar.com); allowed: a certificate whose subjectAltName covers every name".to_string(),
        ),
        (
            "certificate = \"wild.crt\", key = \"wild.key\"",
            "does not cover \"foobar.com\" (it has *.foobar.com)".to_string(),
        ),
        (
            "certificate = \"reversed.crt\", key = \"ca.key\"",
            "site.tls.certificate: certificate 2 in".to_string(),
        ),
        (
            "certificate = \"garbage.crt\", key = \"good.key\"",
            "holds no PEM certificate".to_string(),
        ),
        (
            "certificate = \"good.crt\", key = \"encrypted.key\"",
            "site.tls.key: ".to_string() + &format!("{}/encrypted.key holds no unencrypted PEM private key", d.display()),
        ),
        (
            "certificate = \"missing.crt\", key = \"good.key\"",
            "site.tls.certificate: cannot read".to_string(),
        ),
        (
            "self_signed = true, certificate = \"good.crt\"",
            "site.tls: found self_signed = true with a certificate or key".to_string(),
        ),
        (
            "certificate = \"good.crt\"",
            "site.tls.key: missing: a certificate needs its private key".to_string(),
        ),
        ("hsts = true", "site.tls: no certificate; allowed: self_signed = true".to_string()),
        ("self_signed = \"yes\"", "site.tls.self_signed: found a string \"yes\"; allowed: true or false".to_string()),
    ] {
        let done = validate_in(d, &tls_inventory(d, tls)).status(4);
        let err = done.stderr();
        // Every message is located (file:line:column) and names no key material.
        assert!(err.contains(&want) && err.contains("inv.toml:5:"), "{tls}: {want}\n{err}");
        assert!(!err.contains("PRIVATE KEY"), "{err}");
    }
}

/// The user's certificate is rendered into the web server's directory with its key (0600, masked
/// in the manifest) and checked by the server itself: `nginx -t` loads both.
#[test]
fn a_given_certificate_renders_and_its_key_stays_out_of_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_cert(d, "good", &["www.foobar.com", "foobar.com"], (-1, 90), None);
    let inv = d.join("inv.toml");
    std::fs::write(
        &inv,
        tls_inventory(d, "certificate = \"good.crt\", key = \"good.key\""),
    )
    .unwrap();
    let out = d.join("out");
    let done = Run::new(&["render", "--check", "-i"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .status(0);
    assert!(
        done.stdout().contains("web-01: nginx: ok"),
        "{}",
        done.stdout()
    );
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(!manifest.contains("PRIVATE KEY"), "{manifest}");
    let file = out.join("web-01/etc/nginx/tls/foobar.com.pem");
    // Without --reveal-secrets the key is a visible placeholder; the check used the real one.
    let pem = std::fs::read_to_string(&file).unwrap();
    assert!(
        !pem.contains("PRIVATE KEY")
            && pem.contains("<secret site.tls.key hidden")
            && pem.contains("BEGIN CERTIFICATE"),
        "{pem}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let site =
        std::fs::read_to_string(out.join("web-01/etc/nginx/sites-available/foobar.com.conf"))
            .unwrap();
    assert!(
        site.contains("ssl_certificate tls/foobar.com.pem;")
            && site.contains("return 301 https://$host$request_uri;"),
        "{site}"
    );
}

#[test]
fn firewall_mistakes_are_named_before_any_host_is_touched() {
    for (fw, want) in [
        (
            "admin_sources = [\"office\"]",
            "firewall.admin_sources[0]: found \"office\"; allowed: a network like \"203.0.113.0/24\"",
        ),
        (
            "admin_sources = [\"198.18.0.0/33\"]",
            "firewall.admin_sources[0]: found \"198.18.0.0/33\"",
        ),
        ("admin_sources = []", "firewall.admin_sources: found an empty list"),
        (
            "admin_sources = [\"198.18.0.0/24\", \"198.18.0.9/24\"]",
            "firewall.admin_sources[1]: found \"198.18.0.9/24\" twice",
        ),
        ("", "firewall.admin_sources: missing"),
    ] {
        let done = validate_text(&format!("{GOOD}[firewall]\n{fw}\n")).status(4);
        assert!(done.stderr().contains(want), "{fw}: {want}\n{}", done.stderr());
    }
    // A ruleset that would not let this machine back in over SSH is refused before connecting:
    // the host is reached from 127.0.0.1 (the kernel's route; no packet is sent), which the admin
    // networks leave out.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "pw\n").unwrap();
    let text = GOOD.replace("198.18.0.10", "127.0.0.2")
        + "[firewall]\nadmin_sources = [\"203.0.113.0/24\"]\n";
    let inv = dir.path().join("inv.toml");
    std::fs::write(&inv, text).unwrap();
    let done = Run::new(&["plan", "-i"]).arg(&inv).output().status(4);
    assert!(
        done.stderr().contains(":16:17: firewall.admin_sources: would block SSH from this machine to host web-01: it reaches 127.0.0.2 from 127.0.0.1, which no admin source covers"),
        "{}",
        done.stderr()
    );
}

#[test]
fn backup_mistakes_are_located() {
    for (b, want) in [
        ("keep_days = 0", "backup.keep_days: found 0; allowed:"),
        (
            "time = \"3:15\"",
            "backup.time: found \"3:15\"; allowed: a time of day as HH:MM",
        ),
        ("time = \"24:00\"", "backup.time: found \"24:00\""),
        ("every = \"day\"", "backup.every: found an unknown key"),
    ] {
        let done = validate_text(&format!("{GOOD}[backup]\n{b}\n")).status(4);
        assert!(
            done.stderr().contains(want),
            "{b}: {want}\n{}",
            done.stderr()
        );
    }
    validate_text(&format!("{GOOD}[backup]\n")).status(0);
}

/// `acme = { ... }` mistakes (issue 24's list) are located errors before any host is touched, and
/// a good one validates; with balancers, or several web hosts and none in front, acme is refused
/// until both can serve one certificate.
#[test]
fn acme_mistakes_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let acme = |a: &str| tls_inventory(d, &format!("acme = {{ {a} }}"));
    validate_in(d, &acme("contact = \"hostmaster@foobar.com\"")).status(0);
    validate_in(
        d,
        &acme("contact = \"a@foobar.com\", directory = \"http://198.18.0.111:14000/dir\", test_ca = true, names = [\"foobar.com\"]"),
    )
    .status(0);
    // DNS-01: wildcards and names beyond the site's own, in its domain; needs a dns host.
    let dns01 = acme("contact = \"a@foobar.com\", challenge = \"dns-01\", names = [\"foobar.com\", \"*.foobar.com\", \"*.shop.foobar.com\"]");
    validate_in(d, &dns01).status(0);
    let err = validate_in(d, &dns01.replace("\"db\", \"dns\"]", "\"db\"]"))
        .status(4)
        .stderr();
    assert!(
        err.contains("site.tls.acme.challenge: found \"dns-01\", but no host has the \"dns\" role"),
        "{err}"
    );
    std::fs::write(d.join("notpem"), "hello\n").unwrap();
    for (a, want) in [
        ("directory = \"staging\"", "site.tls.acme.contact: missing: the CA account's e-mail address"),
        ("contact = \"hostmaster\"", "site.tls.acme.contact: found \"hostmaster\"; allowed: an e-mail address"),
        ("contact = \"a b@foobar.com\"", "site.tls.acme.contact: found \"a b@foobar.com\"; allowed: an e-mail address"),
        ("contact = \"a@foobar.com\", directory = \"http://ca.example/dir\"", "site.tls.acme.directory: found \"http://ca.example/dir\"; allowed: \"letsencrypt\", \"staging\", or the directory URL of the CA, https:// (http:// only with test_ca = true)"),
        ("contact = \"a@foobar.com\", directory = \"https://ca.example/$(reboot)\"", "site.tls.acme.directory: found \"https://ca.example/$(reboot)\""),
        ("contact = \"a@foobar.com\", names = [\"*.foobar.com\"]", "site.tls.acme.names[0]: found \"*.foobar.com\", a wildcard, which only challenge \"dns-01\" can prove"),
        ("contact = \"a@foobar.com\", names = [\"shop.foobar.com\"]", "site.tls.acme.names[0]: found \"shop.foobar.com\", which the site does not answer to; allowed: www.foobar.com, foobar.com"),
        ("contact = \"a@foobar.com\", names = []", "site.tls.acme.names: found an empty list"),
        ("contact = \"a@foobar.com\", challenge = \"tls-alpn-01\"", "site.tls.acme.challenge: found \"tls-alpn-01\"; allowed: \"http-01\" (the default) or \"dns-01\""),
        ("contact = \"a@foobar.com\", challenge = \"dns-01\", names = [\"*.foobar.org\"]", "site.tls.acme.names[0]: found \"*.foobar.org\"; allowed: the site's domain or a name under it, each optionally a wildcard (*.shop.example.com); foobar.org is not in foobar.com"),
        ("contact = \"a@foobar.com\", challenge = \"dns-01\", names = [\"*.*.foobar.com\"]", "site.tls.acme.names[0]: found \"*.*.foobar.com\"; allowed: the site's domain or a name under it"),
        ("contact = \"a@foobar.com\", names = [\"foobar.com\", \"foobar.com\"]", "site.tls.acme.names[1]: found \"foobar.com\" twice"),
        ("contact = \"a@foobar.com\", ca_bundle = \"notpem\"", "site.tls.acme.ca_bundle: "),
        ("contact = \"a@foobar.com\", colour = \"red\"", "site.tls.acme.colour: found an unknown key"),
    ] {
        let err = validate_in(d, &acme(a)).status(4).stderr();
        assert!(err.contains(want) && err.contains("inv.toml:5:"), "{a}: {want}\n{err}");
    }
    for (tls, want) in [
        (
            "self_signed = true, acme = { contact = \"a@foobar.com\" }",
            "site.tls: found acme with self_signed = true",
        ),
        (
            "certificate = \"x.crt\", key = \"x.key\", acme = { contact = \"a@foobar.com\" }",
            "site.tls: found acme with a certificate or key",
        ),
    ] {
        let err = validate_in(d, &tls_inventory(d, tls)).status(4).stderr();
        assert!(
            err.contains(want) && err.contains("inv.toml:5:"),
            "{tls}: {want}\n{err}"
        );
    }
    let host = |name: &str, addr: &str, roles: &str| {
        format!("[[hosts]]\nname = \"{name}\"\npublic_address = \"{addr}\"\nroles = [{roles}]\nssh = {{ address = \"{addr}\" }}\n")
    };
    let two_web = format!(
        "{}{}",
        acme("contact = \"a@foobar.com\""),
        host("web-02", "8.8.8.9", "\"web\", \"app\"")
    );
    let err = validate_in(d, &two_web).status(4).stderr();
    assert!(
        err.contains(
            "site.tls.acme: the site is served by web-01, web-02 with no load balancer in front"
        ),
        "{err}"
    );
    let lbs = format!(
        "{}{}{}",
        two_web.replace(
            "[[hosts]]\nname = \"web-01\"",
            "[lb]\nfloating_address = \"8.8.8.30/24\"\nvirtual_router_id = 51\n[[hosts]]\nname = \"web-01\""
        ),
        host("lb-01", "8.8.8.20", "\"lb\""),
        host("lb-02", "8.8.8.21", "\"lb\"")
    );
    let err = validate_in(d, &lbs).status(4).stderr();
    assert!(
        err.contains("site.tls.acme: TLS ends on the load balancers (lb-01, lb-02), which each ask for a certificate of their own"),
        "{err}"
    );
    // Over DNS-01 (a dns host among them) each balancer asks for its own.
    let dns01 = lbs
        .replace(
            "acme = { contact = \"a@foobar.com\" }",
            "acme = { contact = \"a@foobar.com\", challenge = \"dns-01\" }",
        )
        .replace("roles = [\"lb\"]", "roles = [\"lb\", \"dns\"]");
    assert!(dns01.contains("dns-01"));
    validate_in(d, &dns01).status(0);
}
