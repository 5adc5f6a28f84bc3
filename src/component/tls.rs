//! Where the site's TLS ends, and the certificate file there. Not a service of its own: the server
//! that ends TLS (Nginx or Apache on a single web host, HAProxy on the load balancers) puts the
//! file into its own config directory with `install` and reads it by a path relative to that
//! directory, so the staged copy its validator checks reads the staged certificate too.
//!
//! With load balancers, TLS ends on them: HAProxy then sees each request (HTTP health checks,
//! draining, X-Forwarded-For) and the web hosts keep plain HTTP on the private network, told the
//! original scheme by X-Forwarded-Proto. Passthrough would need a certificate on every web host and
//! leave HAProxy blind to HTTP.

use super::{Cx, Out, SiteCx};
use crate::desired::Handler;
use crate::quote::shell_word;
use crate::render::RenderError;
use crate::secret::SecretKey;
use crate::spec::{Challenge, Role, Site, Spec, Tls, TlsCert};
use serde_json::{json, Map, Value};

/// Days a self-signed certificate is valid. It stands in until a real one is given; renewing it
/// would change the key clients may have pinned.
const SELF_SIGNED_DAYS: u32 = 3650;

/// Mozilla's intermediate profile (TLS 1.2 ciphers; TLS 1.3's are OpenSSL's defaults). The DHE
/// suites are left out: they need a DH parameter file, and every client of the profile has ECDHE.
pub const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// Strict-Transport-Security with `hsts = true`: two years, as Mozilla's profile says.
pub const HSTS: &str = "max-age=63072000";

/// Whether the site's TLS ends on the load balancers (there are some) rather than the web servers.
pub fn on_lb(spec: &Spec, site: &Site) -> bool {
    site.tls.is_some() && spec.hosts_with(Role::Lb).next().is_some()
}

/// Whether the site's TLS ends on the web servers.
pub fn on_web(spec: &Spec, site: &Site) -> bool {
    site.tls.is_some() && !on_lb(spec, site)
}

/// The certificate file, relative to the config directory of the server that reads it. A
/// self-signed one is named by the names it covers: new names, a new certificate.
pub fn file(site: &Site, tls: &Tls) -> String {
    let domain = site.domain.as_str();
    match &tls.cert {
        TlsCert::SelfSigned => format!(
            "tls/{domain}.self-signed-{}.pem",
            Tls::self_signed_tag(&site.fqdns())
        ),
        TlsCert::Provided(_) => format!("tls/{domain}.pem"),
        // Not provision's file: the host's provision-acme writes it (see component/acme.rs).
        TlsCert::Acme(_) => acme_file(site),
    }
}

/// The certificate file of a site whose certificate comes from an ACME CA (as `file`).
pub fn acme_file(site: &Site) -> String {
    format!("tls/{}.acme.pem", site.domain)
}

/// Where the site's TLS ends on a web host: the config directory of the server there and its
/// service (Apache in front of a `lamp` site, else Nginx); none when it does not end on the web
/// hosts.
pub fn web_server(spec: &Spec, site: &Site) -> Option<(&'static str, &'static str)> {
    if !on_web(spec, site) {
        return None;
    }
    Some(if site.stack.name() == "lamp" {
        ("/etc/apache2", "apache2")
    } else {
        ("/etc/nginx", "nginx")
    })
}

/// The directory the web server answers the CA's HTTP-01 requests from (its
/// `.well-known/acme-challenge/`), when the site's certificate comes from an ACME CA over HTTP-01.
pub fn acme_webroot(site: &Site) -> Option<String> {
    match site.tls.as_ref().map(|t| &t.cert) {
        Some(TlsCert::Acme(a)) if a.challenge == Challenge::Http01 => Some(format!(
            "/var/lib/provision-acme/challenges/{}",
            site.domain
        )),
        _ => None,
    }
}

/// The longest file name `file` makes after the domain.
pub const FILE_SUFFIX: &str = ".self-signed-0123456789ab.pem";

/// `tls` in the templates: where it ends, the file, HSTS.
pub fn context(cx: &SiteCx, ctx: &mut Map<String, Value>) {
    let (spec, site) = (cx.spec, cx.site);
    let v = match &site.tls {
        Some(t) => json!({
            "web": on_web(spec, site),
            "lb": on_lb(spec, site),
            "file": file(site, t),
            "hsts": if t.hsts { Value::from(HSTS) } else { Value::Null },
            "ciphers": CIPHERS,
            "acme": acme_webroot(site).filter(|_| on_web(spec, site)),
        }),
        None => {
            json!({ "web": false, "lb": false, "file": "", "hsts": null, "ciphers": "", "acme": null })
        }
    };
    ctx.insert("tls".into(), v);
}

/// Puts the site's certificate (with its key, in one file mode 0600 root) into `dir`, the config
/// directory of the server that ends TLS on this host; a change notifies `notify` and is read by
/// `validator`. The user's certificate travels from the inventory; a self-signed one is made on the
/// host (`openssl req`), its key never leaving it; one from an ACME CA is the host's own
/// provision-acme's (component/acme.rs): provision makes only its directory.
pub fn install(
    cx: &Cx,
    site: &Site,
    out: &mut Out,
    dir: &str,
    notify: Handler,
    validator: &str,
) -> Result<(), RenderError> {
    let Some(tls) = &site.tls else {
        return Ok(());
    };
    let path = format!("{dir}/{}", file(site, tls));
    out.dir(format!("{dir}/tls")).mode(0o700);
    match &tls.cert {
        TlsCert::Acme(_) => {}
        TlsCert::Provided(p) => {
            // A render without --reveal-secrets writes the placeholder instead of the key.
            let Some(key) = cx.opts.secret(&cx.spec.secrets, SecretKey::TlsKey(site.at)) else {
                return Err(RenderError::Template {
                    host: cx.host.name.clone(),
                    message: "the inventory's certificate has no key registered (a bug)".into(),
                });
            };
            let content = format!("{key}\n{}", p.chain);
            out.file(path, content)
                .mode(0o600)
                .sensitive()
                .notify(notify)
                .checked_by(validator);
        }
        TlsCert::SelfSigned => {
            out.package("openssl");
            let names = site.fqdns();
            let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
            let command = format!(
                "umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days {SELF_SIGNED_DAYS} -subj {} -addext {} -keyout \"$OUT.key\" -out \"$OUT.crt\" 2>&1 && cat \"$OUT.key\" \"$OUT.crt\" > \"$OUT\" && rm -f \"$OUT.key\" \"$OUT.crt\"",
                shell_word(&format!("/CN={}", names[0])),
                shell_word(&format!("subjectAltName={}", san.join(","))),
            );
            let what = format!("a self-signed certificate for {}", names.join(", "));
            out.made(path, command, what)
                .mode(0o600)
                .notify(notify)
                .checked_by(validator);
        }
    }
    Ok(())
}
