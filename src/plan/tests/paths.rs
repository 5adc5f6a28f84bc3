//! Paths against the host: converged, fresh, and every kind of drift.

use super::*;

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
