//! BIND on the `dns` hosts: the site's zone (SOA, NS, the server names pointing at the web hosts or
//! the load balancer, the inventory's own records) and `named.conf.local`. The zone's serial is read
//! from the copy the host serves now and moves only when the records change.

use super::zone::{next_serial, Zone};
use super::{Component, Cx, Out};
use crate::desired::{Handler, HealthCheck};
use crate::render::RenderError;
use crate::spec::{RecordKind, Role, Spec};
use serde_json::{json, Value};
use std::net::IpAddr;

pub struct Bind;
pub static BIND: Bind = Bind;

pub fn zone_path(spec: &Spec) -> String {
    format!("/etc/bind/db.{}", spec.site.domain)
}

/// Where the site's names point: the floating address of two load balancers, the load balancer
/// when there is one, else every web host.
fn www_targets(spec: &Spec) -> Vec<IpAddr> {
    if let Some(lb) = &spec.lb {
        return vec![lb.floating_address];
    }
    match spec.hosts_with(Role::Lb).next() {
        Some(lb) => vec![lb.public_address],
        None => spec
            .hosts_with(Role::Web)
            .map(|w| w.public_address)
            .collect(),
    }
}

fn address_record(name: &str, a: IpAddr) -> Value {
    let kind = if a.is_ipv4() {
        RecordKind::A
    } else {
        RecordKind::AAAA
    };
    json!({ "name": name, "kind": format!("{kind:?}"), "value": a.to_string(), "ttl": 0 })
}

impl Component for Bind {
    fn name(&self) -> &'static str {
        "bind"
    }
    fn domain_limit(&self) -> Option<super::DomainLimit> {
        Some(super::DomainLimit {
            max: super::NAME_MAX - "db.".len(),
            why: format!(
                "the zone file is named db.<domain>, which must fit in a file name ({} bytes)",
                super::NAME_MAX
            ),
        })
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let spec = cx.spec;
        let domain = spec.site.domain.as_str();
        let mut nameservers = Vec::new();
        let mut records = Vec::new();
        for (i, ns) in spec.hosts_with(Role::Dns).enumerate() {
            let label = format!("ns{}", i + 1);
            nameservers.push(format!("{label}.{domain}."));
            records.push(address_record(&label, ns.public_address));
        }
        nameservers.extend(spec.dns.nameservers.iter().map(|n| format!("{n}.")));
        let targets = www_targets(spec);
        for name in &spec.site.server_names {
            for a in &targets {
                records.push(address_record(name, *a));
            }
        }
        for r in &spec.dns.records {
            records.push(json!({ "name": r.name, "kind": format!("{:?}", r.kind), "value": r.value, "ttl": r.ttl.unwrap_or(0) }));
        }
        let path = zone_path(spec);
        let mut dns = json!({
            "ttl": spec.dns.ttl,
            "soa_contact": spec.dns.soa_contact,
            "primary_ns": nameservers.first().cloned().unwrap_or_default(),
            "nameservers": nameservers,
            "records": records,
            "zone_file": path,
            "serial": 0,
        });
        let previous = cx
            .now
            .file(&path)
            .map(|b| Zone::parse(&String::from_utf8_lossy(&b)));
        let old_serial = previous.as_ref().and_then(|z| z.serial);
        // The records as rendered are compared only with a zone the host has: without one (the
        // first render of every candidate release, a new host) the zone is rendered once. With
        // 100 name servers the zone was most of a host's render.
        let same = match &previous {
            Some(z) => z.same_records(&Zone::parse(
                &cx.render("bind/zone.db", &[("dns", dns.clone())])?,
            )),
            None => false,
        };
        dns["serial"] = json!(next_serial(old_serial, same, cx.opts.today));
        let zone = cx.render("bind/zone.db", &[("dns", dns.clone())])?;

        out.package("bind9-dnsutils");
        out.service("named", "bind9", "/run/named/named.pid", "named");
        let mut files = out.scope(Handler::reload("named"), "bind");
        files
            .file(&path, zone)
            .owned("root", "bind")
            .from_previous();
        files
            .file(
                "/etc/bind/named.conf.local",
                cx.render("bind/named.conf.local", &[("dns", dns)])?,
            )
            .owned("root", "bind");
        files
            .file(
                "/etc/bind/named.conf.options",
                cx.render("bind/named.conf.options", &[])?,
            )
            .owned("root", "bind");
        // The options on their own (their directory is the host's /var/cache/bind); then -t reads
        // the zones config and the zone it names from the staged tree, as a chrooted named would.
        out.validator(
            "bind",
            format!(
                "named-checkconf {{root}}/etc/bind/named.conf.options && named-checkconf -z -t {{root}} /etc/bind/named.conf.local && named-checkzone -q {domain} {{root}}{path}"
            ),
            &["/etc/bind"],
        );
        out.check(HealthCheck::Dns {
            server: cx.host.ssh.address.clone(),
            name: spec.site.fqdns()[0].clone(),
            expect: targets.iter().map(|a| a.to_string()).collect(),
        });
        Ok(())
    }
}
