//! DNS zone files: their records, read back from text, and the SOA serial (`YYYYMMDDnn`). The serial
//! moves only when the zone's records change, and always above the serial the host already has, so
//! secondaries and caches see every real change and no other. Zones are compared record by record
//! (owner, TTL, class, type, data; the serial left out), never by masking text.

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

/// One record or directive of a zone, normalised for comparison: names and types lower-cased, the
/// owner filled in where the line left it blank, the SOA serial taken out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub owner: String,
    pub fields: Vec<String>,
}

/// A zone's records, and its SOA serial when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub entries: Vec<Entry>,
    pub serial: Option<u32>,
}

impl Zone {
    pub fn parse(text: &str) -> Zone {
        let mut entries = Vec::new();
        let mut serial = None;
        let mut owner = String::new();
        for (blank_owner, tokens) in logical_lines(text) {
            let Some(first) = tokens.first() else {
                continue;
            };
            if first.starts_with('$') {
                entries.push(Entry {
                    owner: String::new(),
                    fields: tokens.iter().map(|t| t.to_ascii_lowercase()).collect(),
                });
                continue;
            }
            let mut rest: &[String] = &tokens;
            if !blank_owner {
                owner = first.to_ascii_lowercase();
                rest = &tokens[1..];
            }
            let mut fields: Vec<String> = rest.to_vec();
            // Type, class and names are case-insensitive; quoted data is not.
            for f in fields.iter_mut() {
                if !f.starts_with('"') {
                    *f = f.to_ascii_lowercase();
                }
            }
            if let Some(i) = fields.iter().position(|f| f == "soa") {
                if let Some(s) = fields.get(i + 3) {
                    serial = s.parse().ok();
                    fields[i + 3] = String::new();
                }
            }
            entries.push(Entry {
                owner: owner.clone(),
                fields,
            });
        }
        entries.sort();
        Zone { entries, serial }
    }

    /// Same records, whatever the serial, the comments, the spacing or the order.
    pub fn same_records(&self, other: &Zone) -> bool {
        self.entries == other.entries
    }
}

/// The zone's lines with comments removed and parenthesised continuations joined; each as (owner
/// left blank, tokens). Quoted strings are one token, quotes kept.
fn logical_lines(text: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut blank_owner = false;
    let mut depth = 0usize;
    let mut started = false;
    for line in text.lines() {
        if depth == 0 {
            if started && !tokens.is_empty() {
                out.push((blank_owner, std::mem::take(&mut tokens)));
            }
            tokens.clear();
            blank_owner = line.starts_with([' ', '\t']);
            started = true;
        }
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            if quoted {
                cur.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' {
                    quoted = false;
                }
                continue;
            }
            match c {
                ';' => break,
                '"' => {
                    quoted = true;
                    cur.push(c);
                }
                '(' | ')' => {
                    if !cur.is_empty() {
                        tokens.push(std::mem::take(&mut cur));
                    }
                    if c == '(' {
                        depth += 1;
                    } else {
                        depth = depth.saturating_sub(1);
                    }
                }
                c if c.is_whitespace() => {
                    if !cur.is_empty() {
                        tokens.push(std::mem::take(&mut cur));
                    }
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            tokens.push(cur);
        }
    }
    if !tokens.is_empty() {
        out.push((blank_owner, tokens));
    }
    out
}

/// The serial a freshly rendered zone gets. `previous` is the zone as it is now (on the host, or in
/// an earlier render), `records_equal` whether its records match the new ones.
pub fn next_serial(previous: Option<u32>, records_equal: bool, today: Ymd) -> u32 {
    let first_today = today.saturating_mul(100).saturating_add(1);
    match previous {
        Some(old) if records_equal => old,
        Some(old) => first_today.max(old.saturating_add(1)),
        None => first_today,
    }
}

#[cfg(test)]
mod tests;
