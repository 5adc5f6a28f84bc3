//! BIND on the `dns` hosts: the site's zone (SOA, NS, the server names pointing at the web hosts or
//! the load balancer, the inventory's own records) and `named.conf.local`. The zone's serial is read
//! from the copy the host serves now and moves only when the records change.

use super::zone::{next_serial, Zone};
use super::{Component, Cx, Out};
use crate::desired::{Handler, HealthCheck};
use crate::render::RenderError;
use crate::spec::{RecordKind, Role, Site, Spec};
use serde_json::{json, Value};
use std::net::IpAddr;

pub struct Bind;
pub static BIND: Bind = Bind;

pub fn zone_path(site: &Site) -> String {
    format!("/etc/bind/db.{}", site.domain)
}

/// Where the site's names point: the floating address of two load balancers, the load balancer
/// when there is one, else every web host that serves the site.
fn www_targets(spec: &Spec, site: &Site) -> Vec<IpAddr> {
    if let Some(lb) = &spec.lb {
        return vec![lb.floating_address];
    }
    match spec.hosts_with(Role::Lb).next() {
        Some(lb) => vec![lb.public_address],
        None => spec.hosts_of(site).map(|w| w.public_address).collect(),
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
        out.package("bind9-dnsutils");
        out.service("named", "bind9", "/run/named/named.pid", "named");
        let mut zones = Vec::new();
        let mut checks = Vec::new();
        for site in &cx.spec.sites {
            let (path, zone) = self.zone(cx, site)?;
            out.scope(Handler::reload("named"), "bind")
                .file(&path, zone)
                .owned("root", "bind")
                .from_previous();
            checks.push(format!(
                "named-checkzone -q {} {{root}}{path}",
                site.domain.as_str()
            ));
            zones.push(json!({ "domain": site.domain.as_str(), "zone_file": path }));
            out.check(HealthCheck::Dns {
                server: cx.host.ssh.address.clone(),
                name: site.fqdns()[0].clone(),
                expect: www_targets(cx.spec, site)
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
            });
        }
        let mut files = out.scope(Handler::reload("named"), "bind");
        files
            .file(
                "/etc/bind/named.conf.local",
                cx.render("bind/named.conf.local", &[("zones", zones.into())])?,
            )
            .owned("root", "bind");
        files
            .file(
                "/etc/bind/named.conf.options",
                cx.render("bind/named.conf.options", &[])?,
            )
            .owned("root", "bind");
        // The options on their own (their directory is the host's /var/cache/bind); then -t reads
        // the zones config and the zones it names from the staged tree, as a chrooted named would.
        out.validator(
            "bind",
            format!(
                "named-checkconf {{root}}/etc/bind/named.conf.options && named-checkconf -z -t {{root}} /etc/bind/named.conf.local && {}",
                checks.join(" && ")
            ),
            &["/etc/bind"],
        );
        Ok(())
    }
}

impl Bind {
    /// One site's zone file: its path and content. The serial moves only when the records change.
    fn zone(&self, cx: &Cx, site: &Site) -> Result<(String, String), RenderError> {
        let spec = cx.spec;
        let domain = site.domain.as_str();
        let mut nameservers = Vec::new();
        let mut records = Vec::new();
        for (i, ns) in spec.hosts_with(Role::Dns).enumerate() {
            let label = format!("ns{}", i + 1);
            nameservers.push(format!("{label}.{domain}."));
            records.push(address_record(&label, ns.public_address));
        }
        nameservers.extend(site.dns.nameservers.iter().map(|n| format!("{n}.")));
        let targets = www_targets(spec, site);
        for name in &site.server_names {
            for a in &targets {
                records.push(address_record(name, *a));
            }
        }
        for r in &site.dns.records {
            records.push(json!({ "name": r.name, "kind": format!("{:?}", r.kind), "value": r.value, "ttl": r.ttl.unwrap_or(0) }));
        }
        let path = zone_path(site);
        let mut dns = json!({
            "ttl": site.dns.ttl,
            "soa_contact": site.dns.soa_contact,
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
            Some(z) => z.same_records(&Zone::parse(&cx.render_for(
                site,
                "bind/zone.db",
                &[("dns", dns.clone())],
            )?)),
            None => false,
        };
        dns["serial"] = json!(next_serial(old_serial, same, cx.opts.today));
        let zone = cx.render_for(site, "bind/zone.db", &[("dns", dns)])?;
        Ok((path, zone))
    }
}
