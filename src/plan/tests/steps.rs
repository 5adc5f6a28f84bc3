//! Handlers and package lists: what runs, in which order, merged by strength.

use super::*;

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
