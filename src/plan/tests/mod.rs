//! The plan's tests, by theme; here, the desired host and the converged facts they share.

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

mod missing_accounts;
mod paths;
mod secrets;
mod steps;
