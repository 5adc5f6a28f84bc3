//! `[dns]` (or `[sites.dns]`): a site's zone and its `[[dns.records]]`.

use super::{RECORD_TYPES, RELATIVE_NAME, TTL};
use crate::spec::reader::{Reader, Table};
use std::ops::Range;
use toml::Spanned;

#[derive(Debug)]
pub struct RawDns {
    pub span: Range<usize>,
    pub ttl: Option<Spanned<i64>>,
    pub soa_contact: Spanned<String>,
    pub nameservers: Vec<Spanned<String>>,
    pub records: Vec<RawRecord>,
}

#[derive(Debug)]
pub struct RawRecord {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub value: Spanned<String>,
    pub ttl: Option<Spanned<i64>>,
}

impl RawDns {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawDns> {
        let ttl = r.opt_int(&mut t, "ttl", TTL);
        let soa_contact = r.req_str(
            &mut t,
            "soa_contact",
            "an address like \"hostmaster@foobar.com\"",
        );
        let nameservers = r.opt_str_list(
            &mut t,
            "nameservers",
            "a name server's DNS name, like \"ns1.example.net\"",
        );
        let records = r.table_list(
            &mut t,
            "records",
            "[[dns.records]] tables with name, type and value",
        );
        let span = t.span.clone();
        r.finish(t);
        let records = records.map(|list| {
            list.into_iter()
                .map(|t| RawRecord::read(r, t))
                .collect::<Vec<_>>()
        });
        Some(RawDns {
            span,
            ttl: ttl?,
            soa_contact: soa_contact?,
            nameservers: nameservers?.map(|l| l.into_inner()).unwrap_or_default(),
            records: records?.into_iter().collect::<Option<_>>()?,
        })
    }
}

impl RawRecord {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawRecord> {
        let name = r.req_str(&mut t, "name", RELATIVE_NAME);
        let kind = r.req_str(&mut t, "type", RECORD_TYPES);
        let value = r.req_str(
            &mut t,
            "value",
            "the record's value in quotes, like \"203.0.113.10\" or \"10 mail\"",
        );
        let ttl = r.opt_int(&mut t, "ttl", TTL);
        r.finish(t);
        Some(RawRecord {
            name: name?,
            kind: kind?,
            value: value?,
            ttl: ttl?,
        })
    }
}
