//! The scripts' tests, by theme; here, the plans and the ways of running the library they share.

use super::apply::guard_program;
use super::*;
use crate::desired::{Desired, Handler, ManagedPath, PathState, Step, Validator};
use crate::plan::{ChangeKind, HostPlan, PlannedStep, Shape};
use std::path::Path;
use std::process::Command;

fn conf() -> ManagedPath {
    ManagedPath {
        path: "/etc/provision/sites/foobar.com/config.php".into(),
        state: PathState::File {
            content: b"'password' => 'hunter2'".to_vec(),
            mode: 0o640,
            owner: "root".into(),
            group: "www-data".into(),
            sensitive: true,
        },
        notify: vec![Handler::reload("php8.2-fpm")],
        validator: Some("php-lint".into()),
        from_previous: false,
        code: true,
        because: None,
    }
}

fn plan() -> (HostPlan, Desired) {
    let mut d = Desired::new("web-01");
    d.paths = vec![conf()];
    d.services = vec![crate::desired::Service {
        name: "php8.2-fpm".into(),
        package: "php8.2-fpm".into(),
        component: "php".into(),
        pidfile: Some(("/run/php/php8.2-fpm.pid".into(), "php-fpm8.2".into())),
        plain_reload: None,
    }];
    d.steps = vec![Step {
        name: "db".into(),
        component: "mariadb".into(),
        command: "mariadb < /x.sql".into(),
        irreversible: None,
    }];
    let plan = HostPlan {
        host: "web-01".into(),
        os: "debian 12".into(),
        systemd: false,
        generation: Some("G000001-x".into()),
        attention: None,
        update_package_lists: Some("never downloaded".into()),
        install: vec!["nginx".into(), "php8.2-fpm".into()],
        accounts: vec![],
        changes: vec![crate::plan::Change {
            path: conf().path,
            action: ChangeKind::Create,
            reason: "missing".into(),
            diff: None,
            before: Shape::Absent,
            after: Shape::Absent,
            release: None,
            desired: conf(),
        }],
        steps: vec![
            PlannedStep {
                handler: Handler::service(crate::desired::Action::Start, "php8.2-fpm"),
                reason: "not running".into(),
            },
            PlannedStep {
                handler: Handler::run("db"),
                reason: "the database does not exist".into(),
            },
        ],
        validators: vec![Validator {
            name: "php-lint".into(),
            command: "php -l {root}{file}".into(),
            stage: vec!["/etc/php/8.2/fpm".into()],
            per_file: true,
            release_files: None,
        }],
        checks: vec![],
        irreversible: vec![],
        leaving: vec![],
        notices: Vec::new(),
    };
    (plan, d)
}

fn runner() -> Runner<'static> {
    Runner {
        who: "tester@ctl pid 1",
        lock_wait: 0,
    }
}

/// `script` parses as sh (`sh -n`); the facts tests check their probe with it too.
pub(crate) fn sh_n(script: &str) {
    let out = Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the library's functions for real on a scratch tree: state dir and "live" files under a
/// temporary directory, the functions' absolute paths pointed there.
fn run_library(dir: &Path, program: &str) -> (bool, String) {
    let f = library_program(dir, program);
    outcome(
        &Command::new("sh")
            .arg(&f)
            .arg(dir.join("run-1"))
            .output()
            .unwrap(),
    )
}

/// The library and `program`, as a script file in `dir` that keeps its state under `dir/state`.
fn library_program(dir: &Path, program: &str) -> std::path::PathBuf {
    let lib = script(&runner(), "").replace(
        "P=/var/lib/provision",
        &format!("P={}/state", dir.display()),
    );
    let f = dir.join("run.sh");
    std::fs::write(&f, format!("{lib}{program}")).unwrap();
    f
}

/// Whether a run succeeded, and all it printed.
fn outcome(out: &std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn me() -> String {
    String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The generation a run opened (its `@gen` line).
fn generation_of(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("@gen "))
        .unwrap_or_else(|| panic!("no generation in\n{out}"))
        .to_string()
}

fn with_an_account() -> (HostPlan, Desired) {
    let (mut p, d) = plan();
    p.accounts = vec![crate::plan::AccountChange {
        name: "shop".into(),
        action: ChangeKind::Create,
        reason: "the host has no user shop".into(),
        home: "/var/www/shop".into(),
        comment: "site shop.example.com".into(),
    }];
    (p, d)
}

/// A new release of two files beside the live one, which has one of them, added to the plan as a
/// change of its marker (checked by `check` when given): the new release, the live one, the delta.
fn with_a_release(
    p: &mut HostPlan,
    d: &mut Desired,
    check: Option<crate::tree::ReleaseCheck>,
) -> (crate::tree::Tree, crate::tree::Tree, crate::tree::Delta) {
    use crate::tree::Tree;
    let files = vec![
        Tree::file("index.php", 0o644, b"<?php echo 'v2';\n".to_vec()),
        Tree::file("lib/a.php", 0o644, b"<?php\n".to_vec()),
    ];
    let old = Tree::new("/var/www/x", vec![files[1].clone()], None, 5);
    let mut tree = Tree::new("/var/www/x", files, Some("php migrate.php".into()), 5);
    tree.check = check;
    let delta = tree.delta(Some((&old.id, old.manifest())));
    let marker = ManagedPath {
        path: tree.marker(),
        state: PathState::Tree(std::sync::Arc::new(tree.clone())),
        notify: vec![],
        validator: None,
        from_previous: false,
        code: false,
        because: None,
    };
    d.paths.push(marker.clone());
    p.changes.push(crate::plan::Change {
        path: marker.path.clone(),
        action: ChangeKind::Create,
        reason: "new".into(),
        diff: None,
        before: Shape::Absent,
        after: Shape::Release {
            id: tree.id.clone(),
            files: 2,
        },
        release: Some(crate::plan::ReleaseChange {
            from: delta.from.clone(),
            send: delta.send.len(),
            remove: 0,
            delta: delta.clone(),
        }),
        desired: marker,
    });
    (tree, old, delta)
}

mod accounts;
mod guard;
mod lock;
mod programs;
mod releases;
mod services;
mod swap;
mod text;
