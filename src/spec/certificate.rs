//! The user's own certificate (`[site.tls]` `certificate` and `key`), read and checked before any
//! host is touched: both parse, the key is the certificate's, the certificate is valid now and
//! covers every name the site answers to, and what follows it in the file are its issuers.

use super::check::Checker;
use super::tls::{covers, dns_names};
use crate::error::shown;
use crate::names::parse_local_path;
use crate::secret::{Secret, SecretKey};
use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::{X509Ref, X509VerifyResult, X509};
use std::path::PathBuf;
use toml::Spanned;

/// The most a certificate file may hold (a long chain is a few kilobytes).
pub(super) const CERT_FILE_LIMIT: usize = 256 << 10;
/// The most a key file may hold (an RSA 8192 key is under 7 KB).
const KEY_FILE_LIMIT: usize = 64 << 10;
/// A certificate that ends sooner than this is accepted with a warning.
const EXPIRY_WARNING_DAYS: u32 = 30;

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

/// Where the certificate and the key are named, and their files as they are shown in errors.
struct Named<'a> {
    cert: &'a Spanned<String>,
    key: &'a Spanned<String>,
    cert_path: String,
    key_path: String,
}

impl Checker<'_> {
    /// Reads a file the inventory names, at most `limit` bytes; records why not.
    pub(super) fn tls_file(
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

    /// The certificate `c` and key `k` name, checked; `fqdns`: the site's names when they are
    /// valid. The key is registered as the site's `TlsKey` secret.
    pub(super) fn provided(
        &mut self,
        c: &Spanned<String>,
        k: &Spanned<String>,
        fqdns: Option<&[String]>,
    ) -> Option<Provided> {
        let cert_file = self.tls_file(c, "site.tls.certificate", CERT_FILE_LIMIT);
        let key_file = self.tls_file(k, "site.tls.key", KEY_FILE_LIMIT);
        let (cert_path, cert_bytes) = cert_file?;
        let (key_path, key_bytes) = key_file?;
        let at = Named {
            cert: c,
            key: k,
            cert_path: cert_path.display().to_string(),
            key_path: key_path.display().to_string(),
        };
        let chain = self.chain(&at, &cert_bytes)?;
        let key = self.private_key(&at, &key_bytes)?;
        let leaf = &chain[0];
        let mut ok = self.key_and_issuers_match(&at, &chain, &key);
        ok &= self.valid_now(&at, leaf)?;
        if let Some(fqdns) = fqdns {
            ok &= self.covers_names(&at, leaf, fqdns);
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
            Secret::new(key_pem, format!("file {}", at.key_path)),
        );
        Some(Provided {
            chain: chain_pem,
            fingerprint: crate::render::manifest::sha256_hex(&der),
            not_after: leaf.not_after().to_string(),
        })
    }

    /// The certificates of the certificate file, the site's first.
    fn chain(&mut self, at: &Named, bytes: &[u8]) -> Option<Vec<X509>> {
        match X509::stack_from_pem(bytes) {
            Ok(chain) if !chain.is_empty() => Some(chain),
            _ => {
                self.fail(at.cert.span(), "site.tls.certificate", format!(
                    "{} holds no PEM certificate; allowed: a PEM file starting with -----BEGIN CERTIFICATE-----, the site's certificate first, then its intermediates",
                    at.cert_path
                ));
                None
            }
        }
    }

    fn private_key(&mut self, at: &Named, bytes: &[u8]) -> Option<PKey<Private>> {
        // The key's own error text is left out: it could quote what it could not parse.
        match PKey::private_key_from_pem(bytes) {
            Ok(key) => Some(key),
            Err(_) => {
                let kp = &at.key_path;
                self.fail(at.key.span(), "site.tls.key", format!(
                    "{kp} holds no unencrypted PEM private key; allowed: a PEM private key (RSA, EC or Ed25519) without a passphrase (decrypt one with: openssl pkey -in {kp} -out site.key)"
                ));
                None
            }
        }
    }

    /// Whether the key is the first certificate's and each certificate issued the one before it.
    fn key_and_issuers_match(&mut self, at: &Named, chain: &[X509], key: &PKey<Private>) -> bool {
        let (cp, kp) = (&at.cert_path, &at.key_path);
        let mut ok = true;
        if !chain[0].public_key().is_ok_and(|p| p.public_eq(key)) {
            self.fail(at.key.span(), "site.tls.key", format!(
                "the key in {kp} is not the key of the certificate in {cp}; allowed: the private key the certificate was issued for"
            ));
            ok = false;
        }
        for (i, pair) in chain.windows(2).enumerate() {
            if pair[1].issued(&pair[0]) != X509VerifyResult::OK {
                self.fail(at.cert.span(), "site.tls.certificate", format!(
                    "certificate {} in {cp} did not issue certificate {}; allowed: the site's certificate first, then each issuer in order",
                    i + 2,
                    i + 1
                ));
                ok = false;
            }
        }
        ok
    }

    /// Whether the certificate is valid now (a warning when it ends soon); `None` when the time
    /// now cannot be had.
    fn valid_now(&mut self, at: &Named, leaf: &X509Ref) -> Option<bool> {
        let cp = &at.cert_path;
        let not_after = leaf.not_after().to_string();
        let now = Asn1Time::days_from_now(0).ok()?;
        if leaf.not_after() < now {
            self.fail(
                at.cert.span(),
                "site.tls.certificate",
                format!(
                    "the certificate in {cp} expired on {not_after}; allowed: a certificate valid now"
                ),
            );
            return Some(false);
        }
        if leaf.not_before() > now {
            self.fail(
                at.cert.span(),
                "site.tls.certificate",
                format!(
                    "the certificate in {cp} is valid only from {}; allowed: a certificate valid now",
                    leaf.not_before()
                ),
            );
            return Some(false);
        }
        if Asn1Time::days_from_now(EXPIRY_WARNING_DAYS).is_ok_and(|soon| leaf.not_after() < soon) {
            let w = self.map.error(at.cert.span(), "site.tls.certificate", format!(
                "the certificate in {cp} expires on {not_after}, in less than {EXPIRY_WARNING_DAYS} days"
            ));
            self.warnings.push(w);
        }
        Some(true)
    }

    /// Whether the certificate's subjectAltName covers every one of the site's names.
    fn covers_names(&mut self, at: &Named, leaf: &X509Ref, fqdns: &[String]) -> bool {
        let names = dns_names(leaf);
        let missing: Vec<&String> = fqdns
            .iter()
            .filter(|n| !names.iter().any(|p| covers(p, n)))
            .collect();
        if missing.is_empty() {
            return true;
        }
        let list: Vec<String> = missing.iter().map(|n| shown(n)).collect();
        let has = if names.is_empty() {
            "it has no DNS names".to_string()
        } else {
            format!("it has {}", names.join(", "))
        };
        self.fail(at.cert.span(), "site.tls.certificate", format!(
            "the certificate in {} does not cover {} ({has}); allowed: a certificate whose subjectAltName covers every name the site answers to (site.domain with site.server_names)",
            at.cert_path,
            list.join(", ")
        ));
        false
    }
}
