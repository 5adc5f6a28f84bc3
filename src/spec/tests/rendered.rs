//! What would only fail when configs are rendered or applied, caught by validate instead: CNAMEs
//! BIND refuses, names too long for files, sockets or DNS, and document roots over system or
//! managed directories.

use super::*;

fn record(name: &str, kind: &str, value: &str) -> String {
    format!("[[dns.records]]\nname = \"{name}\"\ntype = \"{kind}\"\nvalue = \"{value}\"\n\n")
}

/// `GOOD` with `records` before its hosts (line 15 onwards, 5 lines each).
fn with_records(records: &[String]) -> Result<Spec, SpecErrors> {
    parse(&GOOD.replace("[[hosts]]", &format!("{}[[hosts]]", records.concat())))
}

/// A domain of exactly `len` characters: labels of 63 `a`s and a last shorter one.
fn domain_of(len: usize) -> String {
    let mut labels = Vec::new();
    let mut left = len;
    while left > 0 {
        let l = left.min(63);
        let l = if left - l == 1 { l - 1 } else { l };
        labels.push("a".repeat(l));
        left = left.saturating_sub(l + 1);
    }
    let d = labels.join(".");
    assert_eq!(d.len(), len);
    d
}

fn with_domain(len: usize, stack: &str) -> Result<Spec, SpecErrors> {
    let text = GOOD
        .replacen("\"foobar.com\"", &format!("\"{}\"", domain_of(len)), 1)
        .replace("stack = \"lemp\"", &format!("stack = \"{stack}\""));
    parse(&text)
}

#[test]
fn a_cname_at_the_apex_is_refused() {
    let errs = with_records(&[record("@", "CNAME", "example.net.")])
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string(),
        "inv.toml:16:8: dns.records[0].name: found a CNAME at \"@\", the domain itself, which has \
         the zone's SOA and NS records; allowed: a CNAME on a name below the domain, like \"shop\" \
         (use A or AAAA records for the domain itself)"
    );
}

#[test]
fn a_cname_beside_any_other_record_is_refused() {
    let cases = [
        (
            vec![record("mail", "A", "8.8.4.4"), record("mail", "CNAME", "x")],
            "found a CNAME on \"mail\", which also has the A record dns.records[0]",
        ),
        (
            vec![record("shop", "CNAME", "x"), record("shop", "TXT", "hello")],
            "found a CNAME on \"shop\", which also has the TXT record dns.records[1]",
        ),
        // The site's own names get address records from render.
        (
            vec![record("www", "CNAME", "x")],
            "found a CNAME on \"www\", which also has the address records of site.server_names[0]",
        ),
        // So does each host with the dns role, as ns1, ns2, ...
        (
            vec![record("ns1", "CNAME", "x")],
            "found a CNAME on \"ns1\", which also has the address record of name server ns1 (hosts[0] has the \"dns\" role)",
        ),
    ];
    for (records, want) in cases {
        let errs = with_records(&records).unwrap_err().0;
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].message.starts_with(want), "{}", errs[0].message);
        assert!(
            errs[0].message.ends_with(
                "allowed: a CNAME on a name with no other record, as a CNAME makes the name an alias"
            ),
            "{}",
            errs[0].message
        );
    }
    // Two CNAMEs on one name: each is pointed at.
    let errs = with_records(&[record("a", "CNAME", "x"), record("a", "CNAME", "y")])
        .unwrap_err()
        .0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["dns.records[0].name", "dns.records[1].name"]);
}

#[test]
fn a_cname_alone_on_its_name_is_accepted() {
    let s = with_records(&[record("shop", "CNAME", "shops.example.net.")]).unwrap();
    assert_eq!(s.sites[0].dns.records[0].value, "shops.example.net.");
}

#[test]
fn a_domain_too_long_for_the_files_named_after_it_is_refused() {
    assert!(with_domain(226, "nginx-apache").is_ok());
    let errs = with_domain(227, "nginx-apache").unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].message,
        "found a domain of 227 characters with stack \"nginx-apache\"; allowed: at most 226 \
         characters: the self-signed certificate Nginx reads is named \
         <domain>.self-signed-0123456789ab.pem, which must fit in a file name (255 bytes)"
    );
    // A legal 253-character DNS name is refused the same way.
    let errs = with_domain(253, "nginx-apache").unwrap_err().0;
    assert_eq!(errs[0].key, "site.domain");
}

#[test]
fn the_php_fpm_socket_takes_no_length_from_the_domain() {
    // The socket is named by the site's short name: every stack takes the longest domain the file
    // names allow.
    for stack in ["lemp", "lamp", "nginx-apache"] {
        assert!(with_domain(226, stack).is_ok(), "{stack}");
        assert!(with_domain(227, stack).is_err(), "{stack}");
    }
}

#[test]
fn names_too_long_once_qualified_with_the_domain_are_refused() {
    // 70 + "." + 183 = 254 characters.
    let long = format!("{}.{}", "b".repeat(63), "c".repeat(6));
    let text = GOOD
        .replacen("\"foobar.com\"", &format!("\"{}\"", domain_of(183)), 1)
        .replace("stack = \"lemp\"", "stack = \"nginx-apache\"")
        .replace(
            "server_names = [\"www\"]",
            &format!("server_names = [\"{long}\"]"),
        );
    let errs = parse(&text).unwrap_err().0;
    assert_eq!(errs[0].key, "site.server_names[0]");
    assert!(
        errs[0]
            .message
            .ends_with("allowed: a name that makes at most 253 characters with the domain (this one makes 254)"),
        "{}",
        errs[0].message
    );
    let text = text.replace(&format!("[\"{long}\"]"), "[\"www\"]").replace(
        "[[hosts]]",
        &format!(
            "{}{}[[hosts]]",
            record(&long, "A", "8.8.4.4"),
            record("m", "MX", &format!("10 {long}"))
        ),
    );
    let keys: Vec<String> = parse(&text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["dns.records[0].name", "dns.records[1].value"]);
}

#[test]
fn document_roots_over_system_or_managed_directories_are_refused() {
    let cases = [
        ("/etc", "inside the system directory /etc"),
        ("/etc/nginx/html", "inside the system directory /etc"),
        ("/etc/provision/sites", "inside the system directory /etc"),
        ("/usr/share/nginx/html", "inside the system directory /usr"),
        ("/var", "it contains /var/lib"),
        ("/var/lib/provision", "inside the system directory /var/lib"),
        ("/var/log/site", "inside the system directory /var/log"),
        ("/var/cache/site", "inside the system directory /var/cache"),
        ("/var/spool/site", "inside the system directory /var/spool"),
        (
            "/var/backups/site",
            "inside the system directory /var/backups",
        ),
        ("/var/tmp/site", "inside the system directory /var/tmp"),
        ("/tmp/site", "inside the system directory /tmp"),
        ("/root/site", "inside the system directory /root"),
        ("/run/php", "inside the system directory /run"),
        ("/boot/site", "inside the system directory /boot"),
        ("/dev/shm", "inside the system directory /dev"),
        ("/proc/self", "inside the system directory /proc"),
        ("/sys/site", "inside the system directory /sys"),
        ("/lib/site", "inside the system directory /lib"),
        ("/lib64/site", "inside the system directory /lib64"),
        ("/bin/site", "inside the system directory /bin"),
        ("/sbin/site", "inside the system directory /sbin"),
        (
            "/home",
            "a home directory itself, or the directory of homes",
        ),
        (
            "/home/alice",
            "a home directory itself, or the directory of homes",
        ),
    ];
    for (root, why) in cases {
        let e = one_error(
            "stack = \"lemp\"",
            &format!("stack = \"lemp\"\ndocument_root = \"{root}\""),
        );
        assert_eq!(e.key, "site.document_root");
        assert!(
            e.message
                .starts_with(&format!("found \"{root}\" ({why}); allowed: a directory of the site's own, such as /var/www/<name>")),
            "{root}: {}",
            e.message
        );
    }
    // "/" itself is not even a valid host path.
    let e = one_error(
        "stack = \"lemp\"",
        "stack = \"lemp\"\ndocument_root = \"/\"",
    );
    assert_eq!(e.key, "site.document_root");
    for root in [
        "/var/www/foobar.com",
        "/var/www",
        "/srv/foobar",
        "/opt/foobar/public",
        "/home/alice/site",
        // Inside means below a whole path component: these are not /etc or /lib.
        "/etcetera/site",
        "/library/site",
    ] {
        let text = GOOD.replace(
            "stack = \"lemp\"",
            &format!("stack = \"lemp\"\ndocument_root = \"{root}\""),
        );
        let s = parse(&text).unwrap_or_else(|e| panic!("{root}: {e}"));
        assert_eq!(s.sites[0].document_root, root);
    }
}
