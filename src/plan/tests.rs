use super::*;
use crate::desired::{Service, Validator};
use crate::facts::{DbFacts, Facts, PathFact};
use crate::secret::Secret;

fn desired() -> Desired {
    let file = |path: &str, content: &str, sensitive: bool, notify: Vec<Handler>| ManagedPath {
        path: path.into(),
        state: PathState::File {
            content: content.as_bytes().to_vec(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sensitive,
        },
        notify,
        validator: Some("nginx".into()),
    };
    Desired {
        host: "web-01".into(),
        packages: vec!["mariadb-server".into(), "nginx".into()],
        paths: vec![
            file(
                "/etc/nginx/nginx.conf",
                "a\nb\nc\n",
                false,
                vec![Handler::Reload("nginx".into())],
            ),
            file(
                "/etc/provision/config.php",
                "'password' => 'hunter2',\n",
                true,
                vec![],
            ),
            ManagedPath {
                path: "/etc/nginx/sites-enabled/site".into(),
                state: PathState::Link {
                    target: "../sites-available/site".into(),
                },
                notify: vec![Handler::Reload("nginx".into())],
                validator: None,
            },
            ManagedPath {
                path: "/etc/nginx/sites-enabled/default".into(),
                state: PathState::Absent,
                notify: vec![Handler::Reload("nginx".into())],
                validator: None,
            },
            ManagedPath {
                path: "/var/lib/provision/db.sql".into(),
                state: PathState::File {
                    content: b"SQL".to_vec(),
                    mode: 0o600,
                    owner: "root".into(),
                    group: "root".into(),
                    sensitive: true,
                },
                notify: vec![Handler::RunSql("/var/lib/provision/db.sql".into())],
                validator: None,
            },
        ],
        services: vec![
            Service {
                name: "nginx".into(),
                package: "nginx".into(),
            },
            Service {
                name: "mariadb".into(),
                package: "mariadb-server".into(),
            },
        ],
        validators: vec![Validator {
            name: "nginx".into(),
            command: "nginx -t".into(),
            stage: vec![],
        }],
        checks: vec![],
    }
}

fn converged() -> Facts {
    let file = |mode| PathFact::File {
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
        ..Facts::default()
    };
    f.packages.insert("nginx".into(), Some("1.22".into()));
    f.packages
        .insert("mariadb-server".into(), Some("10.11".into()));
    f.paths.insert("/etc/nginx/nginx.conf".into(), file(0o644));
    f.paths
        .insert("/etc/provision/config.php".into(), file(0o644));
    f.paths.insert(
        "/etc/nginx/sites-enabled/site".into(),
        PathFact::Link {
            target: "../sites-available/site".into(),
        },
    );
    f.paths
        .insert("/etc/nginx/sites-enabled/default".into(), PathFact::Absent);
    f.paths
        .insert("/var/lib/provision/db.sql".into(), file(0o600));
    f.services.insert("nginx".into(), true);
    f.services.insert("mariadb".into(), true);
    f.db = Some(DbFacts {
        reachable: true,
        databases: ["foobar".to_string()].into(),
        users: Default::default(),
        missing_accounts: Vec::new(),
        demo_row: true,
    });
    f
}

fn redactor() -> Redactor {
    Redactor::new(&[(
        "database.password",
        &Secret::new("hunter2".into(), "test".into()),
    )])
}

#[test]
fn a_converged_host_has_an_empty_plan() {
    let p = plan_host(&desired(), &converged(), &redactor());
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(p.change_count(), 0);
    assert!(p.validators.is_empty());
}

#[test]
fn a_fresh_host_installs_creates_and_starts_everything() {
    let mut f = Facts {
        os_id: "debian".into(),
        os_version: "12".into(),
        ..Facts::default()
    };
    f.packages.insert("nginx".into(), None);
    f.packages.insert("mariadb-server".into(), None);
    f.db = Some(DbFacts::default());
    let p = plan_host(&desired(), &f, &redactor());
    assert_eq!(p.install, ["mariadb-server", "nginx"]);
    assert_eq!(
        p.update_package_lists.as_deref(),
        Some("the package lists were never downloaded")
    );
    let actions: Vec<(&str, Action)> = p
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.action))
        .collect();
    assert_eq!(
        actions,
        [
            ("/etc/nginx/nginx.conf", Action::Create),
            ("/etc/provision/config.php", Action::Create),
            ("/etc/nginx/sites-enabled/site", Action::Create),
            // Absent now, but the nginx package about to be installed would create it.
            ("/etc/nginx/sites-enabled/default", Action::Delete),
            ("/var/lib/provision/db.sql", Action::Create),
        ]
    );
    let steps: Vec<String> = p
        .steps
        .iter()
        .map(|s| crate::facts::handler_line(&s.handler))
        .collect();
    // The database comes first, its SQL next, the web server last; a stopped service is started,
    // which also loads its new configuration.
    assert_eq!(
        steps,
        [
            "start mariadb",
            "run-sql /var/lib/provision/db.sql",
            "start nginx"
        ]
    );
    assert!(
        p.steps[2].reason.contains("nginx is not running")
            && p.steps[2].reason.contains("/etc/nginx/nginx.conf changed")
    );
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
    let p = plan_host(&desired(), &f, &redactor());
    assert_eq!(p.changes.len(), 1);
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(diff.contains("-X\n") && diff.contains("+b\n"), "{diff}");
    assert_eq!(
        p.changes[0].before,
        Before::File {
            sha256: sha256_hex(b"a\nX\nc\n")
        }
    );
    assert_eq!(p.steps.len(), 1);
    assert_eq!(p.steps[0].handler, Handler::Reload("nginx".into()));
    assert_eq!(p.validators.len(), 1);
}

#[test]
fn secrets_never_reach_a_diff_old_or_new() {
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
    let p = plan_host(&desired(), &f, &redactor());
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
    assert!(!json.contains("hunter2") && !json.contains("old-secret"));
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
            content: None,
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
    let p = plan_host(&desired(), &f, &redactor());
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
fn a_missing_database_reruns_the_bootstrap_and_pending_reloads_are_kept() {
    let mut f = converged();
    f.db.as_mut().unwrap().databases.clear();
    f.pending = vec![Handler::Reload("nginx".into())];
    let p = plan_host(&desired(), &f, &redactor());
    let steps: Vec<(String, &str)> = p
        .steps
        .iter()
        .map(|s| (crate::facts::handler_line(&s.handler), s.reason.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "run-sql /var/lib/provision/db.sql".to_string(),
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
    assert!(plan_host(&desired(), &f, &redactor())
        .update_package_lists
        .is_none());
    f.packages.insert("nginx".into(), None);
    assert_eq!(
        plan_host(&desired(), &f, &redactor())
            .update_package_lists
            .as_deref(),
        Some("the package lists are 240 hours old")
    );
}

#[test]
fn a_dropped_database_account_reruns_the_bootstrap() {
    let mut f = converged();
    f.db.as_mut().unwrap().missing_accounts = vec![("foobar".into(), "localhost".into())];
    let p = plan_host(&desired(), &f, &redactor());
    assert_eq!(p.steps.len(), 1);
    assert_eq!(
        p.steps[0].reason,
        "the database account 'foobar'@'localhost' does not exist"
    );
}
