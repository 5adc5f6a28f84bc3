use super::*;
use crate::render::templates::Templates;

#[test]
fn dates_from_timestamps() {
    assert_eq!(ymd_from_unix(0), 19_700_101);
    assert_eq!(ymd_from_unix(1_795_305_600), 20_261_122);
    assert_eq!(ymd_from_unix(951_782_400), 20_000_229);
}

#[test]
fn serial_is_read_from_a_multi_line_soa() {
    let z = "$TTL 300\n@ IN SOA ns1.a.b. h.a.b. (\n  2026112203 ; serial\n 3600 900 1 2 )\n";
    assert_eq!(Zone::parse(z).serial, Some(2_026_112_203));
    assert_eq!(
        Zone::parse("@ IN SOA ns1 h (2026112203 1 2 3 4)").serial,
        Some(2_026_112_203)
    );
    assert_eq!(Zone::parse("@ IN NS ns1").serial, None);
}

#[test]
fn a_domain_with_the_digit_zero_keeps_its_serial() {
    // The old comparison masked the first "0" after SOA, which could be inside the domain.
    let a = "$ORIGIN shop2020.com.\n@ IN SOA ns1.shop2020.com. hostmaster.shop2020.com. (\n 2026112201 ; serial\n 3600 900 1209600 300 )\nwww IN A 10.0.0.1\n";
    let b = a.replace("2026112201", "2026112299");
    assert!(Zone::parse(a).same_records(&Zone::parse(&b)));
    let c = a.replace("10.0.0.1", "10.0.0.2");
    assert!(!Zone::parse(a).same_records(&Zone::parse(&c)));
}

#[test]
fn comments_spacing_case_and_order_do_not_count() {
    let a = "@ IN SOA ns1 h ( 1 2 3 4 5 )\nwww IN A 1.2.3.4\nmail IN MX 10 mx\n";
    let b = "; a comment\n@   in   soa ns1 h (7 2 3 4 5) ; serial moved\nmail IN MX 10 mx\nWWW IN A 1.2.3.4 ; same\n";
    assert!(Zone::parse(a).same_records(&Zone::parse(b)));
}

#[test]
fn quoted_text_is_compared_exactly_and_may_hold_semicolons() {
    let a = "txt IN TXT \"v=spf1 ; \\\"quoted\\\" (x)\"\n";
    let b = "txt IN TXT \"v=spf1 ; \\\"quoted\\\" (X)\"\n";
    let za = Zone::parse(a);
    assert_eq!(
        za.entries[0].fields.last().unwrap(),
        "\"v=spf1 ; \\\"quoted\\\" (x)\""
    );
    assert!(!za.same_records(&Zone::parse(b)));
}

#[test]
fn serial_is_kept_when_records_are_unchanged() {
    assert_eq!(
        next_serial(Some(2_026_010_105), true, 20_261_122),
        2_026_010_105
    );
}

#[test]
fn serial_moves_to_today_or_one_above_the_old() {
    assert_eq!(next_serial(None, false, 20_261_122), 2_026_112_201);
    assert_eq!(
        next_serial(Some(2_026_010_105), false, 20_261_122),
        2_026_112_201
    );
    assert_eq!(
        next_serial(Some(2_026_112_201), false, 20_261_122),
        2_026_112_202
    );
    // A serial from the future (clock skew, or another tool) still only goes up.
    assert_eq!(
        next_serial(Some(2_030_010_199), false, 20_261_122),
        2_030_010_200
    );
}

/// A small deterministic generator (xorshift): the property test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn label(&mut self) -> String {
        // Digits (0 above all) and hyphens inside, as real domains have.
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789000-";
        let len = 1 + self.below(12) as usize;
        let mut s: String = (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect();
        s = s.trim_matches('-').to_string();
        if s.is_empty() {
            "x0".into()
        } else {
            s
        }
    }
    fn record(&mut self) -> serde_json::Value {
        let name = self.label();
        let (kind, value) = match self.below(5) {
            0 => (
                "A",
                format!(
                    "10.{}.{}.{}",
                    self.below(256),
                    self.below(256),
                    self.below(256)
                ),
            ),
            1 => ("AAAA", format!("2001:db8::{:x}", self.below(65536))),
            2 => ("CNAME", format!("{}.example.net.", self.label())),
            3 => ("MX", format!("{} {}", self.below(100), self.label())),
            _ => {
                const TXT: &[&str] = &[
                    "v=spf1 -all",
                    "a ; b",
                    "(paren) \\\"q\\\"",
                    "0 0 0",
                    "SOA 2020",
                ];
                (
                    "TXT",
                    format!("\"{}\"", TXT[self.below(TXT.len() as u64) as usize]),
                )
            }
        };
        let ttl = if self.below(3) == 0 {
            60 + self.below(1000)
        } else {
            0
        };
        serde_json::json!({ "name": name, "kind": kind, "value": value, "ttl": ttl })
    }
}

fn render_zone(
    t: &Templates,
    domain: &str,
    contact: &str,
    records: &[serde_json::Value],
    serial: u64,
) -> String {
    let mut ctx = tera::Context::new();
    ctx.insert("site", &serde_json::json!({ "domain": domain }));
    ctx.insert(
        "dns",
        &serde_json::json!({
            "ttl": 3600, "soa_contact": contact, "primary_ns": format!("ns1.{domain}."),
            "nameservers": [format!("ns1.{domain}.")], "records": records, "serial": serial,
        }),
    );
    t.render("bind/zone.db", &ctx).unwrap()
}

/// For generated domains, contacts and records rendered by the real template: the records compare
/// equal whatever the two serials, and any change of one record is seen.
#[test]
fn property_records_decide_and_the_serial_never_does() {
    let t = Templates::load(None).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..400 {
        let domain = format!(
            "{}.{}",
            rng.label(),
            ["com", "net", "org", "co0"][rng.below(4) as usize]
        );
        let contact = format!("{}.{domain}.", rng.label());
        let records: Vec<_> = (0..1 + rng.below(8)).map(|_| rng.record()).collect();
        let s1 = 2_000_010_100 + rng.below(1_000_000_000);
        let s2 = 2_000_010_100 + rng.below(1_000_000_000);
        let a = Zone::parse(&render_zone(&t, &domain, &contact, &records, s1));
        let b = Zone::parse(&render_zone(&t, &domain, &contact, &records, s2));
        assert!(a.same_records(&b), "{domain} {records:?}");
        assert_eq!(a.serial, Some(s1 as u32));
        assert_eq!(
            next_serial(a.serial, a.same_records(&b), 20_261_123),
            s1 as u32
        );

        let mut changed = records.clone();
        let i = rng.below(changed.len() as u64) as usize;
        changed[i] = rng.record();
        if changed[i] != records[i] {
            let c = Zone::parse(&render_zone(&t, &domain, &contact, &changed, s1));
            assert!(
                !a.same_records(&c),
                "{domain}: {:?} → {:?}",
                records[i],
                changed[i]
            );
        }
    }
}
