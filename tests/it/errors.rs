use crate::util::*;

fn validate_text(text: &str) -> Done {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
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
        ("stack = \"lemp\"", "stack = \"lemp\"\ncolour = \"red\"", ":4:1: site.colour: unknown field `colour`"),
        ("domain = \"foobar.com\"", "domain = \"foo\\nbar.com\"", ":2:10: site.domain: found \"foo\\nbar.com\""),
        ("domain = \"foobar.com\"", "domain = \"foobar.com;\"", ":2:10: site.domain: found \"foobar.com;\"; allowed: a DNS name"),
        ("stack = \"lemp\"", "stack = \"mean\"", ":3:9: site.stack: found \"mean\"; allowed: one of \"lemp\", \"lamp\", \"nginx-apache\""),
        ("name = \"foobar\"", "name = \"foo'bar\"", ":5:8: database.name: found \"foo'bar\"; allowed: a SQL identifier"),
        ("password_file = \"pw\"", "password_file = \"missing\"", ":7:17: database.password_file: cannot read file"),
        ("public_address = \"8.8.8.8\"", "public_address = \"8.8.8\"", ":12:18: hosts[0].public_address: found \"8.8.8\"; allowed: an IPv4 or IPv6 address"),
        ("{ address = \"198.18.0.10\" }", "{ address = \"198.18.0.10\", port = 0 }", "hosts[0].ssh.port: found 0; allowed: a whole number from 1 to 65535"),
        ("{ address = \"198.18.0.10\" }", "{ address = \"$(reboot)\" }", "hosts[0].ssh.address: found \"$(reboot)\"; allowed: an IP address or a DNS name"),
        ("roles = [\"web\", \"app\", \"db\", \"dns\"]", "roles = [\"lb\", \"db\", \"dns\"]", "no host has the \"web\" role"),
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
