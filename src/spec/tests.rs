use super::*;
use std::collections::HashMap;

mod files;
mod fuzz;
mod rendered;
mod shape;

/// Sources from memory. A path is its own identity, unless `same` says two paths are one file.
#[derive(Default)]
pub(super) struct Fake {
    pub env: HashMap<String, String>,
    pub files: HashMap<PathBuf, Vec<u8>>,
    pub trees: HashMap<PathBuf, Vec<TreeFile>>,
}

impl Sources for Fake {
    fn env_var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn read_file(&self, path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
        let mut f = self
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        f.truncate(limit + 1);
        Ok(f)
    }
    fn read_tree(&self, dir: &Path) -> std::io::Result<Vec<TreeFile>> {
        self.trees
            .get(dir)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn file_key(&self, path: &Path) -> std::io::Result<FileKey> {
        let known = self.files.contains_key(path)
            || self.trees.values().flatten().any(|f| f.key.real == path);
        if known {
            Ok(FileKey {
                real: path.to_path_buf(),
                inode: None,
            })
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }
}

const GOOD: &str = r#"[site]
domain = "foobar.com"
server_names = ["www"]
stack = "lemp"

[database]
name = "foobar"
user = "foobar"
password_env = "DB_PW"

[dns]
ttl = 300
soa_contact = "hostmaster@foobar.com"

[[hosts]]
name = "web-01"
public_address = "8.8.8.8"
roles = ["web", "app", "db", "dns"]
[hosts.ssh]
address = "198.18.0.10"
port = 22
"#;

fn fake() -> Fake {
    let mut f = Fake::default();
    f.env
        .insert("DB_PW".into(), r#"p'a"s$s\w;o{r}d$(x)"#.into());
    f
}

fn parse(text: &str) -> Result<Spec, SpecErrors> {
    Spec::parse(text, Path::new("inv.toml"), &fake())
}

/// Parses `GOOD` with one line replaced and returns the single error it must produce.
fn one_error(from: &str, to: &str) -> SpecError {
    assert!(GOOD.contains(from), "fixture has no {from:?}");
    let text = GOOD.replacen(from, to, 1);
    let errs = parse(&text).expect_err("the inventory was accepted").0;
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn the_good_inventory_parses_with_defaults() {
    let s = parse(GOOD).unwrap();
    assert_eq!(s.site.domain.as_str(), "foobar.com");
    assert_eq!(s.site.document_root, "/var/www/foobar.com");
    assert_eq!(s.site.php_version, None);
    assert_eq!(s.hosts[0].ssh.user, "root");
    assert_eq!(s.database.password.expose(), r#"p'a"s$s\w;o{r}d$(x)"#);
    assert!(s.db_is_local());
}

#[test]
fn an_error_names_file_line_column_key_found_and_allowed() {
    let e = one_error(r#"domain = "foobar.com""#, r#"domain = "foo;bar.com""#);
    assert_eq!(e.to_string().split(": ").next().unwrap(), "inv.toml:2:10");
    assert_eq!(e.key, "site.domain");
    assert!(
        e.message.contains(r#"found "foo;bar.com""#),
        "{}",
        e.message
    );
    assert!(e.message.contains("allowed: a DNS name"), "{}", e.message);
}

#[test]
fn malformed_toml_is_reported_with_its_position() {
    let errs = parse("[site\ndomain = 1").unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].line, errs[0].file.to_str().unwrap()),
        (1, "inv.toml")
    );
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    let e = one_error("port = 22", "port = 22\nprot = 2222");
    assert_eq!(e.key, "hosts[0].ssh.prot");
    assert_eq!(
        e.message,
        "found an unknown key (did you mean port?); allowed in the table hosts[0].ssh: address, \
         port, user, identity_file, known_hosts, connect_timeout, proxy_jump, config"
    );
    assert_eq!((e.line, e.column), (22, 1));
    let e = one_error("[dns]", "[dnss]\nx = 1\n[dns]");
    assert_eq!(e.key, "dnss");
    assert!(
        e.message.starts_with(
            "found an unknown key (did you mean dns?); allowed in the top level of the file: "
        ),
        "{}",
        e.message
    );
}

#[test]
fn a_missing_secret_names_the_variable_but_no_value() {
    let errs = Spec::parse(GOOD, Path::new("inv.toml"), &Fake::default())
        .unwrap_err()
        .0;
    assert_eq!(errs[0].key, "database.password_env");
    assert!(
        errs[0]
            .message
            .contains("environment variable DB_PW is not set"),
        "{}",
        errs[0].message
    );
}

#[test]
fn an_empty_secret_file_is_refused() {
    let mut f = Fake::default();
    f.files.insert(PathBuf::from("./pw"), b"\n".to_vec());
    let text = GOOD.replace(r#"password_env = "DB_PW""#, r#"password_file = "pw""#);
    let errs = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap_err().0;
    assert!(
        errs[0].message.contains("the secret is empty"),
        "{}",
        errs[0].message
    );
}

#[test]
fn a_secret_with_a_newline_is_refused_without_showing_it() {
    let mut f = fake();
    f.env.insert("DB_PW".into(), "top\nsecret".into());
    let errs = Spec::parse(GOOD, Path::new("inv.toml"), &f).unwrap_err().0;
    let msg = errs[0].to_string();
    assert!(
        msg.contains("control character") && !msg.contains("top") && !msg.contains("secret\""),
        "{msg}"
    );
}

#[test]
fn a_secret_file_loses_one_trailing_newline_only() {
    let mut f = Fake::default();
    f.files
        .insert(PathBuf::from("./pw"), b" spaced $pw \n".to_vec());
    let text = GOOD.replace(r#"password_env = "DB_PW""#, r#"password_file = "pw""#);
    let s = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap();
    assert_eq!(s.database.password.expose(), " spaced $pw ");
}

#[test]
fn invalid_addresses_and_ports() {
    let e = one_error(
        r#"public_address = "8.8.8.8""#,
        r#"public_address = "8.8.8.256""#,
    );
    assert_eq!(e.key, "hosts[0].public_address");
    let e = one_error("port = 22", "port = 70000");
    assert_eq!(e.key, "hosts[0].ssh.port");
    assert!(
        e.message
            .contains("found 70000; allowed: a whole number from 1 to 65535"),
        "{}",
        e.message
    );
    let e = one_error(
        r#"address = "198.18.0.10""#,
        r#"address = "198.18.0.10; rm -rf /""#,
    );
    assert_eq!(e.key, "hosts[0].ssh.address");
}

#[test]
fn sql_identifiers_refuse_injection() {
    let e = one_error(
        r#"name = "foobar""#,
        r#"name = "foo`; DROP DATABASE x; --""#,
    );
    assert_eq!(e.key, "database.name");
    assert!(
        e.message.contains("allowed: a SQL identifier"),
        "{}",
        e.message
    );
    let e = one_error(r#"user = "foobar""#, r#"user = "foo'@'%""#);
    assert_eq!(e.key, "database.user");
}

#[test]
fn values_that_could_break_out_of_a_config_line_are_refused() {
    for bad in [
        "foo\\nbar.com",
        "foo;bar.com",
        "foo'bar.com",
        "foo\\\"bar.com",
        "$(reboot).com",
        "{}.com",
    ] {
        let e = one_error(r#"domain = "foobar.com""#, &format!(r#"domain = "{bad}""#));
        assert_eq!(e.key, "site.domain", "{bad}");
    }
    for bad in [
        "/var/www/a;b",
        "/var/www/$(x)",
        "/var/www/{x}",
        "/var/www/a\\nb",
        "/var/www/a'b",
    ] {
        let e = one_error(
            r#"stack = "lemp""#,
            &format!("stack = \"lemp\"\ndocument_root = \"{bad}\""),
        );
        assert_eq!(e.key, "site.document_root", "{bad}");
    }
    let e = one_error(r#"server_names = ["www"]"#, r#"server_names = ["www;"]"#);
    assert_eq!(e.key, "site.server_names[0]");
}

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
    assert_eq!(s.dns.records[0].value, r#""v=spf1 \"quoted\"""#);
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
        s.site.health_check,
        AppCheck {
            path: "/health.php?full=1".into(),
            status: 204,
            expect: Some("ok".into())
        }
    );
    assert_eq!(parse(GOOD).unwrap().site.health_check.path, "/");
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
