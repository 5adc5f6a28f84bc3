//! HAProxy on the `lb` hosts: balances port 80 over every web host, with an HTTP health check that
//! sends the site's Host header. Through its runtime API (the admin socket, with `socat`) it takes
//! a web host out of service while apply changes it: drained, then back, or kept out if its change
//! failed. Its own reloads are seamless: the new process takes the listening sockets over from the
//! old one (`expose-fd listeners`), and requests a backend drops are dispatched again.

use super::{Component, Cx, Out};
use crate::desired::{Handler, HealthCheck};
use crate::health::CheckFailed;
use crate::render::RenderError;
use crate::spec::{Role, Site, Spec};
use crate::transport::Output;
use serde_json::json;
use std::net::IpAddr;

/// How HAProxy reloads where there is no systemd (see `render`).
pub const PLAIN_RELOAD: &str = "haproxy -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -D -x /run/haproxy/admin.sock -sf $(cat /run/haproxy.pid)";

pub struct Haproxy;
pub static HAPROXY: Haproxy = Haproxy;

impl Component for Haproxy {
    fn name(&self) -> &'static str {
        "haproxy"
    }

    fn domain_limit(&self) -> Option<super::DomainLimit> {
        Some(super::DomainLimit::file(
            "the self-signed certificate HAProxy reads",
            super::tls::FILE_SUFFIX,
        ))
    }

    fn after(&self) -> &'static [&'static str] {
        // The balancer goes live after the backends it sends traffic to.
        &["nginx", "apache", "app"]
    }

    fn gate(&self, cx: &Cx, target: &crate::spec::Host) -> Option<super::Gate> {
        if !target.has(Role::Web) {
            return None;
        }
        let backends: Vec<String> = cx.spec.sites_on(target).map(backend).collect();
        Some(super::Gate {
            close: drain(&backends, &target.name),
            open: set_state(&backends, &target.name, "ready"),
            fence: set_state(&backends, &target.name, "maint"),
        })
    }

    /// Web hosts in a site's backend (`show stat`) that the inventory no longer has serve that
    /// site, not yet out of service. Left in, the run that drops them would fail their requests:
    /// the database stops serving them first, their health check then fails, and
    /// `on-marked-down shutdown-sessions` cuts the requests they hold (1 of ~3,000 under load in
    /// the e2e, before this).
    fn leaving(&self, cx: &Cx, lines: &[String]) -> Vec<super::Leaving> {
        let mut gone: Vec<(String, Vec<String>)> = Vec::new();
        for (px, sv, status) in servers(lines) {
            let serves = cx
                .spec
                .sites
                .iter()
                .filter(|s| backend(s) == px)
                .any(|s| s.hosts.iter().any(|h| h == sv));
            // A name provision could not have written (HAProxy's own are plainer) is left alone
            // rather than put in a runtime API command.
            let plain = |n: &str| {
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            };
            if serves || status.starts_with("MAINT") || !plain(sv) || !plain(px) {
                continue;
            }
            match gone.iter_mut().find(|(s, _)| s == sv) {
                Some((_, pxs)) => pxs.push(px.to_string()),
                None => gone.push((sv.to_string(), vec![px.to_string()])),
            }
        }
        gone.into_iter()
            .map(|(sv, pxs)| super::Leaving {
                close: format!("{} && {}", drain(&pxs, &sv), set_state(&pxs, &sv, "maint")),
                target: sv,
            })
            .collect()
    }

    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some(SHOW_STAT.into())
    }

    /// Each web host's state in each site's backend.
    fn report(&self, cx: &Cx, lines: &[String]) -> Vec<super::Report> {
        let one = cx.spec.sites.len() == 1;
        let servers: Vec<super::Report> = servers(lines)
            .map(|(px, sv, status)| super::Report {
                ok: status.starts_with("UP"),
                text: if one {
                    format!("backend {sv}: {status}")
                } else {
                    format!("backend {sv} of {px}: {status}")
                },
            })
            .collect();
        if servers.is_empty() {
            // Not running, or its admin socket did not answer: no backend is served.
            return vec![super::Report {
                ok: false,
                text: "no backend states from the runtime API (/run/haproxy/admin.sock)".into(),
            }];
        }
        servers
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let spec = cx.spec;
        out.service("haproxy", "haproxy", "/run/haproxy.pid", "haproxy");
        // Debian's init script reloads with `-sf` alone: the new process binds its own sockets and
        // the old one closes its, resetting the connections still queued there. `-x` takes the
        // old process's listening sockets over instead (systemd's master-worker mode does that
        // by itself).
        out.plain_reload("haproxy", PLAIN_RELOAD);
        out.package("socat");
        let mut sites = Vec::new();
        let mut certs = Vec::new();
        for site in &spec.sites {
            let tls = site.tls.as_ref().filter(|_| super::tls::on_lb(spec, site));
            if let Some(t) = tls {
                certs.push(super::tls::file(site, t));
                super::tls::install(
                    cx,
                    site,
                    out,
                    "/etc/haproxy",
                    Handler::reload("haproxy"),
                    "haproxy",
                )?;
            }
            let servers: Vec<_> = spec
                .hosts_of(site)
                .map(|w| json!({ "name": w.name, "address": addr_port_host(w.internal_address()) }))
                .collect();
            sites.push(json!({
                "backend": backend(site),
                "names": site.fqdns(),
                "tls": tls.is_some(),
                "hsts": tls.filter(|t| t.hsts).map(|_| super::tls::HSTS),
                "check_path": site.health_check.path,
                "check_status": site.health_check.status,
                "servers": servers,
            }));
            for c in super::app::site_checks(site, &cx.host.ssh.address, tls.is_some()) {
                out.check(c);
            }
        }
        let cfg = cx.render(
            "haproxy/haproxy.cfg",
            &[(
                "lb",
                json!({ "sites": sites, "certs": certs, "ciphers": super::tls::CIPHERS }),
            )],
        )?;
        out.scope(Handler::reload("haproxy"), "haproxy")
            .file("/etc/haproxy/haproxy.cfg", cfg);
        out.validator(
            "haproxy",
            "PROVISION_ROOT={root} haproxy -c -q -f {root}/etc/haproxy/haproxy.cfg",
            &[],
        );
        // The page through the balancer passes with one web host answering: each one's state
        // in HAProxy's own view says whether it sends requests to all of them.
        out.check(HealthCheck::Remote {
            host: cx.host.name.clone(),
            component: self.name().into(),
            what: format!("the web hosts behind HAProxy on {}", cx.host.name),
            command: SHOW_STAT.into(),
        });
        Ok(())
    }

    fn read_check(&self, spec: &Spec, answer: &Output) -> Result<String, CheckFailed> {
        let lines: Vec<String> = answer.text().lines().map(str::to_string).collect();
        backends_up(spec, &lines)
    }
}

/// The `web` backend's servers as HAProxy sees them (`show stat` over the runtime API); nothing
/// while HAProxy does not run.
const SHOW_STAT: &str =
    "s=/run/haproxy/admin.sock; [ -S $s ] && echo 'show stat' | socat stdio unix-connect:$s";

/// Every web host that serves a site is a server of the site's backend and UP, unless it was
/// taken out of service on purpose (maintenance, drain: a host whose change failed stays fenced
/// off); and in each backend at least one is UP.
fn backends_up(spec: &Spec, lines: &[String]) -> Result<String, CheckFailed> {
    let states: Vec<(&str, &str, &str)> = servers(lines).collect();
    if states.is_empty() {
        return Err(CheckFailed(
            "no server states from the runtime API (/run/haproxy/admin.sock)".into(),
        ));
    }
    let mut said = Vec::new();
    for site in &spec.sites {
        let px = backend(site);
        let (mut up, mut out) = (Vec::new(), Vec::new());
        for web in spec.hosts_of(site) {
            let name = web.name.as_str();
            match states.iter().find(|(p, sv, _)| *p == px && *sv == name) {
                None => {
                    return Err(CheckFailed(format!(
                        "{name} is not a server of the backend {px}"
                    )))
                }
                Some((_, _, "UP" | "no check")) => up.push(name),
                Some((_, _, st)) if st.starts_with("MAINT") || st.starts_with("DRAIN") => {
                    out.push(format!("{name} ({st})"))
                }
                Some((_, _, st)) => return Err(CheckFailed(format!("{name} is {st} in {px}"))),
            }
        }
        if up.is_empty() {
            return Err(CheckFailed(format!(
                "no web host of {px} is UP (out of service: {})",
                out.join(", ")
            )));
        }
        let mut line = format!("UP: {}", up.join(", "));
        if !out.is_empty() {
            line.push_str(&format!("; out of service on purpose: {}", out.join(", ")));
        }
        if spec.sites.len() > 1 {
            line = format!("{px}: {line}");
        }
        said.push(line);
    }
    Ok(said.join("; "))
}

/// The backend of a site: its web hosts.
fn backend(site: &Site) -> String {
    format!("web-{}", site.name)
}

/// A runtime API command for the admin socket, as a shell line; nothing to do while HAProxy does
/// not run (before its first apply).
fn runtime(command: &str) -> String {
    format!(
        "s=/run/haproxy/admin.sock; [ -S $s ] || exit 0; echo {} | socat stdio unix-connect:$s > /dev/null",
        crate::quote::shell_word(command)
    )
}

/// The servers of the sites' backends (`web-...`) in `show stat` lines: backend, name, then
/// status (field 18).
fn servers(lines: &[String]) -> impl Iterator<Item = (&str, &str, &str)> {
    lines.iter().filter_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        let (px, sv, status) = (*f.first()?, *f.get(1)?, *f.get(17)?);
        (px.starts_with("web-") && sv != "FRONTEND" && sv != "BACKEND").then_some((px, sv, status))
    })
}

/// Stops sending `server` new requests in each of `backends`, then waits (at most `DRAIN_SECS`)
/// until it holds none in any; the script goes on after it (a drain that times out is not an
/// error: what it still holds is cut).
fn drain(backends: &[String], server: &str) -> String {
    // scur, the server's current sessions, is the 5th field of `show stat`.
    let wait = format!(
        "{{ i=0; while [ $i -lt {n} ]; do c=$(echo 'show stat' | socat stdio unix-connect:$s | awk -F, -v n={name} 'index($1, \"web-\") == 1 && $2 == n {{ t += $5 }} END {{ print t + 0 }}'); [ \"${{c:-0}}\" = 0 ] && break; sleep 0.2; i=$((i + 1)); done; true; }}",
        n = DRAIN_SECS * 5,
        name = crate::quote::shell_word(server),
    );
    format!("{} && {wait}", set_state(backends, server, "drain"))
}

/// Sets `server` to `state` (ready, drain, maint) in each of `backends` through the runtime API.
fn set_state(backends: &[String], server: &str, state: &str) -> String {
    let lines: Vec<String> = backends
        .iter()
        .map(|b| format!("set server {b}/{server} state {state}"))
        .collect();
    runtime(&lines.join("; "))
}

/// How long a drained backend may keep sessions before it is changed anyway, in seconds.
const DRAIN_SECS: u32 = 30;

/// An address as HAProxy wants it before `:port`: IPv6 in brackets.
fn addr_port_host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let path =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lb.toml"));
        crate::spec::load(path, &crate::spec::SystemSources).unwrap()
    }

    /// `show stat` as HAProxy prints it (fields up to the status, the 18th).
    fn stat(web1: &str, web2: &str) -> Vec<String> {
        let row = |sv: &str, st: &str| {
            format!("web-foobar-com,{sv},0,0,0,1,,5,1,2,,0,,0,0,0,0,{st},1,1,0")
        };
        vec![
            "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status".into(),
            "www,FRONTEND,,,0,1,4096,7,1,2,0,0,0,,,,,OPEN".into(),
            row("web-01", web1),
            row("web-02", web2),
            "web-foobar-com,BACKEND,0,0,0,1,410,5,1,2,0,0,,0,0,0,0,UP".into(),
        ]
    }

    #[test]
    fn every_web_host_up_passes() {
        assert_eq!(
            backends_up(&spec(), &stat("UP", "UP")).unwrap(),
            "UP: web-01, web-02"
        );
    }

    /// The page through the balancer still passes with one web host down: this check does not.
    #[test]
    fn a_web_host_the_balancer_finds_down_fails() {
        assert_eq!(
            backends_up(&spec(), &stat("UP", "DOWN")).unwrap_err().0,
            "web-02 is DOWN in web-foobar-com"
        );
        assert!(backends_up(&spec(), &stat("UP", "UP 1/2")).is_err());
        assert!(backends_up(&spec(), &[])
            .unwrap_err()
            .0
            .contains("runtime API"));
        let missing: Vec<String> = stat("UP", "UP")
            .into_iter()
            .filter(|l| !l.contains("web-02"))
            .collect();
        assert_eq!(
            backends_up(&spec(), &missing).unwrap_err().0,
            "web-02 is not a server of the backend web-foobar-com"
        );
    }

    /// A web host fenced off after its change failed (maintenance) is out on purpose; all of them
    /// out is a failure.
    #[test]
    fn web_hosts_out_of_service_on_purpose_are_said_not_failed() {
        assert_eq!(
            backends_up(&spec(), &stat("UP", "MAINT")).unwrap(),
            "UP: web-01; out of service on purpose: web-02 (MAINT)"
        );
        assert!(backends_up(&spec(), &stat("MAINT", "DRAIN")).is_err());
    }
}
