//! The pure parser, on canned probe output.

use super::*;

#[test]
fn parses_every_fact_from_canned_output() {
    let f = parse(CANNED, &req()).unwrap();
    assert_eq!(
        (
            f.os_id.as_str(),
            f.os_version.as_str(),
            f.os_codename.as_str(),
            f.systemd
        ),
        ("debian", "12", "bookworm", true)
    );
    assert_eq!(f.packages["nginx"].as_deref(), Some("1.22.1-9+deb12u1"));
    assert_eq!(f.packages["php8.2-fpm"], None);
    assert!(f.no_candidate.contains("php8.2-fpm"));
    assert_eq!(f.apt_lists_age, Some(120));
    assert_eq!(
        f.paths["/etc/nginx/nginx.conf"],
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"hello\n".to_vec())
        }
    );
    assert_eq!(f.content("/etc/nginx/nginx.conf").unwrap(), b"hello\n");
    assert_eq!(
        f.paths["/etc/nginx/sites-enabled/foobar.com.conf"],
        PathFact::Link {
            target: "../sites-available/foobar.com.conf".into()
        }
    );
    assert_eq!(
        f.paths["/etc/nginx/sites-enabled/default"],
        PathFact::Absent
    );
    assert_eq!(
        f.paths["/var/www/foobar.com"],
        PathFact::Dir {
            mode: 0o755,
            owner: "root".into(),
            group: "www-data".into()
        }
    );
    assert!(f.services["nginx"]);
    assert_eq!(f.components["mariadb"], ["up", "db\tfoobar"]);
    assert_eq!(
        f.state.pending,
        vec![crate::desired::Handler::reload("nginx")]
    );
    assert_eq!(f.state.current.as_deref(), Some("G000003-20261123T000000Z"));
    assert!(f.state.key.is_some());
}

#[test]
fn a_missing_package_apt_has_a_candidate_for_does_not_ask_for_new_lists() {
    // What dpkg.sh prints: php8.2-fpm is not installed, and apt-cache knows a version of it.
    let out =
        "@dpkg nginx ii 1.22.1-9+deb12u1\n@dpkg php8.2-fpm rc 8.2.1\n@cand php8.2-fpm\n@end\n";
    let f = parse(out, &req()).unwrap();
    assert_eq!(f.packages["php8.2-fpm"], None);
    assert!(f.no_candidate.is_empty());
}

#[test]
fn a_cut_off_probe_is_an_error() {
    let cut = CANNED.replace("@end\n", "");
    assert!(parse(&cut, &req()).is_err());
}

#[test]
fn a_fresh_host_has_everything_absent() {
    let f = parse("@os debian 12 bookworm\n@init none\n@end\n", &req()).unwrap();
    assert!(!f.systemd);
    assert!(f.paths.values().all(|p| *p == PathFact::Absent));
    assert_eq!(f.apt_lists_age, None);
    assert!(f.components.is_empty());
    assert_eq!(f.state, HostState::default());
}

#[test]
fn a_component_snippet_comes_back_to_its_component_only() {
    // The real probe run by sh: the component's lines are tagged with its name.
    let r = ProbeRequest {
        packages: vec![],
        paths: vec![],
        services: vec![],
        components: vec![
            ("example".into(), "echo one; echo 'two words'; x=1".into()),
            ("silent".into(), "false".into()),
            ("other".into(), "echo \"three $x\"; printf '@end'".into()),
        ],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    };
    let f = parse(&run_probe(&r), &r).unwrap();
    assert_eq!(f.components["example"], ["one", "two words"]);
    // Lines that look like the probe's own are the component's, up to its end marker.
    assert_eq!(f.components["other"], ["three 1", "@end"]);
    assert!(!f.components.contains_key("silent"), "{:?}", f.components);
}

#[test]
fn the_release_line_is_read_first() {
    assert_eq!(
        os_of("banner\n@os debian 11 bullseye\n@init none\n"),
        Some(("debian".into(), "11".into(), "bullseye".into()))
    );
    assert_eq!(os_of("@init none\n"), None);
}

#[test]
fn accounts_are_read_from_their_passwd_and_group_lines() {
    let r = accounts_req(&["shop", "blog", "alice"]);
    let out = "@os debian 12 bookworm\n\
        @pw shop:x:998:997:[provision] site shop.example.com:/var/www/shop:/usr/sbin/nologin\n\
        @gr shop:x:997:\n@pw alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n@gr alice:x:1000:\n@end\n";
    let f = parse(out, &r).unwrap();
    let shop = &f.users["shop"];
    assert_eq!(
        (shop.uid, shop.gid, shop.home.as_str()),
        (998, 997, "/var/www/shop")
    );
    assert!(shop.is_provisions());
    let alice = &f.users["alice"];
    assert!(!alice.is_provisions());
    assert_eq!(alice.shell, "/bin/bash");
    assert_eq!(f.groups["shop"], 997);
    assert!(!f.users.contains_key("blog") && !f.groups.contains_key("blog"));
    for bad in [
        "@pw shop:x:998\n",
        "@pw shop:x:abc:1:c:/h:/s\n",
        "@gr shop:x\n",
    ] {
        let e = parse(&format!("{bad}@end\n"), &r).unwrap_err();
        assert!(e.0.contains("bad /etc/"), "{e}");
    }
}
