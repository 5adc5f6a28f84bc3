//! `[dns]`: the zone's settings and records, then the zone as a whole: the records the inventory
//! lists together with those render generates (the site's names, `ns1`, `ns2`, ... for the hosts
//! with the `dns` role), so a CNAME that BIND would refuse fails at validate.

use super::check::Checker;
use super::{Dns, Host, Record, RecordKind, Role, Site};
use crate::error::shown;
use crate::inventory::{RawDns, RawRecord, RawSiteDef, RECORD_TYPES, TTL};
use crate::names::*;
use std::collections::BTreeMap;

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
        let name = self.check(&r.name, &key("name"), |v| {
            let name = parse_relative_name(v)?;
            fqdn_fits(&name, domain)?;
            Ok(name)
        });
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
        let target = |v: &str| -> Result<String, crate::error::Allowed> {
            // A name ending in '.' is absolute; anything else is relative to the zone, as in a zone file.
            if let Some(abs) = v.strip_suffix('.') {
                DomainName::parse(abs).map(|d| format!("{d}."))
            } else {
                let n = parse_relative_name(v)?;
                fqdn_fits(&n, domain)?;
                Ok(if n == "@" {
                    domain.map(|d| format!("{d}.")).unwrap_or(n)
                } else {
                    n
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

    /// Zone-wide rules. A CNAME makes its name an alias, so nothing else may live at that name
    /// (RFC 1034 3.6.2), and the zone's apex always has its SOA and NS records.
    pub(super) fn zone(&mut self, raw: &RawSiteDef, site: &Site, hosts: &[Host]) {
        let dns = &site.dns;
        // Each name in the zone, with what render puts there: (description, record index if any).
        let mut owners: BTreeMap<String, Vec<(String, Option<usize>)>> = BTreeMap::new();
        let mut at = |name: &str, what: String, record: Option<usize>| {
            owners
                .entry(name.to_string())
                .or_default()
                .push((what, record));
        };
        for (i, n) in site.server_names.iter().enumerate() {
            let from = match raw.site.server_names {
                Some(_) => format!("site.server_names[{i}]"),
                None => "site.server_names (by default \"www\")".into(),
            };
            at(n, format!("the address records of {from}"), None);
        }
        for (j, (i, _)) in hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.has(Role::Dns))
            .enumerate()
        {
            let label = format!("ns{}", j + 1);
            at(
                &label,
                format!(
                    "the address record of name server {label} (hosts[{i}] has the \"dns\" role)"
                ),
                None,
            );
        }
        for (i, r) in dns.records.iter().enumerate() {
            at(
                &r.name,
                format!("the {:?} record dns.records[{i}]", r.kind),
                Some(i),
            );
        }
        for (i, r) in dns.records.iter().enumerate() {
            if r.kind != RecordKind::CNAME {
                continue;
            }
            let key = format!("dns.records[{i}].name");
            let span = raw.dns.records[i].name.span();
            if r.name == "@" {
                self.fail(span, &key, "found a CNAME at \"@\", the domain itself, which has the zone's SOA and NS records; allowed: a CNAME on a name below the domain, like \"shop\" (use A or AAAA records for the domain itself)".into());
                continue;
            }
            let others: Vec<&String> = owners[&r.name]
                .iter()
                .filter(|(_, rec)| *rec != Some(i))
                .map(|(what, _)| what)
                .collect();
            if let Some(first) = others.first() {
                let more = match others.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                };
                self.fail(span, &key, format!(
                    "found a CNAME on {}, which also has {first}{more}; allowed: a CNAME on a name with no other record, as a CNAME makes the name an alias",
                    shown(&r.name)
                ));
            }
        }
    }
}
