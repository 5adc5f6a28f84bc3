use super::*;
use crate::secret::SecretKey;
use std::collections::HashMap;

mod files;
mod fuzz;
mod hosts;
mod rendered;
mod shape;
mod sites;

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

pub(super) fn parse(text: &str) -> Result<Spec, SpecErrors> {
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
    assert_eq!(s.sites[0].domain.as_str(), "foobar.com");
    assert_eq!(s.sites[0].document_root, "/var/www/foobar.com");
    assert_eq!(s.sites[0].php_version, None);
    assert_eq!(s.hosts[0].ssh.user, "root");
    assert!(s
        .secrets
        .get(SecretKey::DatabasePassword(crate::secret::SiteRef::ONE))
        .unwrap()
        .is(r#"p'a"s$s\w;o{r}d$(x)"#));
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
    assert!(s
        .secrets
        .get(SecretKey::DatabasePassword(crate::secret::SiteRef::ONE))
        .unwrap()
        .is(" spaced $pw "));
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
