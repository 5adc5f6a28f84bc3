//! `[site.tls]`: HTTPS for the site, with the user's certificate (checked in `certificate`), a
//! self-signed one each host makes, or one from an ACME CA the host asks for and renews.

use super::certificate::{Provided, CERT_FILE_LIMIT};
use super::check::Checker;
use super::{Host, Role};
use crate::error::shown;
use crate::inventory::{RawAcme, RawTls};
use openssl::x509::{X509Ref, X509};
use toml::Spanned;

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: TlsCert,
    /// Strict-Transport-Security on HTTPS answers (`hsts = true`).
    pub hsts: bool,
}

#[derive(Debug, Clone)]
pub enum TlsCert {
    /// Made on each host that ends TLS, for the site's names; its key never leaves the host.
    SelfSigned,
    Provided(Provided),
    /// Asked for from an ACME CA and renewed by the host itself (`provision-acme`): the account
    /// key, the certificate's key and the certificates never leave it.
    Acme(Acme),
}

/// Let's Encrypt's directory, the default CA.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`directory = "staging"`): untrusted certificates, generous
/// rate limits, for trying a setup out.
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// How the CA is shown that the host answers for the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// A token the web server serves on port 80 under /.well-known/acme-challenge/.
    Http01,
    /// A TXT record in the site's challenge zone on the `dns` hosts, written with the site's TSIG
    /// key (RFC 2136): wildcards too, and no web host needs to be reachable by the CA.
    Dns01,
}

impl Challenge {
    pub fn name(self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::Dns01 => "dns-01",
        }
    }
}

/// `[site.tls.acme]`, checked.
#[derive(Debug, Clone)]
pub struct Acme {
    /// The e-mail address of the CA account.
    pub contact: String,
    /// The CA's directory URL.
    pub directory: String,
    pub challenge: Challenge,
    /// The certificate's names, the first naming its files: the site's names unless the inventory
    /// lists some of them.
    pub names: Vec<String>,
    /// Roots the directory's HTTPS certificate chains to, for a CA the host's trust store does not
    /// know (PEM, as read; public).
    pub ca_bundle: Option<String>,
}

impl Tls {
    /// The names, in order, a self-signed certificate is made for, and a short digest of them (it
    /// names the file, so that a change of names makes a new certificate).
    pub fn self_signed_tag(fqdns: &[String]) -> String {
        let joined = fqdns.join(",");
        crate::render::manifest::sha256_hex(format!("ec-p256 {joined}").as_bytes())[..12]
            .to_string()
    }
}

/// Whether a certificate name (`www.example.com`, `*.example.com`) covers `name`: a wildcard
/// stands for exactly one leftmost label, as browsers read it (RFC 6125).
pub fn covers(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    match p.strip_prefix("*.") {
        Some(rest) => n
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => p == n,
    }
}

/// The DNS names a certificate holds (its subjectAltName): what `covers` is asked about, here and
/// by the HTTPS health check.
pub fn dns_names(cert: &X509Ref) -> Vec<String> {
    cert.subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Checker<'_> {
    /// `[site.tls]`; `fqdns` are the site's names when they are valid (else name coverage is not
    /// checked: their own error is already recorded).
    pub(super) fn tls(
        &mut self,
        t: &RawTls,
        domain: Option<&str>,
        fqdns: Option<&[String]>,
    ) -> Option<Tls> {
        let hsts = t.hsts.as_ref().is_some_and(|h| *h.get_ref());
        let self_signed = t.self_signed.as_ref().is_some_and(|s| *s.get_ref());
        if let Some(a) = &t.acme {
            if let Some(c) = t.certificate.as_ref().or(t.key.as_ref()) {
                self.fail(
                    c.span(),
                    "site.tls",
                    "found acme with a certificate or key; allowed: either acme = { ... }, or certificate and key".into(),
                );
                return None;
            }
            if let Some(s) = t.self_signed.as_ref().filter(|s| *s.get_ref()) {
                self.fail(
                    s.span(),
                    "site.tls",
                    "found acme with self_signed = true; allowed: either acme = { ... } (a self-signed placeholder serves until the CA's first certificate), or self_signed = true".into(),
                );
                return None;
            }
            let acme = self.acme(a, domain, fqdns)?;
            return Some(Tls {
                cert: TlsCert::Acme(acme),
                hsts,
            });
        }
        let cert = match (&t.certificate, &t.key, self_signed) {
            (None, None, true) => TlsCert::SelfSigned,
            (Some(c), _, true) | (None, Some(c), true) => {
                self.fail(
                    c.span(),
                    "site.tls",
                    "found self_signed = true with a certificate or key; allowed: either self_signed = true, or certificate and key".into(),
                );
                return None;
            }
            (Some(c), Some(k), false) => TlsCert::Provided(self.provided(c, k, fqdns)?),
            (Some(c), None, false) => {
                self.fail(
                    c.span(),
                    "site.tls.key",
                    "missing: a certificate needs its private key; allowed: key = \"path/to/site.key\"".into(),
                );
                return None;
            }
            (None, Some(k), false) => {
                self.fail(
                    k.span(),
                    "site.tls.certificate",
                    "missing: a key needs its certificate; allowed: certificate = \"path/to/site.crt\"".into(),
                );
                return None;
            }
            (None, None, false) => {
                self.fail(
                    t.span.clone(),
                    "site.tls",
                    "no certificate; allowed: self_signed = true, certificate = \"...\" and key = \"...\", or acme = { contact = \"...\" }".into(),
                );
                return None;
            }
        };
        Some(Tls { cert, hsts })
    }

    /// Where an ACME site's certificate can be asked for. With balancers TLS ends on both of them:
    /// each asks for its own over DNS-01, so either serves a valid one whenever the floating
    /// address moves to it (over HTTP-01 the CA would reach whichever holds the address). Without
    /// them, over HTTP-01 on its one web host (with several the CA may ask any of them for the
    /// token only the asking host holds), over DNS-01 on every web host, each its own certificate.
    pub(super) fn acme_hosts(&mut self, t: &Tls, raw: &RawTls, hosts: &[Host], on: &[String]) {
        let (TlsCert::Acme(acme), Some(a)) = (&t.cert, &raw.acme) else {
            return;
        };
        if acme.challenge == Challenge::Dns01 && !hosts.iter().any(|h| h.has(Role::Dns)) {
            let span = a.challenge.as_ref().map_or(a.span.clone(), |c| c.span());
            self.fail(span, "site.tls.acme.challenge", "found \"dns-01\", but no host has the \"dns\" role: the site's challenge zone needs name servers provision manages; allowed: \"http-01\", or a host with roles = [\"dns\"]".into());
        }
        let lbs: Vec<&str> = hosts
            .iter()
            .filter(|h| h.has(Role::Lb))
            .map(|h| h.name.as_str())
            .collect();
        if !lbs.is_empty() && acme.challenge == Challenge::Http01 {
            self.fail(a.span.clone(), "site.tls.acme", format!(
                "TLS ends on the load balancers ({}), which each ask for a certificate of their own, and over HTTP-01 the CA reaches only the one holding the floating address; allowed: challenge = \"dns-01\" with load balancers",
                lbs.join(", ")
            ));
        } else if on.len() > 1 && acme.challenge == Challenge::Http01 {
            self.fail(a.span.clone(), "site.tls.acme", format!(
                "the site is served by {} with no load balancer in front: the CA may ask any of them for the HTTP-01 token only the asking host holds; allowed: acme on a site one web host serves (site.hosts), or challenge = \"dns-01\"",
                on.join(", ")
            ));
        }
    }

    /// `[site.tls.acme]`; `fqdns` as for `tls`.
    fn acme(
        &mut self,
        a: &RawAcme,
        domain: Option<&str>,
        fqdns: Option<&[String]>,
    ) -> Option<Acme> {
        let test_ca = a.test_ca.as_ref().is_some_and(|t| *t.get_ref());
        let contact = match &a.contact {
            Some(c) => self.check(c, "site.tls.acme.contact", parse_contact),
            None => {
                self.fail(
                    a.span.clone(),
                    "site.tls.acme.contact",
                    "missing: the CA account's e-mail address (the CA writes about expiring certificates and policy changes); allowed: contact = \"you@example.com\"".into(),
                );
                None
            }
        };
        let directory = match &a.directory {
            Some(d) => self.check(d, "site.tls.acme.directory", |v| {
                parse_directory(v, test_ca)
            }),
            None => Some(LETSENCRYPT.to_string()),
        };
        let challenge = match &a.challenge {
            None => Some(Challenge::Http01),
            Some(c) if c.get_ref() == "http-01" => Some(Challenge::Http01),
            Some(c) if c.get_ref() == "dns-01" => Some(Challenge::Dns01),
            Some(c) => {
                self.fail(
                    c.span(),
                    "site.tls.acme.challenge",
                    format!(
                        "found {}; allowed: \"http-01\" (the default) or \"dns-01\"",
                        shown(c.get_ref())
                    ),
                );
                None
            }
        };
        let names = match (&a.names, fqdns, challenge) {
            (None, Some(f), _) => Some(f.to_vec()),
            (None, None, _) | (_, _, None) => None,
            (Some(list), f, Some(c)) => self.acme_names(list, domain, f, c),
        };
        let ca_bundle = match &a.ca_bundle {
            Some(v) => {
                let (path, bytes) = self.tls_file(v, "site.tls.acme.ca_bundle", CERT_FILE_LIMIT)?;
                match X509::stack_from_pem(&bytes) {
                    Ok(c) if !c.is_empty() => {
                        Some(Some(String::from_utf8_lossy(&bytes).into_owned()))
                    }
                    _ => {
                        self.fail(v.span(), "site.tls.acme.ca_bundle", format!(
                            "{} holds no PEM certificate; allowed: a PEM file of the roots the CA's directory is served with",
                            path.display()
                        ));
                        None
                    }
                }
            }
            None => Some(None),
        };
        Some(Acme {
            contact: contact?,
            directory: directory?,
            challenge: challenge?,
            names: names?,
            ca_bundle: ca_bundle?,
        })
    }

    /// `site.tls.acme.names`, no name twice: with HTTP-01 some of the site's names (no wildcard,
    /// which it cannot prove); with DNS-01 the domain and any name under it, wildcards too (its
    /// challenge zone proves them).
    fn acme_names(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        domain: Option<&str>,
        fqdns: Option<&[String]>,
        challenge: Challenge,
    ) -> Option<Vec<String>> {
        if list.get_ref().is_empty() {
            self.fail(list.span(), "site.tls.acme.names", "found an empty list; allowed: names of the site (site.domain and its server_names), or no names key for all of them".into());
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        let mut ok = true;
        for (i, n) in list.get_ref().iter().enumerate() {
            let key = format!("site.tls.acme.names[{i}]");
            let name = n.get_ref().to_ascii_lowercase();
            let problem = if out.contains(&name) {
                Some(format!(
                    "found {} twice; allowed: each name once",
                    shown(n.get_ref())
                ))
            } else if challenge == Challenge::Dns01 {
                dns01_name_problem(&name, domain)
                    .map(|allowed| format!("found {}; allowed: {allowed}", shown(n.get_ref())))
            } else if name.starts_with("*.") {
                Some(format!("found {}, a wildcard, which only challenge \"dns-01\" can prove; allowed: names of the site", shown(n.get_ref())))
            } else if out.contains(&name) {
                Some(format!(
                    "found {} twice; allowed: each name once",
                    shown(n.get_ref())
                ))
            } else {
                fqdns.filter(|f| !f.contains(&name)).map(|f| {
                    format!(
                        "found {}, which the site does not answer to; allowed: {}",
                        shown(n.get_ref()),
                        f.join(", ")
                    )
                })
            };
            match problem {
                Some(p) => {
                    self.fail(n.span(), &key, p);
                    ok = false;
                }
                None => out.push(name),
            }
        }
        ok.then_some(out)
    }
}

/// Why a DNS-01 certificate name is refused, if it is: a DNS name (a leading `*.` allowed) in the
/// site's `domain` (unknown when its own error is recorded: then only the form is checked).
fn dns01_name_problem(name: &str, domain: Option<&str>) -> Option<String> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let allowed =
        "the site's domain or a name under it, each optionally a wildcard (*.shop.example.com)";
    if crate::names::DomainName::parse(base).is_err() {
        return Some(allowed.to_string());
    }
    let domain = domain?;
    let inside = base == domain || base.ends_with(&format!(".{domain}"));
    (!inside).then(|| format!("{allowed}; {base} is not in {domain}"))
}

/// An e-mail address as ACME CAs take it: `local@domain`, the local part of letters, digits and
/// `.!#$%&'*+/=?^_`{|}~-` (no quotes, no spaces), the domain a DNS name with a dot.
pub fn parse_contact(v: &str) -> Result<String, crate::error::Allowed> {
    const ALLOWED: &str = "an e-mail address such as hostmaster@example.com";
    let (local, domain) = v.rsplit_once('@').ok_or(ALLOWED)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-!#$&*/=?^`{|}~".contains(&b));
    let domain_ok = domain.contains('.') && crate::names::DomainName::parse_zone(domain).is_ok();
    if local_ok && domain_ok && v.len() <= 254 {
        Ok(v.to_string())
    } else {
        Err(ALLOWED.into())
    }
}

/// The CA's directory: `letsencrypt`, `staging`, or an `https://` URL (`http://` only for a CA the
/// inventory marks `test_ca = true`), of the characters RFC 3986 allows in a URL less `$'()`.
pub fn parse_directory(v: &str, test_ca: bool) -> Result<String, crate::error::Allowed> {
    let allowed = if test_ca {
        "\"letsencrypt\", \"staging\", or the directory URL of the CA (https:// or, with test_ca = true, http://)"
    } else {
        "\"letsencrypt\", \"staging\", or the directory URL of the CA, https:// (http:// only with test_ca = true)"
    };
    match v {
        "letsencrypt" => return Ok(LETSENCRYPT.to_string()),
        "staging" => return Ok(LETSENCRYPT_STAGING.to_string()),
        _ => {}
    }
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://").filter(|_| test_ca));
    let ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty()
            && v.len() <= 1000
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!&*+,;=%".contains(&b))
    });
    if ok {
        Ok(v.to_string())
    } else {
        Err(allowed.into())
    }
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn a_wildcard_covers_one_label() {
        assert!(covers("*.example.com", "www.example.com"));
        assert!(covers("*.EXAMPLE.com", "Www.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(covers("example.com", "example.com"));
        assert!(!covers("example.com", "www.example.com"));
    }
}
