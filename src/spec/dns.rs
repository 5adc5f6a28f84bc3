//! `[dns]`: the zone's settings and records.

use super::check::Checker;
use super::{Dns, Record, RecordKind};
use crate::inventory::{RawDns, RawRecord, RECORD_TYPES, TTL};
use crate::names::*;

impl Checker<'_> {
    pub(super) fn dns(&mut self, d: &RawDns, domain: Option<&DomainName>) -> Option<Dns> {
        let ttl = match &d.ttl {
            Some(t) => self.int(t, "dns.ttl", TTL).map(|t| t as u32),
            None => Some(3600),
        };
        let soa_contact = self.check(&d.soa_contact, "dns.soa_contact", parse_soa_contact);
        let mut nameservers = Vec::new();
        for (i, n) in d.nameservers.iter().enumerate() {
            if let Some(v) = self.check(n, &format!("dns.nameservers[{i}]"), |v| {
                let d = DomainName::parse(v)?;
                if d.as_str().contains('.') {
                    Ok(d)
                } else {
                    Err("a fully qualified name server name like ns1.example.net".into())
                }
            }) {
                nameservers.push(v);
            }
        }
        let mut records = Vec::new();
        let mut ok = true;
        for (i, r) in d.records.iter().enumerate() {
            match self.record(r, i, domain) {
                Some(rec) => records.push(rec),
                None => ok = false,
            }
        }
        Some(Dns {
            ttl: ttl?,
            soa_contact: soa_contact?,
            nameservers,
            records: ok.then_some(records)?,
        })
    }

    fn record(&mut self, r: &RawRecord, i: usize, domain: Option<&DomainName>) -> Option<Record> {
        let key = |f: &str| format!("dns.records[{i}].{f}");
        let name = self.check(&r.name, &key("name"), parse_relative_name);
        let kind = self.check(&r.kind, &key("type"), |v| {
            Ok(match v.to_ascii_uppercase().as_str() {
                "A" => RecordKind::A,
                "AAAA" => RecordKind::AAAA,
                "CNAME" => RecordKind::CNAME,
                "MX" => RecordKind::MX,
                "TXT" => RecordKind::TXT,
                "NS" => RecordKind::NS,
                _ => return Err(RECORD_TYPES.into()),
            })
        })?;
        let ttl = match &r.ttl {
            Some(t) => Some(self.int(t, &key("ttl"), TTL)? as u32),
            None => None,
        };
        let target = |v: &str| -> Result<String, String> {
            // A name ending in '.' is absolute; anything else is relative to the zone, as in a zone file.
            if let Some(abs) = v.strip_suffix('.') {
                DomainName::parse(abs).map(|d| format!("{d}."))
            } else {
                parse_relative_name(v).map(|n| {
                    if n == "@" {
                        domain.map(|d| format!("{d}.")).unwrap_or(n)
                    } else {
                        n
                    }
                })
            }
        };
        let value = self.check(&r.value, &key("value"), |v| match kind {
            RecordKind::A => v
                .parse::<std::net::Ipv4Addr>()
                .map(|a| a.to_string())
                .map_err(|_| "an IPv4 address for an A record".into()),
            RecordKind::AAAA => v
                .parse::<std::net::Ipv6Addr>()
                .map(|a| a.to_string())
                .map_err(|_| "an IPv6 address for an AAAA record".into()),
            RecordKind::CNAME | RecordKind::NS => target(v),
            RecordKind::MX => {
                let (prio, host) = v
                    .split_once(' ')
                    .ok_or("\"PRIORITY NAME\", like \"10 mail\"")?;
                let prio: u16 = prio
                    .parse()
                    .map_err(|_| "\"PRIORITY NAME\" with PRIORITY from 0 to 65535".to_string())?;
                Ok(format!("{prio} {}", target(host.trim())?))
            }
            RecordKind::TXT => {
                if v.is_empty() || v.len() > 255 || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    Err("1 to 255 printable ASCII characters".into())
                } else {
                    Ok(format!(
                        "\"{}\"",
                        v.replace('\\', "\\\\").replace('"', "\\\"")
                    ))
                }
            }
        });
        Some(Record {
            name: name?,
            kind,
            value: value?,
            ttl,
        })
    }
}
