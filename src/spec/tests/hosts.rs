//! Hosts and their roles, the database accounts, DNS records, the lab table, SSH settings, the
//! health check; and the error list as a whole (order, volume).

use super::*;

#[test]
fn duplicate_host_names_are_refused() {
    let text = format!("{GOOD}\n[[hosts]]\nname = \"web-01\"\npublic_address = \"8.8.8.9\"\nroles = [\"dns\"]\nssh = {{ address = \"198.18.0.11\" }}\n");
    let errs = parse(&text).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "hosts[1].name");
    assert!(
        errs[0].message.contains("again (first at hosts[0])"),
        "{}",
        errs[0].message
    );
}

#[test]
fn role_sets_that_cannot_work_are_refused() {
    let e = one_error(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["db", "dns"]"#,
    );
    assert!(
        e.message.contains("no host has the \"web\" role"),
        "{}",
        e.message
    );
    let e = one_error(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["web", "db", "dns"]"#,
    );
    assert!(
        e.message.contains("\"web\" and \"app\" go together"),
        "{}",
        e.message
    );
    let e = one_error(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["web", "app", "dns"]"#,
    );
    assert!(
        e.message.contains("no host has the \"db\" role"),
        "{}",
        e.message
    );
    let e = one_error(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["web", "app", "db"]"#,
    );
    assert_eq!(e.key, "dns.nameservers");
    let e = one_error(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["web", "app", "db", "dns", "cache"]"#,
    );
    assert_eq!(e.key, "hosts[0].roles[4]");
}

#[test]
fn an_lb_with_no_web_hosts_is_refused() {
    let text = GOOD.replace(
        r#"roles = ["web", "app", "db", "dns"]"#,
        r#"roles = ["lb", "db", "dns"]"#,
    );
    let msgs: Vec<String> = parse(&text)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.message.clone())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("\"lb\" host with no \"web\" hosts")),
        "{msgs:#?}"
    );
}

#[test]
fn a_replica_needs_a_replication_secret() {
    let text = format!("{GOOD}\n[[hosts]]\nname = \"db-02\"\npublic_address = \"8.8.8.9\"\nroles = [\"db-replica\"]\nssh = {{ address = \"198.18.0.11\" }}\n");
    let errs = parse(&text).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.message.contains("no replication_password")),
        "{errs:#?}"
    );
}

#[test]
fn all_errors_are_reported_in_file_order() {
    let text = GOOD
        .replace(r#"domain = "foobar.com""#, r#"domain = "x""#)
        .replace("port = 22", "port = 0");
    let errs = parse(&text).unwrap_err().0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["site.domain", "hosts[0].ssh.port"]);
}

#[test]
fn dns_records_are_checked_per_type() {
    let base = GOOD.replace(
        "[[hosts]]",
        "[[dns.records]]\nname = \"mail\"\ntype = \"A\"\nvalue = \"VALUE\"\n\n[[hosts]]",
    );
    assert!(parse(&base.replace("VALUE", "8.8.4.4")).is_ok());
    let errs = parse(&base.replace("VALUE", "mail.foobar.com"))
        .unwrap_err()
        .0;
    assert_eq!(errs[0].key, "dns.records[0].value");
    let txt = base
        .replace("\"A\"", "\"TXT\"")
        .replace("VALUE", r#"v=spf1 \"quoted\""#);
    let s = parse(&txt).unwrap();
    assert_eq!(s.sites[0].dns.records[0].value, r#""v=spf1 \"quoted\"""#);
}

/// Each error's position is found by a binary search over line starts; counting lines from the
/// start of the text for each error made 20,000 of them take 21 s. Not timed here (machines are
/// noisy): it proves they are all reported, located, and in file order.
#[test]
fn twenty_thousand_errors_are_all_located_in_file_order() {
    let records: String = (0..20_000)
        .map(|i| format!("[[dns.records]]\nname = \"r{i}\"\ntype = \"A\"\nvalue = \"bad-{i}\"\n\n"))
        .collect();
    let text = GOOD.replace("[[hosts]]", &format!("{records}[[hosts]]"));
    let errs = parse(&text).unwrap_err().0;
    assert_eq!(errs.len(), 20_000);
    for (i, e) in errs.iter().enumerate() {
        assert_eq!(e.key, format!("dns.records[{i}].value"));
        // [[hosts]] was on line 15: record i starts there plus 5 lines each, its value is 3 lines in.
        assert_eq!((e.line, e.column), (18 + 5 * i, 9), "{e}");
    }
}

#[test]
fn system_databases_and_accounts_are_refused_in_any_case() {
    for name in ["mysql", "information_schema", "PERFORMANCE_SCHEMA", "Sys"] {
        let e = one_error(r#"name = "foobar""#, &format!("name = \"{name}\""));
        assert_eq!(e.key, "database.name");
        assert_eq!(
            e.message,
            format!(
                "found \"{name}\"; allowed: a name other than the system databases mysql, \
                 information_schema, performance_schema, sys (in any case)"
            )
        );
    }
    for user in ["root", "ROOT", "mysql", "PUBLIC", "public"] {
        let e = one_error(r#"user = "foobar""#, &format!("user = \"{user}\""));
        assert_eq!(e.key, "database.user");
        assert_eq!(
            e.message,
            format!(
                "found \"{user}\"; allowed: a name other than the system accounts root, \
                 mariadb.sys, mysql, debian-sys-maint, PUBLIC (in any case)"
            )
        );
    }
    // The others are not even identifiers provision accepts.
    for user in ["debian-sys-maint", "mariadb.sys"] {
        let e = one_error(r#"user = "foobar""#, &format!("user = \"{user}\""));
        assert!(
            e.message.contains("allowed: a SQL identifier"),
            "{}",
            e.message
        );
    }
    let e = one_error(
        r#"password_env = "DB_PW""#,
        "password_env = \"DB_PW\"\nreplication_user = \"Root\"\nreplication_password_env = \"DB_PW\"",
    );
    assert_eq!(e.key, "database.replication_user");
}

#[test]
fn the_replication_user_must_differ_from_the_application_user() {
    let e = one_error(
        r#"password_env = "DB_PW""#,
        "password_env = \"DB_PW\"\nreplication_user = \"FooBar\"\nreplication_password_env = \"DB_PW\"",
    );
    assert_eq!(
        (e.line, e.key.as_str(), e.message.as_str()),
        (
            10,
            "database.replication_user",
            "found \"FooBar\", the same as database.user; allowed: a replication user other than \
             the application user, which must not hold replication privileges"
        )
    );
    // Without replication_user, the default "replicator" is what collides.
    let e = one_error(
        r#"user = "foobar""#,
        "user = \"replicator\"\nreplication_password_env = \"DB_PW\"",
    );
    assert_eq!(e.key, "database.user");
    assert!(
        e.message
            .starts_with("found \"replicator\", the same as the default replication_user"),
        "{}",
        e.message
    );
}

#[test]
fn the_lab_table_takes_a_flavour_and_a_release() {
    let with_lab =
        |lab: &str| GOOD.replace("[hosts.ssh]", &format!("[hosts.lab]\n{lab}\n[hosts.ssh]"));
    for lab in [
        "release = \"bookworm\"",
        "release = \"trixie\"\nflavour = \"plain\"",
        "flavour = \"systemd\"",
        "",
    ] {
        parse(&with_lab(lab)).unwrap_or_else(|e| panic!("{lab:?}: {e}"));
    }
    let errs = parse(&with_lab("release = \"sid\"")).unwrap_err().0;
    assert_eq!(
        errs[0].to_string(),
        "inv.toml:20:11: hosts[0].lab.release: found \"sid\"; allowed: \"bookworm\" (Debian 12) or \"trixie\" (Debian 13)"
    );
    let errs = parse(&with_lab("release = 12")).unwrap_err().0;
    assert_eq!(
        errs[0].to_string(),
        "inv.toml:20:11: hosts[0].lab.release: found the whole number 12; allowed: \"bookworm\" or \"trixie\""
    );
    let errs = parse(&with_lab("relase = \"trixie\"")).unwrap_err().0;
    assert_eq!(
        errs[0].message,
        "found an unknown key (did you mean release?); allowed in the table hosts[0].lab: flavour, release, network, address"
    );
    parse(&with_lab("network = \"inner\"\naddress = \"198.18.0.130\"")).unwrap();
    let errs = parse(&with_lab("network = \"dmz\"")).unwrap_err().0;
    assert!(
        errs[0].to_string().contains(
            "hosts[0].lab.network: found \"dmz\"; allowed: \"outer\", \"inner\" or \"bastion\""
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn proxy_jump_and_the_ssh_config_file_are_checked_and_kept_as_written() {
    let with = |extra: &str| GOOD.replace("port = 22", &format!("port = 22\n{extra}"));
    let s = parse(&with(
        "proxy_jump = \"ops@bastion:2222,inner-jump\"\nconfig = \"none\"",
    ))
    .unwrap();
    let ssh = &s.hosts[0].ssh;
    assert_eq!(
        ssh.proxy_jump.as_deref(),
        Some("ops@bastion:2222,inner-jump")
    );
    assert_eq!(ssh.config, crate::spec::SshConfigFile::None);
    assert!(!ssh.unset.port && ssh.unset.connect_timeout);
    let s = parse(&with("config = \"lab/ssh_config\"")).unwrap();
    assert_eq!(
        s.hosts[0].ssh.config,
        crate::spec::SshConfigFile::File("./lab/ssh_config".into())
    );
    let e = one_error("port = 22", "port = 22\nproxy_jump = \"a b\"");
    assert_eq!(e.key, "hosts[0].ssh.proxy_jump");
    assert!(
        e.message
            .starts_with("found \"a b\"; allowed: jump hosts like"),
        "{}",
        e.message
    );
}

#[test]
fn the_health_check_of_a_users_app_is_configurable_and_checked() {
    let with = |table: &str| {
        GOOD.replace(
            "[database]",
            &format!("[site.health_check]\n{table}\n\n[database]"),
        )
    };
    let s = parse(&with(
        "path = \"/health.php?full=1\"\nstatus = 204\nexpect = \"ok\"",
    ))
    .unwrap();
    assert_eq!(
        s.sites[0].health_check,
        AppCheck {
            path: "/health.php?full=1".into(),
            status: 204,
            expect: Some("ok".into())
        }
    );
    assert_eq!(parse(GOOD).unwrap().sites[0].health_check.path, "/");
    let errs = parse(&with("path = \"/a b\"")).unwrap_err().0;
    assert!(
        errs[0]
            .to_string()
            .contains("site.health_check.path: found \"/a b\"; allowed: a URL path"),
        "{}",
        errs[0]
    );
    let errs = parse(&with("status = 99")).unwrap_err().0;
    assert!(
        errs[0].to_string().contains("site.health_check.status"),
        "{}",
        errs[0]
    );
}
