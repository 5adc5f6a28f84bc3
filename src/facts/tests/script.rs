//! The probe's text: what it asks, how it quotes, what it never sends.

use super::*;

#[test]
fn the_probe_quotes_every_path_and_is_valid_sh() {
    let mut r = req();
    r.paths
        .push(("/var/www/it's $(here)".into(), Some("x".into())));
    let script = r.script();
    assert!(script.contains("'/var/www/it'\\''s $(here)'"), "{script}");
    crate::script::tests::sh_n(&script);
}

#[test]
fn the_dpkg_cache_is_in_the_state_directory() {
    let script = req().script();
    for redirect in ["<", ">"] {
        let cache = format!("{redirect} {}/dpkg.cache", crate::host_state::DIR);
        assert!(script.contains(&cache), "{cache}");
    }
}

#[test]
fn secret_files_are_never_compared_by_a_hash_in_the_probe() {
    let mut d = crate::desired::Desired::new("h");
    d.paths.push(crate::desired::ManagedPath {
        path: "/etc/secret.php".into(),
        state: PathState::File {
            content: b"hunter2".to_vec(),
            mode: 0o640,
            owner: "root".into(),
            group: "root".into(),
            sensitive: true,
        },
        notify: vec![],
        validator: None,
        from_previous: false,
        code: false,
        because: None,
    });
    let r = ProbeRequest::for_desired(&d);
    assert_eq!(r.paths, [("/etc/secret.php".to_string(), None)]);
    assert!(!r.script().contains(&sha256_hex(b"hunter2")));
}

#[test]
fn one_probe_asks_every_candidate_release_and_shares_what_they_have_in_common() {
    use crate::release::{DEBIAN_12, DEBIAN_13};
    let d12 = desired_with(
        &[
            ("/etc/nginx/nginx.conf", "same"),
            ("/etc/php/8.2/fpm/pool.d/x.conf", "pool"),
        ],
        &["php8.2-fpm"],
    );
    let d13 = desired_with(
        &[
            ("/etc/nginx/nginx.conf", "same"),
            ("/etc/php/8.4/fpm/pool.d/x.conf", "pool"),
        ],
        &["php8.4-fpm"],
    );
    let probe = Probe::new(&[(DEBIAN_12, &d12), (DEBIAN_13, &d13)]);
    let script = probe.script();
    assert_eq!(
        script.matches("/etc/nginx/nginx.conf").count(),
        2,
        "once in the paths, once in the hash lines, before the branches:\n{script}"
    );
    assert!(
        script.contains("debian-12)") && script.contains("debian-13)"),
        "{script}"
    );
    let r13 = probe.request_for(DEBIAN_13).unwrap();
    assert_eq!(r13.packages, ["php8.4-fpm"]);
    let paths: Vec<&str> = r13.paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        ["/etc/nginx/nginx.conf", "/etc/php/8.4/fpm/pool.d/x.conf"]
    );
    assert!(probe.request_for(crate::release::SUPPORTED[3]).is_none());
    crate::script::tests::sh_n(&script);
}

#[test]
fn a_path_several_sites_declare_is_asked_once() {
    let mut d = desired_with(&[("/etc/a.conf", "a"), ("/etc/b.conf", "b")], &[]);
    let shared = d.paths[0].clone();
    d.paths.push(shared);
    let r = ProbeRequest::for_desired(&d);
    let paths: Vec<&str> = r.paths.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/etc/a.conf", "/etc/b.conf"]);
    assert_eq!(
        r.script().matches("/etc/a.conf").count(),
        2,
        "{}",
        r.script()
    );
}
