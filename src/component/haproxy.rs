//! HAProxy on the `lb` hosts: balances port 80 over every web host, with an HTTP health check that
//! sends the site's Host header. Through its runtime API (the admin socket, with `socat`) it takes
//! a web host out of service while apply changes it: drained, then back, or kept out if its change
//! failed. Its own reloads are seamless: the new process takes the listening sockets over from the
//! old one (`expose-fd listeners`), and requests a backend drops are dispatched again.

use super::{Component, Cx, Out};
use crate::desired::{Handler, HealthCheck};
use crate::health::CheckFailed;
use crate::render::RenderError;
use crate::spec::{Role, Spec};
use crate::transport::Output;
use serde_json::json;
use std::net::IpAddr;

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

    fn gate(&self, _cx: &Cx, target: &crate::spec::Host) -> Option<super::Gate> {
        if !target.has(Role::Web) {
            return None;
        }
        Some(super::Gate {
            close: drain(&target.name),
            open: set_state(&target.name, "ready"),
            fence: set_state(&target.name, "maint"),
        })
    }

    /// Web hosts in the `web` backend (`show stat`) the inventory no longer names, not yet out of
    /// service. Left in, the run that drops them would fail their requests: the database stops
    /// serving them first, their health check then fails, and `on-marked-down shutdown-sessions`
    /// cuts the requests they hold (1 of ~3,000 under load in the e2e, before this).
    fn leaving(&self, cx: &Cx, lines: &[String]) -> Vec<super::Leaving> {
        let named: Vec<&str> = cx
            .spec
            .hosts_with(Role::Web)
            .map(|h| h.name.as_str())
            .collect();
        servers(lines)
            .filter(|(sv, status)| {
                !named.contains(sv)
                    && !status.starts_with("MAINT")
                    // A name provision could not have written (HAProxy's own are plainer) is left
                    // alone rather than put in a runtime API command.
                    && sv
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            })
            .map(|(sv, _)| super::Leaving {
                target: sv.to_string(),
                close: format!("{} && {}", drain(sv), set_state(sv, "maint")),
            })
            .collect()
    }

    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some(SHOW_STAT.into())
    }

    /// Each web host's state in the `web` backend.
    fn report(&self, _cx: &Cx, lines: &[String]) -> Vec<super::Report> {
        let servers: Vec<super::Report> = servers(lines)
            .map(|(sv, status)| super::Report {
                ok: status.starts_with("UP"),
                text: format!("backend {sv}: {status}"),
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
        let backends: Vec<_> = spec
            .hosts_with(Role::Web)
            .map(|w| json!({ "name": w.name, "address": addr_port_host(w.internal_address()) }))
            .collect();
        out.service("haproxy", "haproxy", "/run/haproxy.pid", "haproxy");
        // Debian's init script reloads with `-sf` alone: the new process binds its own sockets and
        // the old one closes its, resetting the connections still queued there. `-x` takes the
        // old process's listening sockets over instead (systemd's master-worker mode does that
        // by itself).
        out.plain_reload(
            "haproxy",
            "haproxy -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -D -x /run/haproxy/admin.sock -sf $(cat /run/haproxy.pid)",
        );
        out.package("socat");
        let cfg = cx.render(
            "haproxy/haproxy.cfg",
            &[(
                "lb",
                json!({
                    "backends": backends,
                    "check_path": spec.site.health_check.path,
                    "check_status": spec.site.health_check.status,
                }),
            )],
        )?;
        out.scope(Handler::reload("haproxy"), "haproxy")
            .file("/etc/haproxy/haproxy.cfg", cfg);
        if super::tls::on_lb(spec) {
            super::tls::install(
                cx,
                out,
                "/etc/haproxy",
                Handler::reload("haproxy"),
                "haproxy",
            )?;
        }
        out.validator(
            "haproxy",
            "PROVISION_ROOT={root} haproxy -c -q -f {root}/etc/haproxy/haproxy.cfg",
            &[],
        );
        for c in super::app::site_checks(cx, &cx.host.ssh.address, super::tls::on_lb(spec)) {
            out.check(c);
        }
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

/// Every web host of the inventory is a server of the `web` backend and UP, unless it was taken
/// out of service on purpose (maintenance, drain: a host whose change failed stays fenced off);
/// and at least one is UP.
fn backends_up(spec: &Spec, lines: &[String]) -> Result<String, CheckFailed> {
    let states: Vec<(&str, &str)> = servers(lines).collect();
    let (mut up, mut out) = (Vec::new(), Vec::new());
    for web in spec.hosts_with(Role::Web) {
        let name = web.name.as_str();
        match states.iter().find(|(sv, _)| *sv == name) {
            None if states.is_empty() => {
                return Err(CheckFailed(
                    "no server states from the runtime API (/run/haproxy/admin.sock)".into(),
                ))
            }
            None => {
                return Err(CheckFailed(format!(
                    "{name} is not a server of the web backend"
                )))
            }
            Some((_, "UP" | "no check")) => up.push(name),
            Some((_, st)) if st.starts_with("MAINT") || st.starts_with("DRAIN") => {
                out.push(format!("{name} ({st})"))
            }
            Some((_, st)) => return Err(CheckFailed(format!("{name} is {st}"))),
        }
    }
    if up.is_empty() {
        return Err(CheckFailed(format!(
            "no web host is UP (out of service: {})",
            out.join(", ")
        )));
    }
    let mut said = format!("UP: {}", up.join(", "));
    if !out.is_empty() {
        said.push_str(&format!("; out of service on purpose: {}", out.join(", ")));
    }
    Ok(said)
}

/// A runtime API command for the admin socket, as a shell line; nothing to do while HAProxy does
/// not run (before its first apply).
fn runtime(command: &str) -> String {
    format!(
        "s=/run/haproxy/admin.sock; [ -S $s ] || exit 0; echo {} | socat stdio unix-connect:$s > /dev/null",
        crate::quote::shell_word(command)
    )
}

/// The servers of the `web` backend in `show stat` lines: name, then status (field 18).
fn servers(lines: &[String]) -> impl Iterator<Item = (&str, &str)> {
    lines.iter().filter_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        let (px, sv, status) = (*f.first()?, *f.get(1)?, *f.get(17)?);
        (px == "web" && sv != "FRONTEND" && sv != "BACKEND").then_some((sv, status))
    })
}

/// Stops sending `server` of the `web` backend new requests, then waits (at most `DRAIN_SECS`)
/// until it holds none; the script goes on after it (a drain that times out is not an error: what
/// it still holds is cut).
fn drain(server: &str) -> String {
    // scur, the server's current sessions, is the 5th field of `show stat`.
    let wait = format!(
        "{{ i=0; while [ $i -lt {n} ]; do c=$(echo 'show stat' | socat stdio unix-connect:$s | awk -F, -v n={name} '$1 == \"web\" && $2 == n {{ print $5 }}'); [ \"${{c:-0}}\" = 0 ] && break; sleep 0.2; i=$((i + 1)); done; true; }}",
        n = DRAIN_SECS * 5,
        name = crate::quote::shell_word(server),
    );
    format!("{} && {wait}", set_state(server, "drain"))
}

/// Sets `server` of the `web` backend to `state` (ready, drain, maint) through the runtime API.
fn set_state(server: &str, state: &str) -> String {
    runtime(&format!("set server web/{server} state {state}"))
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
        let row = |sv: &str, st: &str| format!("web,{sv},0,0,0,1,,5,1,2,,0,,0,0,0,0,{st},1,1,0");
        vec![
            "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status".into(),
            "www,FRONTEND,,,0,1,4096,7,1,2,0,0,0,,,,,OPEN".into(),
            row("web-01", web1),
            row("web-02", web2),
            "web,BACKEND,0,0,0,1,410,5,1,2,0,0,,0,0,0,0,UP".into(),
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
            "web-02 is DOWN"
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
            "web-02 is not a server of the web backend"
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
