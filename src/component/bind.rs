//! BIND on the `dns` hosts: the site's zone (SOA, NS, the server names pointing at the web hosts or
//! the load balancer, the inventory's own records) and `named.conf.local`. The zone's serial is read
//! from the copy the host serves now and moves only when the records change.

use super::zone::{next_serial, Zone};
use super::{Component, Cx, Out};
use crate::acme::ChallengeZone;
use crate::desired::{Handler, HealthCheck};
use crate::quote::shell_word;
use crate::render::RenderError;
use crate::spec::{Challenge, RecordKind, Role, Site, Spec, TlsCert};
use serde_json::{json, Value};
use std::net::IpAddr;

pub struct Bind;
pub static BIND: Bind = Bind;

pub fn zone_path(site: &Site) -> String {
    format!("/etc/bind/db.{}", site.domain)
}

/// The DNS-01 challenge zone of a site whose certificate is asked for that way.
fn challenge_zone(site: &Site) -> Option<ChallengeZone> {
    match site.tls.as_ref().map(|t| &t.cert) {
        Some(TlsCert::Acme(a)) if a.challenge == Challenge::Dns01 => {
            // validate refused names outside the domain.
            ChallengeZone::new(site.domain.as_str(), &a.names).ok()
        }
        _ => None,
    }
}

/// The name servers of the site's zone, as the zone names them (`ns1.<domain>.`, ..., then the
/// inventory's outside ones), and the address records of provision's own.
fn nameservers(spec: &Spec, site: &Site) -> (Vec<String>, Vec<Value>) {
    let domain = site.domain.as_str();
    let mut names = Vec::new();
    let mut records = Vec::new();
    for (i, ns) in spec.hosts_with(Role::Dns).enumerate() {
        let label = format!("ns{}", i + 1);
        names.push(format!("{label}.{domain}."));
        records.push(address_record(&label, ns.public_address));
    }
    names.extend(site.dns.nameservers.iter().map(|n| format!("{n}.")));
    (names, records)
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
        for site in &cx.spec.sites {
            let (path, zone) = self.zone(cx, site)?;
            out.scope(Handler::reload("named"), "bind")
                .file(&path, zone)
                .owned("root", "bind")
                .from_previous();
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
        let acme = self.challenge_zones(cx, out)?;
        let mut files = out.scope(Handler::reload("named"), "bind");
        files
            .file(
                "/etc/bind/named.conf.local",
                cx.render(
                    "bind/named.conf.local",
                    &[("zones", zones.into()), ("acme", acme.into())],
                )?,
            )
            .owned("root", "bind");
        files
            .file(
                "/etc/bind/named.conf.options",
                cx.render("bind/named.conf.options", &[])?,
            )
            .owned("root", "bind");
        // The options on their own (their directory is the host's /var/cache/bind); then -t reads
        // the zones config and -z loads every zone it names from the staged tree, as a chrooted
        // named would, with named's own checks (a zone that does not load fails it): one process
        // for fifty zones where a named-checkzone each took one per zone.
        out.validator(
            "bind",
            "named-checkconf {root}/etc/bind/named.conf.options && named-checkconf -z -t {root} /etc/bind/named.conf.local",
            &["/etc/bind"],
        );
        Ok(())
    }
}

impl Bind {
    /// The DNS-01 challenge zones (issue 24): for each site that asks, its TSIG key, a zone for
    /// each challenge name (written once, then named's: dynamic updates) and `named.conf.acme`,
    /// where the key may change the TXT records at their apexes and nothing else. Whether any.
    fn challenge_zones(&self, cx: &Cx, out: &mut Out) -> Result<bool, RenderError> {
        let mut keys = Vec::new();
        let mut zones = Vec::new();
        for site in &cx.spec.sites {
            let Some(cz) = challenge_zone(site) else {
                continue;
            };
            let domain = site.domain.as_str();
            let key_file = format!("/etc/bind/provision-acme-{domain}.key");
            out.scope(Handler::reload("named"), "bind")
                .file(&key_file, super::acme::tsig_key_file(cx, site)?)
                .owned("root", "bind")
                .mode(0o640)
                .sensitive();
            keys.push(key_file);
            // Only provision's own name servers serve the challenge zones.
            let (mut nameservers, _) = nameservers(cx.spec, site);
            nameservers.truncate(cx.spec.hosts_with(Role::Dns).count());
            for zone in &cz.zones {
                let file = format!("/var/lib/bind/db.{zone}");
                let text = cx.render(
                    "acme/challenge-zone.db",
                    &[(
                        "zone",
                        json!({
                            "site": domain,
                            "zone": zone,
                            "primary_ns": nameservers.first().cloned().unwrap_or_default(),
                            "soa_contact": site.dns.soa_contact,
                            "nameservers": nameservers,
                        }),
                    )],
                )?;
                // named writes the zone (and its journal) from then on: made once, never
                // rewritten.
                out.made(
                    &file,
                    format!("printf '%s' {} > \"$OUT\"", shell_word(&text)),
                    format!("the challenge zone {zone}, then named's"),
                )
                .owned("bind", "bind")
                .notify(Handler::reload("named"))
                .checked_by("bind");
                zones.push(json!({
                    "zone": zone,
                    "file": file,
                    "key": crate::acme::tsig_key_name(domain),
                }));
            }
        }
        if zones.is_empty() {
            return Ok(false);
        }
        out.scope(Handler::reload("named"), "bind")
            .file(
                "/etc/bind/named.conf.acme",
                cx.render(
                    "acme/named.conf.acme",
                    &[("acme", json!({ "keys": keys, "zones": zones }))],
                )?,
            )
            .owned("root", "bind");
        Ok(true)
    }

    /// One site's zone file: its path and content. The serial moves only when the records change.
    fn zone(&self, cx: &Cx, site: &Site) -> Result<(String, String), RenderError> {
        let spec = cx.spec;
        let (nameservers, mut records) = nameservers(spec, site);
        let targets = www_targets(spec, site);
        for name in &site.server_names {
            for a in &targets {
                records.push(address_record(name, *a));
            }
        }
        for r in &site.dns.records {
            records.push(json!({ "name": r.name, "kind": format!("{:?}", r.kind), "value": r.value, "ttl": r.ttl.unwrap_or(0) }));
        }
        // DNS-01: each challenge name delegated to its own zone on these same name servers.
        if let Some(cz) = challenge_zone(site) {
            let own = spec.hosts_with(Role::Dns).count();
            for owner in &cz.owners {
                for ns in &nameservers[..own] {
                    records.push(json!({ "name": owner, "kind": "NS", "value": ns, "ttl": 0 }));
                }
            }
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
