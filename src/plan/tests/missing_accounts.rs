//! Accounts: the ones missing, and the ones provision did not make.

use super::*;

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
