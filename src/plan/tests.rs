use super::*;
use crate::desired::{Service, Step, Validator};
use crate::facts::{Facts, PathFact};
use crate::host_state::HostState;
use crate::secret::{Secret, SecretKey, Secrets};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn path(p: &str, state: PathState, notify: Vec<Handler>, validator: Option<&str>) -> ManagedPath {
    ManagedPath {
        path: p.into(),
        state,
        notify,
        validator: validator.map(str::to_string),
        from_previous: false,
        code: false,
        because: None,
    }
}

fn file(content: &str, mode: u32, sensitive: bool) -> PathState {
    PathState::File {
        content: content.as_bytes().to_vec(),
        mode,
        owner: "root".into(),
        group: "root".into(),
        sensitive,
    }
}

fn desired() -> Desired {
    let mut d = Desired::new("web-01");
    d.packages = vec!["mariadb-server".into(), "nginx".into()];
    d.paths = vec![
        path(
            "/etc/nginx/nginx.conf",
            file("a\nb\nc\n", 0o644, false),
            vec![Handler::reload("nginx")],
            Some("nginx"),
        ),
        path(
            "/etc/provision/config.php",
            file("'password' => 'hunter2',\n", 0o644, true),
            vec![],
            Some("php-lint"),
        ),
        path(
            "/etc/nginx/sites-enabled/site",
            PathState::Link {
                target: "../sites-available/site".into(),
            },
            vec![Handler::reload("nginx")],
            Some("nginx"),
        ),
        path(
            "/etc/nginx/sites-enabled/default",
            PathState::Absent,
            vec![Handler::reload("nginx")],
            Some("nginx"),
        ),
        path(
            "/var/lib/provision/db.sql",
            file("SQL", 0o600, true),
            vec![Handler::run("db-bootstrap")],
            None,
        ),
    ];
    d.services = vec![
        Service {
            name: "nginx".into(),
            package: "nginx".into(),
            component: "web".into(),
            pidfile: None,
            plain_reload: None,
        },
        Service {
            name: "mariadb".into(),
            package: "mariadb-server".into(),
            component: "db".into(),
            pidfile: None,
            plain_reload: None,
        },
    ];
    d.steps = vec![Step {
        name: "db-bootstrap".into(),
        component: "db".into(),
        command: "mariadb < /var/lib/provision/db.sql".into(),
        irreversible: Some("database changes stay".into()),
    }];
    d.validators = vec![
        Validator {
            name: "nginx".into(),
            command: "nginx -t".into(),
            stage: vec![],
            per_file: false,
            release_files: None,
        },
        Validator {
            name: "php-lint".into(),
            command: "php -l {root}{file}".into(),
            stage: vec![],
            per_file: true,
            release_files: None,
        },
    ];
    // The component names in dependency order: the database before the web server.
    d.order = vec!["db".into(), "web".into()];
    d
}

fn converged() -> Facts {
    let meta = |mode| PathFact::File {
        mode,
        owner: "root".into(),
        group: "root".into(),
        content: None,
    };
    let mut f = Facts {
        os_id: "debian".into(),
        os_version: "12".into(),
        systemd: true,
        apt_lists_age: Some(60),
        state: HostState {
            key: Some(KEY.into()),
            current: Some("G000001-x".into()),
            ..HostState::default()
        },
        ..Facts::default()
    };
    f.packages.insert("nginx".into(), Some("1.22".into()));
    f.packages
        .insert("mariadb-server".into(), Some("10.11".into()));
    f.paths.insert("/etc/nginx/nginx.conf".into(), meta(0o644));
    // Secret files always come back whole from the probe.
    f.paths.insert(
        "/etc/provision/config.php".into(),
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"'password' => 'hunter2',\n".to_vec()),
        },
    );
    f.paths.insert(
        "/etc/nginx/sites-enabled/site".into(),
        PathFact::Link {
            target: "../sites-available/site".into(),
        },
    );
    f.paths
        .insert("/etc/nginx/sites-enabled/default".into(), PathFact::Absent);
    f.paths.insert(
        "/var/lib/provision/db.sql".into(),
        PathFact::File {
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"SQL".to_vec()),
        },
    );
    f.services.insert("nginx".into(), true);
    f.services.insert("mariadb".into(), true);
    f
}

fn redactor() -> Redactor {
    let mut s = Secrets::default();
    s.insert(
        SecretKey::DatabasePassword(crate::secret::SiteRef::ONE),
        Secret::new("hunter2".into(), "test".into()),
    );
    s.redactor()
}

fn plan(f: &Facts) -> HostPlan {
    plan_host(&desired(), f, &[], &redactor())
}

fn lines(p: &HostPlan) -> Vec<String> {
    p.steps.iter().map(|s| s.handler.line()).collect()
}

#[test]
fn a_converged_host_has_an_empty_plan() {
    let p = plan(&converged());
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.change_count(), 0);
    assert!(p.validators.is_empty());
    assert_eq!(p.generation.as_deref(), Some("G000001-x"));
}

#[test]
fn a_fresh_host_installs_creates_and_starts_everything() {
    let mut f = Facts {
        os_id: "debian".into(),
        os_version: "12".into(),
        state: HostState {
            key: Some(KEY.into()),
            ..HostState::default()
        },
        ..Facts::default()
    };
    f.packages.insert("nginx".into(), None);
    f.packages.insert("mariadb-server".into(), None);
    let needs = [Need {
        handler: Handler::run("db-bootstrap"),
        reason: "the database server is not answering yet".into(),
    }];
    let p = plan_host(&desired(), &f, &needs, &redactor());
    assert_eq!(p.install, ["mariadb-server", "nginx"]);
    assert_eq!(
        p.update_package_lists.as_deref(),
        Some("the package lists were never downloaded")
    );
    let actions: Vec<(&str, ChangeKind)> = p
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("/etc/nginx/nginx.conf", ChangeKind::Create),
            ("/etc/provision/config.php", ChangeKind::Create),
            ("/etc/nginx/sites-enabled/site", ChangeKind::Create),
            // Absent now, but the nginx package about to be installed would create it.
            ("/etc/nginx/sites-enabled/default", ChangeKind::Delete),
            ("/var/lib/provision/db.sql", ChangeKind::Create),
        ]
    );
    // The database comes first, its step after its server is up, the web server last; a stopped
    // service is started, which also loads its new configuration.
    assert_eq!(
        lines(&p),
        ["start mariadb", "run db-bootstrap", "start nginx"]
    );
    assert!(
        p.steps[2].reason.contains("nginx is not running")
            && p.steps[2].reason.contains("/etc/nginx/nginx.conf changed")
    );
    assert_eq!(p.irreversible, ["run db-bootstrap: database changes stay"]);
    assert_eq!(p.generation, None);
}

#[test]
fn drift_in_one_file_is_one_change_with_a_diff_and_its_reload() {
    let mut f = converged();
    f.paths.insert(
        "/etc/nginx/nginx.conf".into(),
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"a\nX\nc\n".to_vec()),
        },
    );
    let p = plan(&f);
    assert_eq!(p.changes.len(), 1);
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(diff.contains("-X\n") && diff.contains("+b\n"), "{diff}");
    assert_eq!(
        p.changes[0].before,
        Shape::File {
            digest: format!("sha256:{}", sha256_hex(b"a\nX\nc\n")),
            mode: Some("0644".into()),
            owner: Some("root:root".into()),
        }
    );
    assert_eq!(lines(&p), ["reload nginx"]);
    // The whole-tree validator runs; the per-file one has no changed file to read.
    let names: Vec<&str> = p.validators.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["nginx"]);
}

#[test]
fn secrets_never_reach_a_diff_or_the_json_not_even_hashed() {
    let mut f = converged();
    f.paths.insert(
        "/etc/provision/config.php".into(),
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"'password' => 'old-secret',\n".to_vec()),
        },
    );
    let p = plan(&f);
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(
        !diff.contains("hunter2") && !diff.contains("old-secret"),
        "{diff}"
    );
    assert!(
        diff.contains("<secret database.password hidden>")
            && diff.contains("[line hidden: sensitive file]"),
        "{diff}"
    );
    let json = serde_json::to_string(&p).unwrap();
    for secret_content in [
        &b"'password' => 'old-secret',\n"[..],
        b"'password' => 'hunter2',\n",
    ] {
        assert!(!json.contains(&sha256_hex(secret_content)), "{json}");
    }
    assert!(!json.contains("hunter2") && !json.contains("old-secret"));
    assert!(json.contains("keyed:"), "{json}");
    // Only the PHP file changed: only the validator that reads it runs.
    let names: Vec<&str> = p.validators.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["php-lint"]);
}

/// A fresh EC P-256 key, PKCS#8 PEM without its trailing newline (as the inventory's is kept).
fn ec_key() -> String {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap())
        .unwrap()
        .trim_end()
        .to_string()
}

fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn a_provided_tls_key_reaches_no_diff_on_either_side() {
    let (old_key, key) = (ec_key(), ec_key());
    let mut s = Secrets::default();
    s.insert(
        SecretKey::TlsKey(crate::secret::SiteRef::ONE),
        Secret::new(key.clone(), "test".into()),
    );
    let path = "/etc/nginx/tls/foobar.com.pem";
    let cert =
        |body: &str| format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
    let new = format!("{key}\n{}", cert("NEWCERT"));
    // The host has the same key with another certificate, an earlier key, or nothing; the
    // redactor knows the inventory's key, or (a key from elsewhere) none.
    for old in [
        format!("{key}\n{}", cert("OLDCERT")),
        format!("{old_key}\n{}", cert("OLDCERT")),
        String::new(),
    ] {
        for r in [s.redactor(), Redactor::default()] {
            let d = diff(path, old.as_bytes(), new.as_bytes(), true, &r);
            for l in key_lines(&key).into_iter().chain(key_lines(&old_key)) {
                assert!(!d.contains(l), "{d}");
            }
            assert!(
                d.contains("+NEWCERT"),
                "the certificate's change shows: {d}"
            );
        }
    }
    // The same key on both sides is no change.
    let d = diff(
        path,
        format!("{key}\n{}", cert("OLDCERT")).as_bytes(),
        new.as_bytes(),
        true,
        &s.redactor(),
    );
    assert!(
        d.contains(" <secret site.tls.key hidden>") && !d.contains("+<secret"),
        "{d}"
    );
}

#[test]
fn mode_owner_link_and_absent_drift_are_planned() {
    let mut f = converged();
    f.paths.insert(
        "/var/lib/provision/db.sql".into(),
        PathFact::File {
            mode: 0o644,
            owner: "www-data".into(),
            group: "root".into(),
            content: Some(b"SQL".to_vec()),
        },
    );
    f.paths.insert(
        "/etc/nginx/sites-enabled/site".into(),
        PathFact::Link {
            target: "/tmp/elsewhere".into(),
        },
    );
    f.paths.insert(
        "/etc/nginx/sites-enabled/default".into(),
        PathFact::Link {
            target: "../sites-available/default".into(),
        },
    );
    let p = plan(&f);
    let reasons: Vec<(&str, &str)> = p
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "/etc/nginx/sites-enabled/site",
                "points to /tmp/elsewhere, must point to ../sites-available/site"
            ),
            ("/etc/nginx/sites-enabled/default", "must not exist"),
            (
                "/var/lib/provision/db.sql",
                "mode 0644 → 0600, owner www-data:root → root:root"
            ),
        ]
    );
}

#[test]
fn component_needs_and_pending_handlers_become_ordered_steps() {
    let mut f = converged();
    f.state.pending = vec![Handler::reload("nginx"), Handler::reload("gone")];
    let needs = [Need {
        handler: Handler::run("db-bootstrap"),
        reason: "the database does not exist".into(),
    }];
    let p = plan_host(&desired(), &f, &needs, &redactor());
    let steps: Vec<(String, &str)> = p
        .steps
        .iter()
        .map(|s| (s.handler.line(), s.reason.as_str()))
        .collect();
    // A pending handler of a service this host no longer has is dropped.
    assert_eq!(
        steps,
        [
            (
                "run db-bootstrap".to_string(),
                "the database does not exist"
            ),
            (
                "reload nginx".to_string(),
                "left pending by an interrupted apply"
            ),
        ]
    );
}

#[test]
fn stale_package_lists_are_refreshed_only_when_installing() {
    let mut f = converged();
    f.apt_lists_age = Some(10 * 24 * 3600);
    assert!(plan(&f).update_package_lists.is_none());
    f.packages.insert("nginx".into(), None);
    assert_eq!(
        plan(&f).update_package_lists.as_deref(),
        Some("the package lists are 240 hours old")
    );
}

#[test]
fn a_host_that_needs_attention_is_not_converged() {
    let mut f = converged();
    f.state.attention = Some("apply G2 failed its health checks".into());
    let p = plan(&f);
    assert!(!p.is_empty());
    assert_eq!(p.change_count(), 1);
    assert!(p.changes.is_empty() && p.steps.is_empty());
}

#[test]
fn a_restart_and_a_reload_of_one_service_merge_into_the_restart() {
    let mut d = desired();
    d.paths[2].notify = vec![Handler::restart("nginx")];
    let mut f = converged();
    f.paths.remove("/etc/nginx/sites-enabled/site");
    f.paths.insert(
        "/etc/nginx/nginx.conf".into(),
        PathFact::File {
            mode: 0o600,
            owner: "root".into(),
            group: "root".into(),
            content: None,
        },
    );
    let p = plan_host(&d, &f, &[], &redactor());
    assert_eq!(lines(&p), ["restart nginx"]);
    assert!(
        p.steps[0].reason.contains("nginx.conf changed")
            && p.steps[0].reason.contains("site changed")
    );
}

fn with_account() -> Desired {
    let mut d = desired();
    d.accounts.push(crate::desired::Account {
        name: "shop".into(),
        home: "/var/www/shop".into(),
        comment: "site shop.example.com".into(),
    });
    d
}

fn user(uid: u32, gecos: &str, shell: &str) -> crate::facts::User {
    crate::facts::User {
        uid,
        gid: uid,
        gecos: gecos.into(),
        home: "/home/shop".into(),
        shell: shell.into(),
    }
}

/// On a converged host, a missing account alone is a change: counted, shown, committed to, and
/// said to outlive a rollback.
#[test]
fn a_missing_account_is_a_change_of_its_own() {
    let d = with_account();
    let f = converged();
    assert_eq!(accounts::refusal(&d, &f), None);
    let p = plan_host(&d, &f, &[], &redactor());
    assert!(!p.is_empty());
    assert_eq!(p.change_count(), 1);
    assert!(p.changes.is_empty() && p.steps.is_empty() && p.install.is_empty());
    assert_eq!(
        p.accounts[0].line(),
        "create user shop (group shop) for site shop.example.com"
    );
    assert_eq!(
        p.irreversible,
        ["create user shop (group shop) for site shop.example.com: the account stays, as installed packages do"]
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["accounts"][0]["name"], "shop");
    assert_eq!(json["accounts"][0]["action"], "create");
    assert_eq!(json["accounts"][0]["home"], "/var/www/shop");
    let c = saved::commitments(&p);
    assert_eq!(
        c["accounts"],
        serde_json::json!([
            "create user shop (group shop) for site shop.example.com, home /var/www/shop"
        ])
    );
    // Once made, nothing to do.
    let mut f = converged();
    f.users.insert(
        "shop".into(),
        user(
            998,
            "[provision] site shop.example.com",
            "/usr/sbin/nologin",
        ),
    );
    f.groups.insert("shop".into(), 998);
    let p = plan_host(&d, &f, &[], &redactor());
    assert!(p.is_empty(), "{p:#?}");
    assert!(saved::commitments(&p).get("accounts").is_none());
    assert_eq!(accounts::refusal(&d, &f), None);
}

/// A user or group of the account's name that provision did not make is refused, naming the host
/// and the account: a person's login, a package's user, a lone group; and provision's own user
/// whose group is gone.
#[test]
fn an_account_provision_did_not_make_is_never_taken_over() {
    let d = with_account();
    let cases: [(Option<crate::facts::User>, Option<u32>, &str); 4] = [
        (
            Some(user(1000, "Shop Keeper,,,", "/bin/bash")),
            Some(1000),
            "user shop exists already and provision did not make it (a login account: uid 1000, shell /bin/bash, home /home/shop)",
        ),
        (
            Some(user(33, "shop daemon", "/usr/sbin/nologin")),
            Some(33),
            "user shop exists already and provision did not make it (uid 33, home /home/shop, no login)",
        ),
        (
            None,
            Some(1001),
            "group shop (gid 1001) exists already without a user shop, and provision did not make it",
        ),
        (
            Some(user(998, "[provision] site shop.example.com", "/usr/sbin/nologin")),
            None,
            "provision's user shop has lost its group: its gid 998 is not that of a group shop",
        ),
    ];
    for (u, g, why) in cases {
        let mut f = converged();
        if let Some(u) = u {
            f.users.insert("shop".into(), u);
        }
        if let Some(g) = g {
            f.groups.insert("shop".into(), g);
        }
        let e = accounts::refusal(&d, &f).expect("refused");
        assert!(e.starts_with(&format!("web-01: {why}; ")), "{e}");
        assert!(e.ends_with("nothing was changed"), "{e}");
        assert!(
            plan_host(&d, &f, &[], &redactor()).accounts.is_empty(),
            "an account of that name is never made"
        );
    }
}
