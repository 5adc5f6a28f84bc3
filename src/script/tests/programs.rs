//! The whole program `apply_script` writes for a few representative plans, pinned: the host runs
//! exactly this text, so a change to how it is assembled must leave it byte for byte the same.

use super::*;
use crate::desired::{Action, Guarded, Service};

/// The generated program of a script (what follows the library), with the base64 data after its
/// end left out: a release's archive carries the time of the deploy.
fn program_of(script: &str) -> String {
    let program = script.split_once(PROGRAM).unwrap().1;
    let (program, payload) = match program.split_once(&format!("{PAYLOAD}\n")) {
        Some((p, data)) => (p, Some(data)),
        None => (program, None),
    };
    let mut out = String::new();
    for line in program.lines() {
        // The script's length moves with the library's text, which has tests of its own.
        if line.starts_with("# --- end of the script, ") {
            out.push_str("# --- end of the script, [length] bytes\n");
            continue;
        }
        // The archive's length (and so the offsets after it) moves with the time it carries.
        match line.strip_prefix("payload ") {
            Some(rest) if payload.is_some() => {
                let i = rest.split(' ').next().unwrap();
                let _ = writeln!(out, "payload {i} [offset] [length]");
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if payload.is_some() {
        let _ = writeln!(out, "{PAYLOAD}\n[data left out]");
    }
    out
}

/// Everything a plan can hold at once: an account, a release, a whole-tree validator reading an
/// unchanged file, a changed path of each shape, a plain reload and a guarded restart.
fn everything() -> (HostPlan, Desired) {
    let (mut p, mut d) = with_an_account();
    p.update_package_lists = None;
    with_a_release(
        &mut p,
        &mut d,
        Some(crate::component::php::release_check("8.2")),
    );
    with_a_whole_tree_validator(&mut p, &mut d);
    for (state, path, before) in a_path_of_each_shape() {
        let desired = ManagedPath {
            path: path.into(),
            state,
            notify: vec![],
            validator: None,
            from_previous: false,
            code: false,
            because: None,
        };
        d.paths.push(desired.clone());
        p.changes.push(update(desired, before));
    }
    with_a_plain_reload_and_a_guarded_restart(&mut p, &mut d);
    (p, d)
}

fn update(desired: ManagedPath, before: Shape) -> crate::plan::Change {
    crate::plan::Change {
        path: desired.path.clone(),
        action: ChangeKind::Update,
        reason: "differs".into(),
        diff: None,
        before,
        after: Shape::Absent,
        release: None,
        desired,
    }
}

/// Nginx's validator reads its whole tree: a file of it that did not change is staged too when it
/// lies outside the directories copied into the stage (the certificate), not when it lies inside
/// (nginx.conf: the copy holds it).
fn with_a_whole_tree_validator(p: &mut HostPlan, d: &mut Desired) {
    let nginx = |path: &str, content: &[u8]| ManagedPath {
        path: path.into(),
        state: PathState::File {
            content: content.to_vec(),
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            sensitive: false,
        },
        notify: vec![Handler::reload("nginx")],
        validator: Some("nginx".into()),
        from_previous: false,
        code: false,
        because: None,
    };
    let site = nginx("/etc/nginx/sites-enabled/x", b"server {}\n");
    d.paths.push(nginx("/etc/nginx/nginx.conf", b"events {}\n"));
    d.paths
        .push(nginx("/etc/ssl/provision/x.pem", b"certificate\n"));
    d.paths.push(site.clone());
    p.changes.push(update(
        site,
        Shape::File {
            digest: "abc".into(),
            mode: Some("0644".into()),
            owner: Some("root".into()),
        },
    ));
    p.validators.push(Validator {
        name: "nginx".into(),
        command: "nginx -t -p {root} -c {root}/etc/nginx/nginx.conf".into(),
        stage: vec!["/etc/nginx".into(), "/etc/php/8.2/fpm".into()],
        per_file: false,
        release_files: None,
    });
}

/// A directory, a link, a path that must go and a file the host makes: (desired, path, before).
fn a_path_of_each_shape() -> [(PathState, &'static str, Shape); 4] {
    [
        (
            PathState::Dir {
                mode: 0o755,
                owner: "www-data".into(),
                group: "www-data".into(),
            },
            "/var/www/x/shared",
            Shape::Dir {
                mode: Some("0750".into()),
                owner: Some("root".into()),
            },
        ),
        (
            PathState::Link {
                target: "/etc/nginx/sites-available/x".into(),
            },
            "/etc/nginx/sites-enabled/y",
            Shape::Link {
                target: "/elsewhere".into(),
            },
        ),
        (
            PathState::Absent,
            "/etc/nginx/sites-enabled/old",
            Shape::Other,
        ),
        (
            PathState::Made {
                command: "openssl dhparam 2048".into(),
                mode: 0o600,
                owner: "root".into(),
                group: "root".into(),
                what: "Diffie-Hellman parameters".into(),
            },
            "/etc/ssl/dh.pem",
            Shape::Made {
                what: "Diffie-Hellman parameters".into(),
            },
        ),
    ]
}

fn with_a_plain_reload_and_a_guarded_restart(p: &mut HostPlan, d: &mut Desired) {
    d.services.push(Service {
        name: "nginx".into(),
        package: "nginx".into(),
        component: "nginx".into(),
        pidfile: Some(("/run/nginx.pid".into(), "nginx".into())),
        plain_reload: Some("nginx -s reload".into()),
    });
    d.guarded.push(Guarded {
        handler: Handler::reload("ssh"),
        what: "sshd's new settings".into(),
    });
    p.steps.push(PlannedStep {
        handler: Handler::reload("nginx"),
        reason: "its configuration changed".into(),
    });
    p.steps.push(PlannedStep {
        handler: Handler::service(Action::Run, "ssh"),
        reason: "its drop-in changed".into(),
    });
}

/// Handlers only: nothing to stage.
fn handlers_only() -> (HostPlan, Desired) {
    let (mut p, d) = plan();
    p.changes.clear();
    p.install.clear();
    p.validators.clear();
    (p, d)
}

fn nothing() -> (HostPlan, Desired) {
    let (mut p, d) = handlers_only();
    p.steps.clear();
    p.generation = None;
    (p, d)
}

#[test]
fn the_program_of_a_plan_with_packages_a_file_and_handlers_is_pinned() {
    let (p, d) = plan();
    insta::assert_snapshot!(program_of(&apply_script(&p, &d, &runner())));
}

#[test]
fn the_program_of_a_plan_with_everything_is_pinned() {
    let (p, d) = everything();
    let s = apply_script(&p, &d, &runner());
    sh_n(&s);
    insta::assert_snapshot!(program_of(&s));
}

#[test]
fn the_program_of_a_plan_of_handlers_only_is_pinned() {
    let (p, d) = handlers_only();
    insta::assert_snapshot!(program_of(&apply_script(&p, &d, &runner())));
}

#[test]
fn the_program_of_an_empty_plan_is_pinned() {
    let (p, d) = nothing();
    insta::assert_snapshot!(program_of(&apply_script(&p, &d, &runner())));
}
