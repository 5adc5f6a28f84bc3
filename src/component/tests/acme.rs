//! The ACME component asks for its step and schedule, and reports each certificate, by what the
//! host's `provision-acme status` says.

use super::*;

/// Runs `f` on the host of the ACME example (inventories/acme.toml) with its `acme` component.
fn on_acme_example<T>(f: impl FnOnce(&dyn Component, &Cx) -> T) -> T {
    on_example("acme.toml", |spec, r, renderer| {
        let c = r.get("acme").unwrap();
        renderer.with_cx(&spec.hosts[0], crate::release::CURRENT_STABLE, |cx| {
            f(c, cx)
        })
    })
}

fn owned(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

/// `provision-acme status` of foobar.com, serving `serving`, the last try `result`.
fn acme_status(serving: &str, result: &str) -> Vec<String> {
    owned(&[
        "schedule active",
        "now 1800000000",
        "site foobar.com",
        "wanted foobar.com www.foobar.com",
        "challenge http-01",
        &format!("serving {serving}"),
        "names foobar.com www.foobar.com",
        "issuer CN=Pebble Intermediate-CA 1a2b3c",
        "not_after 1807776000",
        &format!("result {result}"),
        if result == "failed" {
            "failures 2"
        } else {
            "failures 0"
        },
        if result == "failed" {
            "next_try 1800007200"
        } else {
            "next_try 0"
        },
        if result == "failed" {
            "error acme: error: 0 :: connection refused"
        } else {
            "error "
        },
    ])
}

#[test]
fn acme_asks_for_its_step_and_schedule_by_what_the_host_says() {
    let needs = |lines: Vec<String>| {
        on_acme_example(|c, cx| {
            c.needs(cx, &lines)
                .into_iter()
                .map(|n| format!("{} ({})", n.handler.line(), n.reason))
                .collect::<Vec<_>>()
        })
    };
    // Never applied: no schedule, no state.
    let first = needs(Vec::new());
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first[0].contains("acme-schedule"), "{first:?}");
    assert!(
        first[1].contains("acme-foobar.com") && first[1].contains("no state"),
        "{first:?}"
    );
    assert!(needs(acme_status("issued", "ok")).is_empty());
    assert!(needs(acme_status("placeholder", "none")).is_empty());
    let gone = needs(acme_status("missing", "ok"));
    assert!(
        gone.len() == 1 && gone[0].contains("no certificate file"),
        "{gone:?}"
    );
    // Never issued and the CA refused: an apply asks again; an issued one serving waits for the
    // timer's backoff.
    let refused = needs(acme_status("placeholder", "failed"));
    assert!(
        refused.len() == 1 && refused[0].contains("the CA gave none yet (acme: error"),
        "{refused:?}"
    );
    assert!(needs(acme_status("issued", "failed")).is_empty());
}

#[test]
fn acme_says_what_needs_attention_and_reports_each_certificate() {
    let said = |lines: Vec<String>| {
        on_acme_example(|c, cx| {
            let reports: Vec<(bool, String)> = c
                .report(cx, &lines)
                .into_iter()
                .map(|r| (r.ok, r.text))
                .collect();
            (c.notices(cx, &lines), reports)
        })
    };
    let (notices, reports) = said(acme_status("issued", "ok"));
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(
        reports,
        [(
            true,
            "certificate of foobar.com: foobar.com www.foobar.com by CN=Pebble Intermediate-CA 1a2b3c, 90 days left".to_string()
        )]
    );
    let (notices, reports) = said(acme_status("issued", "failed"));
    assert_eq!(
        notices,
        ["certificate of foobar.com: the CA gave no certificate (2 tries: acme: error: 0 :: connection refused); next try in 120 min; the certificate served ends in 90 days"]
    );
    assert!(!reports[0].0, "{reports:?}");
    let (_, reports) = said(Vec::new());
    assert_eq!(
        reports,
        [(
            false,
            "certificate of foobar.com: provision-acme has no state for it (not applied yet?)"
                .to_string()
        )]
    );
}
