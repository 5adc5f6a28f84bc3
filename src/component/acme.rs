//! Certificates from an ACME CA (`tls = { acme = { ... } }`), asked for and renewed on the web host
//! that ends the site's TLS, by the host's own `provision-acme` (templates/acme) with Debian's lego.
//! lego over certbot: one static binary with no plugins to install, HTTP-01 from a webroot and
//! DNS-01 through RFC 2136 (or its exec hook) in the same client, EC keys, and Debian 12's lego
//! 4.9.1 is proven against Debian's pebble (tests/it/acme.rs).
//!
//! provision writes the script, one configuration per site, the timer (or cron line) and the
//! HTTP-01 location of the site's port-80 vhost; the account key, the certificate keys and the
//! certificates are the host's (mode 0600, never in provision's generations or output), so a
//! rollback never puts an older certificate back. An apply never waits on the CA: before the
//! server reads its new configuration, `provision-acme ensure` serves the issued certificate or a
//! self-signed placeholder, and `provision-acme start` asks the CA once the apply has ended; the
//! certificate then goes live with a reload of that server alone. The staged tree the validators
//! read gets a placeholder too (`provision-acme stage`), since the live file is not provision's.

use super::{Component, Cx, Need, Out, Report};
use crate::acme::{CertStatus, Outcome, Serving};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::secret::SecretKey;
use crate::spec::{Acme as AcmeSpec, Challenge, Role, Site, TlsCert};
use serde_json::json;

pub struct Acme;
pub static ACME: Acme = Acme;

pub const SCRIPT: &str = "/usr/local/sbin/provision-acme";
const CONF_DIR: &str = "/etc/provision/acme";
const TIMER: &str = "provision-acme.timer";
const SCHEDULE_STEP: &str = "acme-schedule";

/// The step that gives the site's server a certificate now and asks the CA once the apply ends.
fn step(site: &Site) -> String {
    format!("acme-{}", site.domain)
}

/// A site of this host whose certificate comes from an ACME CA and ends here.
struct Ours<'a> {
    site: &'a Site,
    acme: &'a AcmeSpec,
    /// The config directory and service of the server that reads the certificate.
    dir: &'static str,
    service: &'static str,
}

/// The sites of this host whose certificate comes from an ACME CA and ends here: on a load
/// balancer every site whose TLS ends on the balancers (each balancer asks for its own
/// certificate, over DNS-01, so either can hold the floating address), on a web host the sites
/// it serves whose TLS ends there.
fn sites<'a>(cx: &Cx<'a>) -> Vec<Ours<'a>> {
    let acme = |s: &'a Site| match s.tls.as_ref().map(|t| &t.cert) {
        Some(TlsCert::Acme(a)) => Some((s, a)),
        _ => None,
    };
    if cx.host.has(Role::Lb) {
        return cx
            .spec
            .sites
            .iter()
            .filter(|s| super::tls::on_lb(cx.spec, s))
            .filter_map(acme)
            .map(|(site, acme)| Ours {
                site,
                acme,
                dir: "/etc/haproxy",
                service: "haproxy",
            })
            .collect();
    }
    cx.spec
        .sites_on(cx.host)
        .filter_map(acme)
        .filter_map(|(site, acme)| {
            let (dir, service) = super::tls::web_server(cx.spec, site)?;
            Some(Ours {
                site,
                acme,
                dir,
                service,
            })
        })
        .collect()
}

/// The minute of the hour cron starts the hourly look (spread by the host's name, so that hosts
/// provisioned alike do not ask the CA at the same moment; the script sleeps a random while more).
fn minute(host: &str) -> u32 {
    let digest = crate::render::manifest::sha256_hex(host.as_bytes());
    u32::from_str_radix(&digest[..8], 16).unwrap_or(0) % 60
}

impl Component for Acme {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let ours = sites(cx);
        if ours.is_empty() {
            return Ok(());
        }
        for p in ["lego", "openssl", "cron"] {
            out.package(p);
        }
        if ours.iter().any(|o| o.acme.challenge == Challenge::Dns01) {
            // nsupdate and dig, for the challenge records.
            out.package("bind9-dnsutils");
        }
        out.file(SCRIPT, cx.render("acme/provision-acme", &[])?)
            .mode(0o755)
            .checked_by("acme");
        let schedule = Handler::run(SCHEDULE_STEP);
        for unit in ["provision-acme.service", "provision-acme.timer"] {
            out.file(
                format!("/etc/systemd/system/{unit}"),
                cx.render(&format!("acme/{unit}"), &[])?,
            )
            .notify(schedule.clone());
        }
        let cron = json!({ "minute": minute(&cx.host.name) });
        out.file(
            "/etc/cron.d/provision-acme",
            cx.render("acme/cron", &[("acme", cron)])?,
        )
        .notify(schedule);
        out.step(SCHEDULE_STEP, super::schedule::enable(TIMER), None);
        // Before the web servers' validators (this component comes first): their staged
        // configuration names certificate files only provision-acme makes.
        out.validator("acme", format!("sh {{root}}{SCRIPT} stage {{root}}"), &[]);
        for o in &ours {
            site_files(cx, o, out)?;
        }
        Ok(())
    }

    fn probe(&self, cx: &Cx) -> Option<String> {
        if sites(cx).is_empty() {
            return None;
        }
        Some(format!(
            "echo \"schedule $({})\"; echo \"now $(date +%s)\"; [ ! -x {SCRIPT} ] || {SCRIPT} status",
            super::schedule::probe(TIMER)
        ))
    }

    fn needs(&self, cx: &Cx, lines: &[String]) -> Vec<Need> {
        let ours = sites(cx);
        if ours.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if !lines.iter().any(|l| l == "schedule active") {
            out.push(Need {
                handler: Handler::run(SCHEDULE_STEP),
                reason: "certificate renewal is not scheduled (its timer, or cron, is not running)"
                    .into(),
            });
        }
        let status = CertStatus::parse_all(lines);
        for Ours { site, .. } in ours {
            let domain = site.domain.as_str();
            let why = match status.iter().find(|s| s.site == domain) {
                None => "provision-acme has no state for it".to_string(),
                Some(s) if s.serving == Serving::Missing => "no certificate file".to_string(),
                // Never issued and the last try failed: an apply asks again at once (the timer
                // would wait for the backoff), as a user running it expects.
                Some(s) if s.serving == Serving::Placeholder && s.outcome == Outcome::Failed => {
                    format!("the CA gave none yet ({})", s.error)
                }
                Some(_) => continue,
            };
            out.push(Need {
                handler: Handler::run(&step(site)),
                reason: format!(
                    "the certificate of {domain}: {why} (a placeholder serves until the CA's)"
                ),
            });
        }
        out
    }

    fn notices(&self, cx: &Cx, lines: &[String]) -> Vec<String> {
        let now = now_of(lines);
        let ours = sites(cx);
        CertStatus::parse_all(lines)
            .iter()
            .filter(|s| ours.iter().any(|o| o.site.domain.as_str() == s.site))
            .filter_map(|s| s.attention(now))
            .map(|a| format!("certificate of {a}"))
            .collect()
    }

    fn report(&self, cx: &Cx, lines: &[String]) -> Vec<Report> {
        let now = now_of(lines);
        let status = CertStatus::parse_all(lines);
        sites(cx)
            .iter()
            .map(|Ours { site, .. }| {
                let domain = site.domain.as_str();
                match status.iter().find(|s| s.site == domain) {
                    Some(s) => s.report(now),
                    None => Report {
                        ok: false,
                        text: format!("certificate of {domain}: provision-acme has no state for it (not applied yet?)"),
                    },
                }
            })
            .collect()
    }
}

/// A site's configuration for provision-acme (and its TSIG key and CA roots where it has them),
/// and the step that serves a certificate now and asks the CA once the apply has ended.
fn site_files(cx: &Cx, o: &Ours, out: &mut Out) -> Result<(), RenderError> {
    let Ours {
        site,
        acme: a,
        dir,
        service,
    } = *o;
    let domain = site.domain.as_str();
    let ca_bundle = a
        .ca_bundle
        .as_ref()
        .map(|_| format!("{CONF_DIR}/{domain}.directory-ca.pem"));
    let tsig = format!("{CONF_DIR}/{domain}.tsig");
    let mut values = json!({
        "site": domain,
        "names": a.names,
        "directory": a.directory,
        "contact": a.contact,
        "challenge": a.challenge.name(),
        "webroot": super::tls::acme_webroot(site),
        "deploy": format!("{dir}/{}", super::tls::acme_file(site)),
        "service": service,
        // Where there is no systemd, HAProxy reloads as provision reloads it (keeping its sockets).
        "plain_reload": if service == "haproxy" { super::haproxy::PLAIN_RELOAD } else { "" },
        "ca_bundle": ca_bundle,
    });
    let run = Handler::run(&step(site));
    if a.challenge == Challenge::Dns01 {
        let zones = crate::acme::ChallengeZone::new(domain, &a.names)
            .map(|z| z.zones)
            .unwrap_or_default();
        values["dns_zones"] = json!(zones);
        values["dns_servers"] = json!(cx
            .spec
            .hosts_with(Role::Dns)
            .map(|h| h.public_address.to_string())
            .collect::<Vec<_>>());
        values["tsig_key"] = json!(tsig);
        out.file(&tsig, tsig_key_file(cx, site)?)
            .mode(0o600)
            .sensitive()
            .notify(run.clone());
    }
    out.file(
        format!("{CONF_DIR}/{domain}.conf"),
        cx.render("acme/site.conf", &[("acme", values)])?,
    )
    .notify(run.clone())
    .checked_by("acme");
    if let (Some(path), Some(pem)) = (ca_bundle, &a.ca_bundle) {
        out.file(path, pem.clone()).notify(run);
    }
    out.step(
        &step(site),
        format!("{SCRIPT} ensure {domain} && {SCRIPT} start {domain}"),
        None,
    );
    Ok(())
}

/// The TSIG key file of a DNS-01 site (its secret masked unless secrets are revealed), as named
/// and nsupdate read it.
pub(super) fn tsig_key_file(cx: &Cx, site: &Site) -> Result<String, RenderError> {
    let domain = site.domain.as_str();
    match cx
        .opts
        .secret(&cx.spec.secrets, SecretKey::AcmeTsig(site.at))
    {
        Some(secret) => Ok(crate::acme::tsig_key_file(domain, &secret)),
        None => Err(RenderError::Template {
            host: cx.host.name.clone(),
            message: format!("the DNS-01 site {domain} has no TSIG key registered (a bug)"),
        }),
    }
}

/// The host's clock, as the probe read it (`now` line).
fn now_of(lines: &[String]) -> i64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("now "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}
