//! The shape of the file: encoding, TOML syntax, kinds of values, unknown, missing and duplicate
//! keys. Each message names the key the user wrote, never serde's internals.

use super::*;

/// The full `line:col: key: message` of the one error `GOOD` with `from` replaced gives.
fn shown_error(from: &str, to: &str) -> String {
    let e = one_error(from, to);
    format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message)
}

/// Each case: `GOOD` with `from` replaced by `to` gives the one error `want`, in the project's words.
fn assert_named(cases: &[(&str, &str, &str)]) {
    for (from, to, want) in cases {
        let got = shown_error(from, to);
        assert_eq!(got, *want, "for {to:?}");
        assert!(
            !got.contains("serde") && !got.contains("invalid type"),
            "{got}"
        );
    }
}

#[test]
fn a_value_of_the_wrong_kind_is_named_with_its_key_and_what_is_allowed() {
    assert_named(&[
        // A string where a number belongs: the message from the issue.
        (
            "port = 22",
            "port = \"22\"",
            "21:8: hosts[0].ssh.port: found a string \"22\"; allowed: a whole number from 1 to 65535",
        ),
        // A number where a string belongs.
        (
            "name = \"foobar\"",
            "name = 5",
            "7:8: database.name: found the whole number 5; allowed: a SQL identifier like \"foobar\"",
        ),
        // An element of the wrong kind inside an array.
        (
            "server_names = [\"www\"]",
            "server_names = [\"www\", 1]",
            "3:24: site.server_names[1]: found the whole number 1; allowed: a name relative to the domain, like \"www\", or \"@\" for the domain itself",
        ),
        (
            "ttl = 300",
            "ttl = 300.5",
            "12:7: dns.ttl: found the decimal number 300.5; allowed: a whole number from 60 to 604800",
        ),
        (
            "stack = \"lemp\"",
            "stack = true",
            "4:9: site.stack: found the boolean true; allowed: one of \"lemp\", \"lamp\", \"nginx-apache\"",
        ),
        (
            "soa_contact = \"hostmaster@foobar.com\"",
            "soa_contact = 2024-01-01",
            "13:15: dns.soa_contact: found the date-time 2024-01-01; allowed: an address like \"hostmaster@foobar.com\"",
        ),
        // A number too large for any integer type is out of range, not a parser failure.
        (
            "ttl = 300",
            "ttl = 99999999999999999999",
            "12:7: dns.ttl: found 99999999999999999999; allowed: a whole number from 60 to 604800",
        ),
    ]);
}

#[test]
fn a_table_or_an_array_where_another_kind_belongs_is_named_with_its_key() {
    assert_named(&[
        // A table where an array belongs.
        (
            "roles = [\"web\", \"app\", \"db\", \"dns\"]",
            "roles = { web = true }",
            "18:9: hosts[0].roles: found a table; allowed: an array of strings, each one of \"lb\", \"web\", \"app\", \"db\", \"db-replica\", \"dns\"",
        ),
        // An array where a string belongs.
        (
            "domain = \"foobar.com\"",
            "domain = [\"foobar.com\"]",
            "2:10: site.domain: found an array; allowed: the site's DNS name, like \"foobar.com\"",
        ),
        // A string where an array belongs.
        (
            "roles = [\"web\", \"app\", \"db\", \"dns\"]",
            "roles = \"web\"",
            "18:9: hosts[0].roles: found a string \"web\"; allowed: an array of strings, each one of \"lb\", \"web\", \"app\", \"db\", \"db-replica\", \"dns\"",
        ),
        // A table where a string belongs.
        (
            "domain = \"foobar.com\"",
            "domain = { name = \"foobar.com\" }",
            "2:10: site.domain: found a table; allowed: the site's DNS name, like \"foobar.com\"",
        ),
        // A value where a table belongs.
        (
            "[hosts.ssh]\naddress = \"198.18.0.10\"\nport = 22",
            "ssh = \"198.18.0.10\"",
            "19:7: hosts[0].ssh: found a string \"198.18.0.10\"; allowed: a table: [hosts.ssh] or ssh = { address = \"...\" }",
        ),
    ]);
}

#[test]
fn a_table_where_an_array_of_tables_belongs_is_named() {
    let got = shown_error("[[hosts]]", "[hosts]");
    assert_eq!(
        got,
        "15:1: hosts: found a table; allowed: [[hosts]] tables, one per host"
    );
    // The other way round, an array of tables where a table was defined, is a TOML error.
    let got = shown_error("[[hosts]]", "[[site]]\n[[hosts]]");
    assert!(
        got.starts_with(
            "15:3: site: found a second definition of this table (the first is at line 1)"
        ),
        "{got}"
    );
}

#[test]
fn a_missing_key_says_which_table_it_is_missing_from() {
    assert_eq!(
        shown_error("stack = \"lemp\"\n", ""),
        "1:1: site.stack: missing from the table site; allowed: one of \"lemp\", \"lamp\", \"nginx-apache\""
    );
    assert_eq!(
        shown_error("address = \"198.18.0.10\"\n", ""),
        "19:1: hosts[0].ssh.address: missing from the table hosts[0].ssh; allowed: an IP address or a DNS name"
    );
    assert_eq!(
        shown_error("[hosts.ssh]\naddress = \"198.18.0.10\"\nport = 22\n", ""),
        "15:1: hosts[0].ssh: missing from the table hosts[0]; allowed: a table: [hosts.ssh] or ssh = { address = \"...\" }"
    );
    let text = GOOD.replace(
        "[dns]\nttl = 300\nsoa_contact = \"hostmaster@foobar.com\"\n",
        "",
    );
    let errs = parse(&text).unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        (errs[0].line, errs[0].key.as_str(), errs[0].message.as_str()),
        (
            1,
            "dns",
            "missing from the top level of the file; allowed: a [dns] table with soa_contact"
        )
    );
}

#[test]
fn a_duplicate_key_is_named_with_the_position_of_the_second_one() {
    let cases = [
        // In a [table].
        (
            "stack = \"lemp\"",
            "stack = \"lemp\"\ndomain = \"foobar.org\"",
            "5:1: site.domain: found a second definition of this key (the first is at line 2); allowed: each key once per table",
        ),
        // A [table] header twice.
        (
            "[dns]",
            "[site]\nx = 1\n[dns]",
            "11:2: site: found a second definition of this table (the first is at line 1); allowed: each table once (add keys to the first one, or use [[...]] for a list of tables)",
        ),
        // In an element of an array of tables.
        (
            "public_address = \"8.8.8.8\"",
            "public_address = \"8.8.8.8\"\nname = \"web-02\"",
            "18:1: hosts[0].name: found a second definition of this key (the first is at line 16); allowed: each key once per table",
        ),
        // In a sub-table of an array element.
        (
            "port = 22",
            "port = 22\nport = 23",
            "22:1: hosts[0].ssh.port: found a second definition of this key (the first is at line 21); allowed: each key once per table",
        ),
        // In an inline table: both on one line, so no "first at".
        (
            "[hosts.ssh]\naddress = \"198.18.0.10\"\nport = 22",
            "ssh = { address = \"198.18.0.10\", address = \"198.18.0.11\" }",
            "19:34: hosts[0].ssh.address: found a second definition of this key; allowed: each key once per table",
        ),
    ];
    for (from, to, want) in cases {
        assert_eq!(shown_error(from, to), want, "for {to:?}");
    }
}

#[test]
fn every_syntax_error_is_reported_with_its_position() {
    let text = GOOD
        .replace("ttl = 300", "ttl = 300 300")
        .replace("port = 22", "port = 22\nport = 23");
    let errs = parse(&text).unwrap_err().0;
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.key.as_str())).collect();
    assert_eq!(got, [(12, ""), (22, "hosts[0].ssh.port")], "{errs:#?}");
    assert!(
        errs[0].message.starts_with("invalid TOML: "),
        "{}",
        errs[0].message
    );
    let e = &parse("[site\ndomain = 1").unwrap_err().0[0];
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 6, "invalid TOML: unclosed table; allowed: `]`")
    );
}

#[test]
fn odd_keys_cannot_garble_the_message() {
    let e = one_error("port = 22", "port = 22\n\"a\\nb.c\" = 1");
    assert_eq!(e.key, "hosts[0].ssh.\"a\\nb.c\"");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn a_utf8_byte_order_mark_is_skipped_and_columns_are_unchanged() {
    let with_bom = format!(
        "\u{feff}{}",
        GOOD.replace("\"foobar.com\"\nserver", "\"foo;bar.com\"\nserver")
    );
    let errs = parse(&with_bom).unwrap_err().0;
    assert_eq!((errs[0].line, errs[0].column), (2, 10));
    let bytes = format!("\u{feff}{GOOD}").into_bytes();
    assert_eq!(syntax::decode(&bytes, Path::new("f")).unwrap(), GOOD);
}

#[test]
fn utf16_files_are_named_as_such() {
    let le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(GOOD.encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    let be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(GOOD.encode_utf16().flat_map(|u| u.to_be_bytes()))
        .collect();
    for bytes in [le, be] {
        let e = syntax::decode(&bytes, Path::new("f")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:1:1: the file is UTF-16; allowed: UTF-8 (convert it with iconv -f UTF-16 -t UTF-8)"
        );
    }
    let no_bom: Vec<u8> = GOOD.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let e = syntax::decode(&no_bom, Path::new("f")).unwrap_err();
    assert!(e.message.contains("looks like UTF-16"), "{}", e.message);
}

#[test]
fn the_first_byte_that_is_not_utf8_is_located() {
    let mut bytes = GOOD.as_bytes().to_vec();
    // "caf\xe9" (Latin-1) in a comment on line 3, after `server_names = ["www"] # caf`.
    let at = GOOD.find("\nstack").unwrap();
    bytes.splice(at..at, b" # caf\xe9".iter().copied());
    let e = syntax::decode(&bytes, Path::new("f")).unwrap_err();
    assert_eq!((e.line, e.column), (3, 29));
    assert!(
        e.message
            .starts_with("found the byte 0xE9, which is not UTF-8"),
        "{}",
        e.message
    );
    assert!(e.message.ends_with("allowed: UTF-8 text"), "{}", e.message);
    let cut = &"é".as_bytes()[..1];
    let e = syntax::decode(&[b"a = 1\n".as_slice(), cut].concat(), Path::new("f")).unwrap_err();
    assert_eq!((e.line, e.column), (2, 1));
    assert!(e.message.contains("ends in the middle"), "{}", e.message);
}
