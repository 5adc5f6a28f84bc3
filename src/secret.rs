//! Secrets and the one registry of them. A `Secret` has no `Display`, its `Debug` hides the value,
//! and its value is readable only in this file: the rest of provision obtains a secret's value
//! through `Secrets` (the registry every secret of a `Spec` is put in, by its key), which gives it
//! to templates with `Secrets::shown` and builds the `Redactor` from the same entries. A secret a
//! template can write is therefore one the redactor masks, by construction.
//!
//! One file on purpose (under 400 lines of code, then its tests): a `Secret`'s value is private to
//! this module, so everything that can read one, the registry and the redactor built from it, is
//! here, to be reviewed in one place.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    /// Where it came from, for messages: `env PROVISION_DB_PASSWORD` or `file secrets/db`.
    pub origin: String,
}

impl Secret {
    pub fn new(value: String, origin: String) -> Self {
        Secret { value, origin }
    }

    /// Whether the value is `candidate` (tests and checks; never prints the value).
    pub fn is(&self, candidate: &str) -> bool {
        self.value == candidate
    }

    /// A secret derived from this one: HMAC-SHA256 keyed with it over `parts`, in hex. As secret as
    /// this one, and stable for as long as it is.
    pub fn derive(&self, parts: &[&[u8]], origin: String) -> Secret {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.value.as_bytes())
            .expect("HMAC takes keys of any length");
        for p in parts {
            mac.update(p);
        }
        let hex = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Secret::new(hex, origin)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<hidden, from {}>)", self.origin)
    }
}

/// Which site a secret belongs to, and how the inventory wrote its sites: the one-site form's keys
/// (`database.password`) or the `[[sites]]` form's (`sites[1].database.password`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteRef {
    pub index: u16,
    pub many: bool,
}

impl SiteRef {
    /// The one site of the `[site]` form.
    pub const ONE: SiteRef = SiteRef {
        index: 0,
        many: false,
    };

    /// The inventory key of the site's `table` (`site`, `database`, `dns`, or in the `[[sites]]`
    /// form `sites[N]`, `sites[N].database`, ...).
    pub fn key(self, table: &str) -> String {
        match (self.many, table) {
            (false, t) => t.to_string(),
            (true, "site") => format!("sites[{}]", self.index),
            (true, t) => format!("sites[{}].{t}", self.index),
        }
    }
}

/// Every kind of secret an inventory gives, or provision derives from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretKey {
    DatabasePassword(SiteRef),
    /// The replication account's: in `[database]` of the one-site form (`many` false), else in
    /// `[replication]`.
    ReplicationPassword {
        many: bool,
    },
    /// The private key of a certificate the user provides (the site's `tls`).
    TlsKey(SiteRef),
    /// The application's own secret for keys and salts, derived from the database password.
    AppSalt(SiteRef),
    /// The TSIG key that lets a site's web hosts change its DNS-01 challenge records on the dns
    /// hosts, derived from the database password (the web hosts hold that already).
    AcmeTsig(SiteRef),
}

impl SecretKey {
    /// How messages and placeholders name it: the inventory's key, or for a derived secret the
    /// template value that holds it.
    pub fn name(self) -> String {
        match self {
            SecretKey::DatabasePassword(s) => format!("{}.password", s.key("database")),
            SecretKey::ReplicationPassword { many: false } => {
                "database.replication_password".into()
            }
            SecretKey::ReplicationPassword { many: true } => "replication.password".into(),
            SecretKey::TlsKey(s) => format!("{}.tls.key", s.key("site")),
            SecretKey::AppSalt(s) if !s.many => "app.salt".into(),
            SecretKey::AppSalt(s) => format!("{}.app.salt", s.key("site")),
            SecretKey::AcmeTsig(s) => format!("{}.tls.acme.tsig", s.key("site")),
        }
    }
}

/// What a secret is replaced with unless secrets are revealed. Visible on purpose: a reader of a
/// rendered file sees at once that something was withheld, and from where.
pub fn placeholder(key: SecretKey) -> String {
    format!(
        "<secret {} hidden: render with --reveal-secrets>",
        key.name()
    )
}

/// The registry: every secret of an inventory, by key. Filled once, while the inventory is
/// checked; the only way a secret's value reaches a rendered file, and what the redactor masks.
#[derive(Clone, Default)]
pub struct Secrets {
    entries: Vec<(SecretKey, Secret)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.entries.iter().map(|(k, _)| k.name()).collect();
        write!(f, "Secrets({})", keys.join(", "))
    }
}

impl Secrets {
    /// Registers `secret` as `key` (a second one for the same key replaces the first).
    pub fn insert(&mut self, key: SecretKey, secret: Secret) {
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, secret));
    }

    pub fn get(&self, key: SecretKey) -> Option<&Secret> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, s)| s)
    }

    /// What a template is given for `key`: the value when secrets are revealed (a render for a
    /// host, or `render --reveal-secrets`), else its placeholder. `None`: the inventory has none.
    pub fn shown(&self, key: SecretKey, reveal: bool) -> Option<String> {
        let s = self.get(key)?;
        Some(if reveal {
            s.value.clone()
        } else {
            placeholder(key)
        })
    }

    /// Made-up secrets for the same keys, one set per `seed` (0 or 1): each value holds every kind
    /// of character a filter may change (cases, digits, quotes, `\`, `$`, `<&>`, a space), the
    /// two sets differ in each kind and are alike in length. What a template writes of them shows
    /// whether it writes its secrets in a form the redactor masks (see `component::app`).
    pub fn stand_ins(&self, seed: usize) -> Secrets {
        let (lower, upper, digit) = [('q', 'Q', '1'), ('w', 'W', '2')][seed % 2];
        let entries = self
            .entries
            .iter()
            .map(|(k, _)| {
                let v = format!(
                    "{lower}{upper}{digit}'\"\\$ <&>{}-{lower}{upper}{digit}",
                    k.name()
                );
                (*k, Secret::new(v, "a stand-in".into()))
            })
            .collect();
        Secrets { entries }
    }

    /// `v` with every string that is one of these secrets, as it is or as its placeholder,
    /// replaced by the secret of the same key in `to`.
    pub fn swap_in_json(&self, v: serde_json::Value, to: &Secrets) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => {
                let swapped = self.entries.iter().find_map(|(k, secret)| {
                    (s == secret.value || s == placeholder(*k))
                        .then(|| to.get(*k).map(|t| t.value.clone()))
                        .flatten()
                });
                Value::String(swapped.unwrap_or(s))
            }
            Value::Array(a) => {
                Value::Array(a.into_iter().map(|x| self.swap_in_json(x, to)).collect())
            }
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (k, self.swap_in_json(x, to)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Whether `text` holds one of these secrets (`redactor` is `self.redactor()`), or the
    /// placeholder of one (a render without the values).
    pub fn held_in(&self, redactor: &Redactor, text: &str) -> bool {
        // Every placeholder starts so: most texts are ruled out by one search.
        redactor.finds(text)
            || (text.contains("<secret ")
                && self
                    .entries
                    .iter()
                    .any(|(k, _)| text.contains(&placeholder(*k))))
    }

    /// The redactor for every secret registered here.
    pub fn redactor(&self) -> Redactor {
        let mut r = Redactor::default();
        for (key, s) in &self.entries {
            r.add(&key.name(), &s.value);
        }
        r.finish();
        r
    }
}

/// Checks a secret's value without ever printing it: any printable character is allowed (quotes,
/// `$`, `\`, `;` too, they are escaped where written), control characters and emptiness are not.
pub fn check_secret_value(value: &str) -> Result<(), crate::error::Allowed> {
    if value.is_empty() {
        return Err("the secret is empty".into());
    }
    if value.chars().any(char::is_control) {
        return Err("the secret contains a control character (newline, tab, ...); only printable characters are allowed".into());
    }
    if value.len() > 512 {
        return Err("the secret is longer than 512 bytes".into());
    }
    Ok(())
}

/// The shortest line of a multi-line secret (a PEM key's base64) masked on its own: a diff or a
/// tool's message may quote one line of it. Shorter lines (a key's last few characters) would
/// mask unrelated text as well.
const SECRET_LINE_MIN: usize = 16;

/// What a PEM private key block found in text is replaced with, whatever its origin.
pub const PEM_KEY_MASK: &str = "<private key hidden>";

/// Masks every form a secret can take in text provision shows: the raw value and each escaped form
/// the templates write (SQL, PHP, shell, option file, JSON), each line of a multi-line secret, and
/// any PEM private key block, registered or not, so tool output and diffs quoting a config stay
/// clean.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    needles: Vec<(String, String)>,
    /// The needles that hold no other (a text holding any needle holds one of these): what
    /// `finds` looks for.
    least: Vec<String>,
}

impl Redactor {
    fn add(&mut self, key: &str, v: &str) {
        let mask = format!("<secret {key} hidden>");
        let forms: [String; 6] = [
            v.to_string(),
            crate::quote::sql_string(v),
            crate::quote::php_string(v),
            crate::quote::shell_word(v),
            crate::quote::cnf_string(v),
            serde_json::Value::String(v.to_string()).to_string(),
        ];
        let lines = v
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= SECRET_LINE_MIN && !l.starts_with("-----"))
            .map(str::to_string);
        for f in forms {
            // Escaped forms carry their quotes, and keep them (a masked JSON string stays one);
            // the inner part is what shows up in messages.
            let quoted = ['\'', '"'].iter().find_map(|q| {
                let inner = f.strip_prefix(*q)?.strip_suffix(*q)?;
                Some((inner.to_string(), format!("{q}{mask}{q}")))
            });
            if let Some((inner, quoted_mask)) = quoted {
                self.push(f, &quoted_mask);
                self.push(inner, &mask);
            } else {
                self.push(f, &mask);
            }
        }
        for l in lines {
            self.push(l, &mask);
        }
    }

    fn push(&mut self, needle: String, mask: &str) {
        if !needle.is_empty() && !self.needles.iter().any(|(x, _)| *x == needle) {
            self.needles.push((needle, mask.to_string()));
        }
    }

    /// Longest first, so a form that contains another is replaced whole.
    fn finish(&mut self) {
        self.needles.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
        self.least = self
            .needles
            .iter()
            .enumerate()
            .filter(|(i, (n, _))| {
                !self
                    .needles
                    .iter()
                    .enumerate()
                    .any(|(j, (m, _))| j != *i && m.len() <= n.len() && n.contains(m.as_str()))
            })
            .map(|(_, (n, _))| n.clone())
            .collect();
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (n, mask) in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), mask);
            }
        }
        mask_pem_keys(&out)
    }

    /// Whether `text` holds a secret in a form this redactor masks, or a PEM private key.
    pub fn finds(&self, text: &str) -> bool {
        self.least.iter().any(|n| text.contains(n.as_str())) || text.contains("PRIVATE KEY-----")
    }

    /// `redact` on every string of a JSON value, keys included: the result is still JSON whatever
    /// the secrets hold.
    pub fn redact_json(&self, v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.redact(&s)),
            Value::Array(a) => Value::Array(a.into_iter().map(|x| self.redact_json(x)).collect()),
            Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (self.redact(&k), self.redact_json(x)))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// Replaces every PEM private key block (`-----BEGIN ... PRIVATE KEY-----` to its END line, or to
/// the end of the text when there is none) with `PEM_KEY_MASK`: a key provision was not told
/// about (a tool printing a file, a template of the user's) is masked too. Works on raw text and
/// on JSON, whose escaped newlines sit inside the block.
fn mask_pem_keys(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(BEGIN) {
        let after = &rest[i + BEGIN.len()..];
        let label = after.find("-----").map(|j| &after[..j]);
        match label {
            Some(label) if is_private_key_label(label) => {
                out.push_str(&rest[..i]);
                out.push_str(PEM_KEY_MASK);
                let body = &after[label.len() + "-----".len()..];
                let end = format!("-----END {label}-----");
                rest = body.find(&end).map_or("", |k| &body[k + end.len()..]);
            }
            _ => {
                out.push_str(&rest[..i + BEGIN.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `PRIVATE KEY`, `EC PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, ...
fn is_private_key_label(label: &str) -> bool {
    label.len() <= 40
        && label.contains("PRIVATE KEY")
        && label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EC P-256 key (made for this test, used nowhere), PKCS#8 PEM.
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgX2bQ1sG8l8Zk0b4R
7yq4cZ2mV0o7m1k3s0F1nCz1jX6hRANCAATq0m0l4Q3b0mB9gZlq1qQ6v0w7r8w2
d4qk2lXc5m2b7qz9x0X8vJjK8bq6n5f2m1L0c9a8b7c6d5e4f3g2h1i0
-----END PRIVATE KEY-----";

    fn registry() -> Secrets {
        let mut s = Secrets::default();
        s.insert(
            SecretKey::DatabasePassword(crate::secret::SiteRef::ONE),
            Secret::new(r#"a'b\c$d"#.into(), "test".into()),
        );
        s.insert(
            SecretKey::TlsKey(crate::secret::SiteRef::ONE),
            Secret::new(KEY.into(), "test".into()),
        );
        s
    }

    fn body_lines() -> Vec<&'static str> {
        KEY.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into(), "file x".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", registry()).contains("a'b"));
    }

    #[test]
    fn redactor_masks_raw_and_escaped_forms() {
        let r = registry().redactor();
        for text in [
            r#"x a'b\c$d y"#,
            r#"IDENTIFIED BY 'a\'b\\c$d'"#,
            r#"'password' => 'a\'b\\c$d',"#,
        ] {
            let out = r.redact(text);
            assert!(!out.contains("b\\c") && !out.contains("a'b"), "{out}");
            assert!(out.contains("<secret database.password hidden>"), "{out}");
        }
    }

    #[test]
    fn every_form_a_redactor_masks_is_found_and_so_is_a_placeholder() {
        let s = registry();
        let r = s.redactor();
        // `finds` looks for fewer needles than `redact` replaces: each form alone still counts.
        for (needle, _) in &r.needles {
            assert!(r.finds(&format!("x{needle}y")), "{needle}");
            assert!(s.held_in(&r, needle), "{needle}");
        }
        assert!(s.held_in(&r, &format!("k = {}\n", placeholder(s.entries[0].0))));
        assert!(!s.held_in(&r, "a'b\\c nothing secret <secret elsewhere>"));
    }

    #[test]
    fn a_registered_key_is_masked_whole_line_by_line_and_in_json() {
        let r = registry().redactor();
        let file = format!("{KEY}\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        let json = serde_json::Value::String(file.clone()).to_string();
        for text in [file.clone(), json] {
            let out = r.redact(&text);
            assert!(out.contains("<secret site.tls.key hidden>"), "{out}");
            assert!(
                out.contains("BEGIN CERTIFICATE"),
                "the certificate stays: {out}"
            );
            for l in body_lines() {
                assert!(!out.contains(l), "{out}");
            }
        }
        // One line alone, as a diff or a tool's message may quote it.
        for l in body_lines() {
            let out = r.redact(&format!("+{l}"));
            assert_eq!(out, "+<secret site.tls.key hidden>");
        }
    }

    #[test]
    fn any_pem_private_key_is_masked_even_unregistered() {
        let r = Redactor::default();
        let rsa = KEY.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        let cut = KEY.lines().take(3).collect::<Vec<_>>().join("\n");
        for text in [
            format!("before\n{KEY}\nafter"),
            format!("before\n{rsa}\nafter"),
            serde_json::Value::String(format!("before\n{KEY}\nafter")).to_string(),
            format!("before\n{cut}"),
        ] {
            let out = r.redact(&text);
            assert!(
                out.contains("before") && out.contains(PEM_KEY_MASK),
                "{out}"
            );
            for l in body_lines() {
                assert!(!out.contains(l), "{out}");
            }
        }
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(r.redact(cert), cert);
    }

    #[test]
    fn masked_json_is_still_json_whatever_the_secret_holds() {
        let mut s = Secrets::default();
        s.insert(
            SecretKey::DatabasePassword(crate::secret::SiteRef::ONE),
            Secret::new(r#"web-01"\"#.into(), "test".into()),
        );
        let r = s.redactor();
        let v = serde_json::json!({ "web-01\"\\": ["x web-01\"\\ y", KEY], "n": 1 });
        let out = r.redact_json(v);
        let text = out.to_string();
        assert!(
            !text.contains("web-01") && !text.contains("MIGHAgEA"),
            "{text}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        // Text redaction keeps a quoted form quoted.
        let json = serde_json::json!({ "p": r#"web-01"\"# }).to_string();
        assert!(
            serde_json::from_str::<serde_json::Value>(&r.redact(&json)).is_ok(),
            "{}",
            r.redact(&json)
        );
    }

    #[test]
    fn templates_get_a_value_or_its_placeholder_only_for_registered_keys() {
        let s = registry();
        assert_eq!(
            s.shown(
                SecretKey::DatabasePassword(crate::secret::SiteRef::ONE),
                true
            )
            .as_deref(),
            Some(r#"a'b\c$d"#)
        );
        let hidden = s
            .shown(SecretKey::TlsKey(crate::secret::SiteRef::ONE), false)
            .unwrap();
        assert!(hidden.contains("<secret site.tls.key hidden") && !hidden.contains("PRIVATE"));
        assert_eq!(
            s.shown(SecretKey::ReplicationPassword { many: false }, true),
            None
        );
    }

    #[test]
    fn stand_ins_take_the_place_of_values_and_placeholders_alone() {
        let s = registry();
        let (a, b) = (s.stand_ins(0), s.stand_ins(1));
        let v = serde_json::json!({
            "db": { "password": r#"a'b\c$d"#, "name": "foobar" },
            "shown": [placeholder(SecretKey::TlsKey(crate::secret::SiteRef::ONE))],
        });
        let swapped = s.swap_in_json(v, &a);
        let text = swapped.to_string();
        assert!(
            !text.contains("a'b") && !text.contains("hidden") && text.contains("foobar"),
            "{text}"
        );
        let pw = swapped["db"]["password"].as_str().unwrap();
        assert_eq!(a.redactor().redact(pw), "<secret database.password hidden>");
        let other = b
            .get(SecretKey::DatabasePassword(crate::secret::SiteRef::ONE))
            .unwrap();
        assert!(!other.is(pw) && other.value.len() == pw.len());
    }

    #[test]
    fn a_derived_secret_is_the_hmac_it_always_was() {
        // The application's salt: changing it would log every user of the site out.
        let pw = Secret::new("pw".into(), "test".into());
        let salt = pw.derive(&[b"provision app salt\0", b"foobar.com"], "derived".into());
        assert!(salt.is("8154e095df0e65d2525665c7a16d606eeca2e479d1694645e225f7965c5b941e"));
    }

    #[test]
    fn control_characters_and_empty_secrets_are_refused() {
        assert!(check_secret_value("").is_err());
        assert!(check_secret_value("a\nb").is_err());
        assert!(check_secret_value(r#"'"$\;{}()`"#).is_ok());
    }
}
