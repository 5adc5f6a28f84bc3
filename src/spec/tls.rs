//! `[site.tls]`: HTTPS for the site, with the user's certificate or a self-signed one each host
//! makes. The user's certificate and key are read and checked here, before any host is touched:
//! both parse, the key is the certificate's, the certificate is valid now and covers every name the
//! site answers to, and what follows it in the file are its issuers.

use super::check::Checker;
use crate::error::shown;
use crate::inventory::RawTls;
use crate::names::parse_local_path;
use crate::secret::{Secret, SecretKey};
use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Ref, X509VerifyResult, X509};
use std::path::PathBuf;
use toml::Spanned;

/// The most a certificate file may hold (a long chain is a few kilobytes).
const CERT_FILE_LIMIT: usize = 256 << 10;
/// The most a key file may hold (an RSA 8192 key is under 7 KB).
const KEY_FILE_LIMIT: usize = 64 << 10;
/// A certificate that ends sooner than this is accepted with a warning.
const EXPIRY_WARNING_DAYS: u32 = 30;

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
}

/// The user's certificate. Its private key is `SecretKey::TlsKey` in `Spec::secrets`: only ever
/// written into the host's key file, which is masked.
#[derive(Debug, Clone)]
pub struct Provided {
    /// The certificate, then its intermediates (PEM, as read).
    pub chain: String,
    /// SHA-256 of the certificate (DER), hex: how the plan and messages name it.
    pub fingerprint: String,
    /// When it expires, as OpenSSL prints it.
    pub not_after: String,
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
    pub(super) fn tls(&mut self, t: &RawTls, fqdns: Option<&[String]>) -> Option<Tls> {
        let hsts = t.hsts.as_ref().is_some_and(|h| *h.get_ref());
        let self_signed = t.self_signed.as_ref().is_some_and(|s| *s.get_ref());
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
                    "no certificate; allowed: self_signed = true, or certificate = \"...\" and key = \"...\"".into(),
                );
                return None;
            }
        };
        Some(Tls { cert, hsts })
    }

    /// Reads a file the inventory names, at most `limit` bytes; records why not.
    fn tls_file(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        limit: usize,
    ) -> Option<(PathBuf, Vec<u8>)> {
        let rel = self.check(v, key, parse_local_path)?;
        let full = self.opened_path(&rel);
        match self.sources.read_file(&full, limit) {
            Ok(b) if b.len() > limit => {
                self.fail(
                    v.span(),
                    key,
                    format!(
                        "{} is longer than {limit} bytes; allowed: a PEM file",
                        full.display()
                    ),
                );
                None
            }
            Ok(b) => Some((full, b)),
            Err(e) => {
                self.fail(
                    v.span(),
                    key,
                    format!("cannot read {}: {e}", full.display()),
                );
                None
            }
        }
    }

    fn provided(
        &mut self,
        c: &Spanned<String>,
        k: &Spanned<String>,
        fqdns: Option<&[String]>,
    ) -> Option<Provided> {
        let cert_file = self.tls_file(c, "site.tls.certificate", CERT_FILE_LIMIT);
        let key_file = self.tls_file(k, "site.tls.key", KEY_FILE_LIMIT);
        let (cert_path, cert_bytes) = cert_file?;
        let (key_path, key_bytes) = key_file?;
        let cp = cert_path.display().to_string();
        let kp = key_path.display().to_string();
        let chain = match X509::stack_from_pem(&cert_bytes) {
            Ok(chain) if !chain.is_empty() => chain,
            _ => {
                self.fail(c.span(), "site.tls.certificate", format!(
                    "{cp} holds no PEM certificate; allowed: a PEM file starting with -----BEGIN CERTIFICATE-----, the site's certificate first, then its intermediates"
                ));
                return None;
            }
        };
        // The key's own error text is left out: it could quote what it could not parse.
        let key: PKey<Private> = match PKey::private_key_from_pem(&key_bytes) {
            Ok(key) => key,
            Err(_) => {
                self.fail(k.span(), "site.tls.key", format!(
                    "{kp} holds no unencrypted PEM private key; allowed: a PEM private key (RSA, EC or Ed25519) without a passphrase (decrypt one with: openssl pkey -in {kp} -out site.key)"
                ));
                return None;
            }
        };
        let leaf = &chain[0];
        let mut ok = true;
        if !leaf.public_key().is_ok_and(|p| p.public_eq(&key)) {
            self.fail(k.span(), "site.tls.key", format!(
                "the key in {kp} is not the key of the certificate in {cp}; allowed: the private key the certificate was issued for"
            ));
            ok = false;
        }
        for (i, pair) in chain.windows(2).enumerate() {
            if pair[1].issued(&pair[0]) != X509VerifyResult::OK {
                self.fail(c.span(), "site.tls.certificate", format!(
                    "certificate {} in {cp} did not issue certificate {}; allowed: the site's certificate first, then each issuer in order",
                    i + 2,
                    i + 1
                ));
                ok = false;
            }
        }
        let not_after = leaf.not_after().to_string();
        let now = Asn1Time::days_from_now(0).ok()?;
        if leaf.not_after() < now {
            self.fail(
                c.span(),
                "site.tls.certificate",
                format!(
                "the certificate in {cp} expired on {not_after}; allowed: a certificate valid now"
            ),
            );
            ok = false;
        } else if leaf.not_before() > now {
            self.fail(
                c.span(),
                "site.tls.certificate",
                format!(
                "the certificate in {cp} is valid only from {}; allowed: a certificate valid now",
                leaf.not_before()
            ),
            );
            ok = false;
        } else if Asn1Time::days_from_now(EXPIRY_WARNING_DAYS)
            .is_ok_and(|soon| leaf.not_after() < soon)
        {
            let w = self.map.error(c.span(), "site.tls.certificate", format!(
                "the certificate in {cp} expires on {not_after}, in less than {EXPIRY_WARNING_DAYS} days"
            ));
            self.warnings.push(w);
        }
        if let Some(fqdns) = fqdns {
            let names = dns_names(leaf);
            let missing: Vec<&String> = fqdns
                .iter()
                .filter(|n| !names.iter().any(|p| covers(p, n)))
                .collect();
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|n| shown(n)).collect();
                let has = if names.is_empty() {
                    "it has no DNS names".to_string()
                } else {
                    format!("it has {}", names.join(", "))
                };
                self.fail(c.span(), "site.tls.certificate", format!(
                    "the certificate in {cp} does not cover {} ({has}); allowed: a certificate whose subjectAltName covers every name the site answers to (site.domain with site.server_names)",
                    list.join(", ")
                ));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let der = leaf.to_der().ok()?;
        let chain_pem: String = chain
            .iter()
            .filter_map(|x| x.to_pem().ok())
            .map(|p| String::from_utf8_lossy(&p).into_owned())
            .collect();
        let key_pem = key.private_key_to_pem_pkcs8().ok()?;
        // Without its trailing newline: the file puts the chain on the next line, and the
        // redactor's mask of the whole key then leaves that line as it is.
        let key_pem = String::from_utf8_lossy(&key_pem).trim_end().to_string();
        self.secrets.insert(
            SecretKey::TlsKey(self.at),
            Secret::new(key_pem, format!("file {kp}")),
        );
        Some(Provided {
            chain: chain_pem,
            fingerprint: crate::render::manifest::sha256_hex(&der),
            not_after,
        })
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
