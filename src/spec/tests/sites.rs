//! `[[sites]]`: several sites on the same hosts, and what no two of them may share.

use super::*;

/// Two lemp sites on two web hosts, a database and a name server.
const TWO: &str = r#"[[sites]]
name = "shop"
domain = "shop.example"
stack = "lemp"

[sites.database]
name = "shop"
user = "shop"
password_env = "DB_PW"

[sites.dns]
soa_contact = "hostmaster@shop.example"

[[sites]]
domain = "blog.example"
stack = "lemp"
hosts = ["web-02"]

[sites.database]
name = "blog"
user = "blog"
password_env = "DB_PW"

[sites.dns]
soa_contact = "hostmaster@blog.example"

[[hosts]]
name = "web-01"
public_address = "8.8.8.8"
roles = ["web", "app"]
[hosts.ssh]
address = "198.18.0.10"

[[hosts]]
name = "web-02"
public_address = "8.8.8.9"
roles = ["web", "app"]
[hosts.ssh]
address = "198.18.0.11"

[[hosts]]
name = "db-01"
public_address = "8.8.8.7"
roles = ["db", "dns"]
[hosts.ssh]
address = "198.18.0.12"
"#;

/// Parses `TWO` with `from` replaced by `to` (once), and returns its errors.
fn errors(from: &str, to: &str) -> Vec<SpecError> {
    assert!(TWO.contains(from), "fixture has no {from:?}");
    parse(&TWO.replacen(from, to, 1))
        .expect_err("the inventory was accepted")
        .0
}

/// The one error of `TWO` edited, as `line:column: key: message`.
fn one(from: &str, to: &str) -> String {
    let errs = errors(from, to);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = &errs[0];
    format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message)
}

#[test]
fn several_sites_parse_each_with_its_own_database_zone_and_hosts() {
    let s = parse(TWO).unwrap();
    assert_eq!(s.sites.len(), 2);
    let (shop, blog) = (&s.sites[0], &s.sites[1]);
    assert_eq!(shop.name, "shop");
    // Without a name, one is made from the domain.
    assert_eq!(blog.name, "blog-example");
    assert_eq!(shop.hosts, ["web-01", "web-02"]);
    assert_eq!(blog.hosts, ["web-02"]);
    assert_eq!(blog.database.name, "blog");
    assert_eq!(blog.dns.soa_contact, "hostmaster.blog.example.");
    let web1 = s.host("web-01").unwrap();
    assert_eq!(s.sites_on(web1).count(), 1);
    // Each site's password is registered as its own.
    let at = crate::secret::SiteRef {
        index: 1,
        many: true,
    };
    assert!(s.secrets.get(SecretKey::DatabasePassword(at)).is_some());
    assert_eq!(
        SecretKey::DatabasePassword(at).name(),
        "sites[1].database.password"
    );
}

#[test]
fn a_sites_errors_name_its_table() {
    let e = one("domain = \"blog.example\"", "domain = \"blog;example\"");
    assert!(
        e.starts_with("15:10: sites[1].domain: found \"blog;example\"; allowed: a DNS name"),
        "{e}"
    );
    let e = one("name = \"blog\"", "name = \"mysql\"");
    assert!(
        e.starts_with("20:8: sites[1].database.name: found \"mysql\""),
        "{e}"
    );
}

#[test]
fn two_sites_may_not_share_a_name_database_user_document_root_or_zone() {
    for (from, to, want) in [
        (
            "domain = \"blog.example\"",
            "name = \"shop\"\ndomain = \"blog.example\"",
            "sites[1].name: found \"shop\", which sites[0] already has",
        ),
        (
            "domain = \"blog.example\"",
            "domain = \"shop.example\"",
            "sites[1].domain: found \"shop.example\", which sites[0] already has",
        ),
        (
            "name = \"blog\"",
            "name = \"shop\"",
            "sites[1].database.name: found \"shop\", which sites[0] already has",
        ),
        (
            "user = \"blog\"",
            "user = \"SHOP\"",
            "sites[1].database.user: found \"SHOP\", which sites[0] already has",
        ),
        (
            "hosts = [\"web-02\"]",
            "hosts = [\"web-02\"]\ndocument_root = \"/var/www/shop.example/blog\"",
            "sites[1].document_root: found \"/var/www/shop.example/blog\", which is inside or around the document root of sites[0]",
        ),
    ] {
        let errs = errors(from, to);
        assert!(
            errs.iter().any(|e| format!("{}: {}", e.key, e.message).starts_with(want)),
            "{want}: {errs:#?}"
        );
    }
}

#[test]
fn a_server_name_is_one_sites_only() {
    let text = TWO.replacen(
        "domain = \"blog.example\"",
        "domain = \"blog.example\"\nserver_names = [\"www\", \"shop\"]",
        1,
    );
    let text = text.replacen(
        "domain = \"shop.example\"",
        "domain = \"shop.example\"\nserver_names = [\"@\"]",
        1,
    );
    // shop.blog.example and shop.example differ: no clash.
    assert!(parse(&text).is_ok());
    let clash = TWO.replacen(
        "domain = \"blog.example\"",
        "domain = \"shop.example.org\"\nserver_names = [\"@\"]",
        1,
    );
    let clash = clash.replacen(
        "domain = \"shop.example\"",
        "domain = \"example.org\"\nserver_names = [\"shop\"]",
        1,
    );
    let errs = parse(&clash).unwrap_err().0;
    assert!(
        errs.iter().any(|e| e.key == "sites[1].server_names"
            && e.message
                .starts_with("found \"shop.example.org\", which sites[0] already has")),
        "{errs:#?}"
    );
}

#[test]
fn a_sites_hosts_must_be_web_hosts_of_the_inventory() {
    assert_eq!(
        one("hosts = [\"web-02\"]", "hosts = [\"db-01\"]"),
        "17:10: sites[1].hosts[0]: found \"db-01\" (that host has no \"web\" role); allowed: a web host of the inventory: web-01, web-02"
    );
    assert_eq!(
        one("hosts = [\"web-02\"]", "hosts = [\"web-9\"]"),
        "17:10: sites[1].hosts[0]: found \"web-9\" (no [[hosts]] entry has that name); allowed: a web host of the inventory: web-01, web-02"
    );
}

#[test]
fn apache_and_nginx_in_front_cannot_share_a_host() {
    let e = one("stack = \"lemp\"\nhosts", "stack = \"lamp\"\nhosts");
    assert!(
        e.starts_with("16:9: sites[1].stack: found \"lamp\" on web-02, which also serves sites[0] with \"lemp\": Apache and Nginx would both take port 80"),
        "{e}"
    );
    // Apart, they are fine; lemp and nginx-apache share Nginx in front.
    let apart = TWO
        .replacen("stack = \"lemp\"\nhosts", "stack = \"lamp\"\nhosts", 1)
        .replacen(
            "domain = \"shop.example\"",
            "domain = \"shop.example\"\nhosts = [\"web-01\"]",
            1,
        );
    assert!(parse(&apart).is_ok());
    let both = TWO.replacen(
        "stack = \"lemp\"\nhosts",
        "stack = \"nginx-apache\"\nhosts",
        1,
    );
    assert!(parse(&both).is_ok());
}

#[test]
fn the_two_forms_do_not_mix_and_replication_is_the_servers() {
    let mixed = format!("[site]\ndomain = \"x.example\"\nstack = \"lemp\"\n{TWO}");
    let errs = parse(&mixed).unwrap_err().0;
    assert!(
        errs.iter()
            .any(|e| e.key == "site" && e.message.starts_with("found beside sites")),
        "{errs:#?}"
    );
    let e = one(
        "user = \"blog\"",
        "user = \"blog\"\nreplication_user = \"r\"",
    );
    assert!(
        e.contains(
            "sites[1].database.replication_user: found a replication key in a site's database"
        ),
        "{e}"
    );
    let replica = format!("{TWO}\n[[hosts]]\nname = \"db-02\"\npublic_address = \"8.8.8.6\"\nroles = [\"db-replica\"]\n[hosts.ssh]\naddress = \"198.18.0.13\"\n");
    let errs = parse(&replica).unwrap_err().0;
    assert!(errs.iter().any(|e| e.key == "replication"), "{errs:#?}");
    let with = format!("[replication]\npassword_env = \"DB_PW\"\n{replica}");
    let s = parse(&with).unwrap();
    assert_eq!(s.replication.unwrap().user, "replicator");
}

#[test]
fn a_site_name_is_a_unix_user_name_and_no_system_account() {
    assert!(parse_site_name("shop").is_ok());
    for bad in [
        "Shop",
        "1shop",
        "shop-",
        "www-data",
        "root",
        "systemd-x",
        &"a".repeat(33),
    ] {
        assert!(parse_site_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn one_sites_application_directory_inside_anothers_is_refused() {
    let file = |p: &str| TreeFile {
        path: "index.php".into(),
        key: FileKey {
            real: PathBuf::from(p),
            inode: None,
        },
        content: b"<?php echo 1;\n".to_vec(),
        executable: false,
    };
    let mut f = fake();
    f.trees
        .insert(PathBuf::from("./apps"), vec![file("./apps/index.php")]);
    f.trees.insert(
        PathBuf::from("./apps/blog"),
        vec![file("./apps/blog/index.php")],
    );
    let text = TWO
        .replacen(
            "stack = \"lemp\"",
            "stack = \"lemp\"\napp_dir = \"apps\"",
            1,
        )
        .replacen(
            "hosts = [\"web-02\"]",
            "hosts = [\"web-02\"]\napp_dir = \"apps/blog\"",
            1,
        );
    let errs = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].key, "sites[1].app_dir");
    assert!(
        errs[0]
            .message
            .starts_with("found \"apps/blog\", which is inside or around the application directory of sites[0] (\"apps\")"),
        "{}",
        errs[0].message
    );
}
