//! A secret value (a database password). It has no `Display`, and its `Debug` hides the value, so it
//! cannot leak through a log line, an error message or a `{:?}` by accident; `expose` is the one way
//! out and is only called where a config that needs it is rendered.

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

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<hidden, from {}>)", self.origin)
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

/// Masks every form a secret can take in text provision shows: the raw value and each escaped form
/// the templates write (SQL, PHP, shell), so tool output and diffs quoting a config line stay clean.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    needles: Vec<(String, String)>,
}

impl Redactor {
    pub fn new(secrets: &[(&str, &Secret)]) -> Self {
        let mut needles = Vec::new();
        for (key, s) in secrets {
            let v = s.expose();
            let mask = format!("<secret {key} hidden>");
            let forms: [String; 6] = [
                v.to_string(),
                crate::quote::sql_string(v),
                crate::quote::php_string(v),
                crate::quote::shell_word(v),
                crate::quote::cnf_string(v),
                serde_json::Value::String(v.to_string()).to_string(),
            ];
            for f in forms {
                // Escaped forms carry their quotes; the inner part is what shows up in messages.
                let inner = ['\'', '"']
                    .iter()
                    .find_map(|q| f.strip_prefix(*q).and_then(|x| x.strip_suffix(*q)))
                    .unwrap_or(&f)
                    .to_string();
                for n in [f, inner] {
                    if !n.is_empty() && !needles.iter().any(|(x, _)| *x == n) {
                        needles.push((n, mask.clone()));
                    }
                }
            }
        }
        // Longest first, so a form that contains another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
        Redactor { needles }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (n, mask) in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), mask);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2".into(), "file x".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn redactor_masks_raw_and_escaped_forms() {
        let s = Secret::new(r#"a'b\c$d"#.into(), "test".into());
        let r = Redactor::new(&[("database.password", &s)]);
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
    fn control_characters_and_empty_secrets_are_refused() {
        assert!(check_secret_value("").is_err());
        assert!(check_secret_value("a\nb").is_err());
        assert!(check_secret_value(r#"'"$\;{}()`"#).is_ok());
    }
}
