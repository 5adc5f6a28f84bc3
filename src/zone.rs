//! The SOA serial of a zone: `YYYYMMDDnn`, bumped only when the zone's records change, always above
//! the serial the host already has, so secondaries and caches see every real change and no other.

/// A calendar date as the number `YYYYMMDD`.
pub type Ymd = u32;

/// The date of a Unix timestamp, in UTC.
pub fn ymd_from_unix(secs: i64) -> Ymd {
    // Howard Hinnant's days-to-civil algorithm.
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y * 10_000 + m * 100 + d) as Ymd
}

/// Today, or the date of `SOURCE_DATE_EPOCH` when set (reproducible renders).
pub fn today() -> Ymd {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    ymd_from_unix(secs)
}

/// The serial in a zone file's SOA record: the third field after `SOA` (MNAME, RNAME, then serial),
/// with an optional `(` and comments skipped.
pub fn soa_serial(zone: &str) -> Option<u32> {
    let mut tokens = zone
        .lines()
        .map(|l| l.split(';').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace())
        .flat_map(|t| {
            // `(` may stick to a neighbour: `(2026010101`.
            t.split_inclusive('(')
                .flat_map(|p| p.split('(').filter(|s| !s.is_empty()))
                .collect::<Vec<_>>()
        });
    tokens.by_ref().find(|t| t.eq_ignore_ascii_case("SOA"))?;
    let mut fields = tokens.filter(|t| *t != "(");
    fields.next()?;
    fields.next()?;
    fields.next()?.parse().ok()
}

/// Replaces the SOA serial with a marker, so two zones can be compared on their records alone.
pub fn without_serial(zone: &str) -> Option<String> {
    let serial = soa_serial(zone)?.to_string();
    let soa = zone.find("SOA").or_else(|| zone.find("soa"))?;
    let at = soa + zone[soa..].find(&serial)?;
    Some(format!(
        "{}<serial>{}",
        &zone[..at],
        &zone[at + serial.len()..]
    ))
}

/// The serial a freshly rendered zone gets. `previous` is the zone file as it is now (on the host, or
/// in an earlier render), `records_equal` whether its records match the new ones.
pub fn next_serial(previous: Option<u32>, records_equal: bool, today: Ymd) -> u32 {
    let first_today = today.saturating_mul(100).saturating_add(1);
    match previous {
        Some(old) if records_equal => old,
        Some(old) => first_today.max(old.saturating_add(1)),
        None => first_today,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_timestamps() {
        assert_eq!(ymd_from_unix(0), 19_700_101);
        assert_eq!(ymd_from_unix(1_795_305_600), 20_261_122);
        assert_eq!(ymd_from_unix(951_782_400), 20_000_229);
    }

    #[test]
    fn serial_is_read_from_multi_line_soa() {
        let z = "$TTL 300\n@ IN SOA ns1.a.b. h.a.b. (\n  2026112203 ; serial\n 3600 900 1 2 )\n";
        assert_eq!(soa_serial(z), Some(2_026_112_203));
        assert_eq!(
            soa_serial("@ IN SOA ns1 h (2026112203 1 2 3 4)"),
            Some(2_026_112_203)
        );
        assert_eq!(soa_serial("@ IN NS ns1"), None);
    }

    #[test]
    fn serial_masking_keeps_everything_else() {
        let z = "@ IN SOA ns1 h ( 2026112203 ; serial\n1 2 3 4 )\nwww IN A 1.2.3.4\n";
        assert_eq!(
            without_serial(z).unwrap(),
            "@ IN SOA ns1 h ( <serial> ; serial\n1 2 3 4 )\nwww IN A 1.2.3.4\n"
        );
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
}
