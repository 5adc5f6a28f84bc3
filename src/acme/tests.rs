use super::*;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_challenge_name_is_a_zone_of_its_own_delegated_from_the_site_zone() {
    let z = ChallengeZone::new(
        "foobar.com",
        &names(&[
            "foobar.com",
            "*.foobar.com",
            "www.foobar.com",
            "*.shop.foobar.com",
            "a.shop.foobar.com",
        ]),
    )
    .unwrap();
    // The apex and its wildcard share one challenge name; so does a name and the wildcard of it.
    assert_eq!(
        z.zones,
        names(&[
            "_acme-challenge.foobar.com",
            "_acme-challenge.www.foobar.com",
            "_acme-challenge.shop.foobar.com",
            "_acme-challenge.a.shop.foobar.com",
        ])
    );
    assert_eq!(
        z.owners,
        names(&[
            "_acme-challenge",
            "_acme-challenge.www",
            "_acme-challenge.shop",
            "_acme-challenge.a.shop",
        ])
    );
}

#[test]
fn a_name_outside_the_domain_has_no_challenge_record_there() {
    let e = ChallengeZone::new(
        "foobar.com",
        &names(&["www.foobar.com", "www.notfoobar.com"]),
    )
    .unwrap_err();
    assert_eq!(e.name, "www.notfoobar.com");
    // A suffix that is not a label boundary is not in the domain either.
    assert!(ChallengeZone::new("foobar.com", &names(&["xfoobar.com"])).is_err());
    assert!(e.to_string().contains("allowed with dns-01"));
}

/// What `provision-acme status` printed on a lab host (times shortened to round numbers): one site
/// served by the CA, one still on its placeholder after a failed first try.
const STATUS: &str = "site foobar.com
wanted foobar.com www.foobar.com
challenge http-01
directory https://198.18.0.1:14600/dir
file /etc/nginx/tls/foobar.com.acme.pem
serving issued
names foobar.com www.foobar.com
issuer CN=Pebble Intermediate CA 116545
not_before 1000000000
not_after 1007776000
renew_at 1005184000
checked 1000000100
result ok
failures 0
next_try 0
error 
site foobaz.com
wanted *.foobaz.com foobaz.com
challenge dns-01
directory https://198.18.0.1:14600/dir
file /etc/nginx/tls/foobaz.com.acme.pem
serving placeholder
names *.foobaz.com foobaz.com
issuer CN=foobaz.com,O=provision placeholder
not_before 1000000000
not_after 1315360000
renew_at 
checked 1000000200
result failed
failures 2
next_try 1000007400
error Could not create client: get directory at https://198.18.0.1:14600/dir: connect: connection refused
a_key_of_a_newer_script value
";

fn parsed() -> Vec<CertStatus> {
    CertStatus::parse_all(&STATUS.lines().collect::<Vec<_>>())
}

#[test]
fn the_status_of_each_site_is_read() {
    let s = parsed();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].site, "foobar.com");
    assert_eq!(s[0].serving, Serving::Issued);
    assert_eq!(s[0].names, names(&["foobar.com", "www.foobar.com"]));
    assert_eq!(s[0].issuer, "CN=Pebble Intermediate CA 116545");
    assert_eq!(s[0].not_after, Some(1007776000));
    assert_eq!(s[0].renew_at, Some(1005184000));
    assert_eq!(s[0].outcome, Outcome::Ok);
    assert_eq!(s[0].next_try, None);
    assert_eq!(s[1].serving, Serving::Placeholder);
    assert_eq!(s[1].challenge, "dns-01");
    assert_eq!(s[1].renew_at, None);
    assert_eq!(s[1].outcome, Outcome::Failed);
    assert_eq!(s[1].failures, 2);
    assert!(s[1].error.ends_with("connection refused"));
}

#[test]
fn an_issued_certificate_is_reported_with_its_issuer_and_days_left() {
    let s = &parsed()[0];
    let now = 1000000000 + 10 * 86400;
    assert_eq!(s.attention(now), None);
    let r = s.report(now);
    assert!(r.ok);
    assert_eq!(
        r.text,
        "certificate of foobar.com: foobar.com www.foobar.com by CN=Pebble Intermediate CA 116545, 80 days left"
    );
}

#[test]
fn a_placeholder_after_a_failed_try_needs_attention_and_fails_the_check() {
    let s = &parsed()[1];
    let why = s.attention(1000000300).unwrap();
    assert_eq!(
        why,
        "foobaz.com: still the placeholder: the CA gave no certificate (2 tries: Could not create client: get directory at https://198.18.0.1:14600/dir: connect: connection refused); next try in 118 min"
    );
    let r = s.report(1000000300);
    assert!(!r.ok);
    assert!(r.text.contains("self-signed placeholder"), "{}", r.text);
}

#[test]
fn a_placeholder_waiting_for_its_first_try_fails_the_check_but_needs_no_attention() {
    let mut s = parsed()[1].clone();
    s.outcome = Outcome::NotYet;
    assert_eq!(s.attention(1000000300), None);
    assert!(!s.report(1000000300).ok);
}

#[test]
fn a_failed_renewal_says_how_long_the_served_certificate_lasts() {
    let mut s = parsed()[0].clone();
    s.outcome = Outcome::Failed;
    s.failures = 1;
    s.error = "acme: error: 403".into();
    s.next_try = Some(1005184000 + 3600);
    let why = s.attention(1005184000).unwrap();
    assert_eq!(
        why,
        "foobar.com: the CA gave no certificate (1 try: acme: error: 403); next try in 60 min; the certificate served ends in 30 days"
    );
    assert!(!s.report(1005184000).ok);
}

#[test]
fn an_ended_certificate_needs_attention_even_before_a_try_failed() {
    let s = &parsed()[0];
    let why = s.attention(1007776000).unwrap();
    assert_eq!(why, "foobar.com: the certificate served has ended");
    assert_eq!(s.days_left(1007776000 + 1), Some(-1));
}

#[test]
fn lines_before_any_site_and_unknown_keys_are_ignored() {
    let s = CertStatus::parse_all(&["serving issued", "site a.com", "colour blue"]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].serving, Serving::Missing);
    assert_eq!(
        s[0].report(0).text,
        "certificate of a.com: none: no certificate file"
    );
}
