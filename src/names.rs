//! Strong types for the values an inventory feeds into configs, SQL and shell commands.
//!
//! Each constructor accepts only a conservative alphabet, so a value that passed cannot break out of a
//! config line, a SQL identifier or a shell word. The `Err` string says what is allowed; the caller
//! adds where and what was found.

use serde::Serialize;
use std::fmt;

/// A DNS name: dot-separated labels of `a-z`, `0-9` and `-`, stored lowercase without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

const DOMAIN_ALLOWED: &str =
    "a DNS name: labels of letters, digits and '-' (not at either end), 1 to 63 \
characters each, separated by dots, at most 253 characters";

impl DomainName {
    pub fn parse(s: &str) -> Result<Self, crate::error::Allowed> {
        let lower = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if lower.is_empty() || lower.len() > 253 || !lower.split('.').all(is_label) {
            return Err(DOMAIN_ALLOWED.into());
        }
        Ok(DomainName(lower))
    }

    /// A name a site can live under: at least two labels, e.g. `foobar.com`.
    pub fn parse_zone(s: &str) -> Result<Self, crate::error::Allowed> {
        let d = Self::parse(s)?;
        if !d.0.contains('.') {
            return Err(
                format!("{DOMAIN_ALLOWED}, with at least two labels (like foobar.com)").into(),
            );
        }
        Ok(d)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A name relative to the zone (`www`, `shop.eu`) or `@` for the zone apex.
pub fn parse_relative_name(s: &str) -> Result<String, crate::error::Allowed> {
    let lower = s.to_ascii_lowercase();
    if lower == "@" || (lower.len() <= 200 && lower.split('.').all(is_label)) {
        Ok(lower)
    } else {
        Err("'@' or a name relative to the domain: labels of letters, digits and '-', separated by dots".into())
    }
}

/// An inventory host name: one DNS label, also used as the machine's hostname and a directory name.
pub fn parse_host_name(s: &str) -> Result<String, crate::error::Allowed> {
    if is_label(s) {
        Ok(s.to_string())
    } else {
        Err("lowercase letters, digits and '-' (not at either end), 1 to 63 characters".into())
    }
}

/// A MariaDB identifier written unquoted-safe: `[A-Za-z0-9_]`, not all digits, at most `max` bytes.
pub fn parse_sql_ident(s: &str, max: usize) -> Result<String, crate::error::Allowed> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "a SQL identifier: letters, digits and '_', not only digits, 1 to {max} characters"
        )
        .into())
    }
}

/// A Unix login name for SSH.
pub fn parse_unix_user(s: &str) -> Result<String, crate::error::Allowed> {
    let mut bytes = s.bytes();
    let ok = s.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err("a Unix user name: lowercase letters, digits, '_' and '-', starting with a letter or '_', at most 32 characters".into())
    }
}

/// An absolute path on a host that is written into config files: no spaces, quotes or other
/// characters a config or shell could read as syntax, and no `..`.
pub fn parse_host_path(s: &str) -> Result<String, crate::error::Allowed> {
    let ok = s.starts_with('/')
        && s.len() > 1
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
        && !s.split('/').any(|c| c == ".." || c == ".")
        && !s.ends_with('/')
        && !s.contains("//");
    if ok {
        Ok(s.to_string())
    } else {
        Err("an absolute path of letters, digits, '/', '.', '_' and '-', without '..' or a trailing '/'".into())
    }
}

/// A path on the machine running provision (identity file, known_hosts, app directory). It is opened
/// by provision itself, never handed to a shell, so only control characters are refused.
pub fn parse_local_path(s: &str) -> Result<String, crate::error::Allowed> {
    if s.is_empty() || s.chars().any(char::is_control) {
        Err("a file path without control characters (newlines, tabs)".into())
    } else {
        Ok(s.to_string())
    }
}

pub fn parse_env_name(s: &str) -> Result<String, crate::error::Allowed> {
    let mut bytes = s.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(s.to_string())
    } else {
        Err(
            "an environment variable name: letters, digits and '_', not starting with a digit"
                .into(),
        )
    }
}

/// The longest PHP version `parse_php_version` accepts ("99.99"). Names built from the version,
/// like the PHP-FPM socket path, are bounded with it.
pub const PHP_VERSION_MAX_LEN: usize = 5;

/// The `MAJOR.MINOR` PHP version Debian names its packages after (`php8.2-fpm`).
pub fn parse_php_version(s: &str) -> Result<String, crate::error::Allowed> {
    let parts: Vec<&str> = s.split('.').collect();
    let ok = parts.len() == 2
        && s.len() <= PHP_VERSION_MAX_LEN
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err("a PHP version as MAJOR.MINOR, like \"8.2\"".into())
    }
}

/// The longest name DNS allows, without the final dot.
pub const FQDN_MAX: usize = 253;

/// Checks that a name relative to `domain` (or `@`, the domain itself) is, once qualified, still a
/// name DNS allows. Without a domain (it was invalid) there is nothing to check against.
pub fn fqdn_fits(name: &str, domain: Option<&DomainName>) -> Result<(), crate::error::Allowed> {
    let Some(d) = domain else {
        return Ok(());
    };
    let len = if name == "@" {
        d.0.len()
    } else {
        name.len() + 1 + d.0.len()
    };
    if len <= FQDN_MAX {
        Ok(())
    } else {
        Err(format!(
            "a name that makes at most {FQDN_MAX} characters with the domain (this one makes {len})"
        )
        .into())
    }
}

/// An SSH address: an IP address or a DNS name.
pub fn parse_ssh_address(s: &str) -> Result<String, crate::error::Allowed> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(s.to_string());
    }
    DomainName::parse(s)
        .map(|d| d.0)
        .map_err(|_| "an IP address or a DNS name".into())
}

/// An e-mail style SOA contact (`hostmaster@foobar.com`) turned into its zone-file form
/// (`hostmaster.foobar.com.`).
pub fn parse_soa_contact(s: &str) -> Result<String, crate::error::Allowed> {
    const ALLOWED: &str = "an address like hostmaster@foobar.com: a local part of letters, digits, '_' and '-', '@', and a DNS name";
    let (local, domain) = s.split_once('@').ok_or_else(|| ALLOWED.to_string())?;
    let local_ok = !local.is_empty()
        && local.len() <= 63
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let domain = DomainName::parse(domain).map_err(|_| ALLOWED.to_string())?;
    if !local_ok {
        return Err(ALLOWED.into());
    }
    // In the zone it is one name, `local.domain.`, so DNS's length limit covers both parts.
    if local.len() + 1 + domain.0.len() > FQDN_MAX {
        return Err(format!("{ALLOWED}, at most {FQDN_MAX} characters without the '@'").into());
    }
    Ok(format!("{}.{}.", local.to_ascii_lowercase(), domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_lowercased_and_lose_the_root_dot() {
        assert_eq!(
            DomainName::parse("WWW.FooBar.com.").unwrap().as_str(),
            "www.foobar.com"
        );
    }

    #[test]
    fn domain_names_refuse_syntax_characters() {
        for bad in [
            "foo;bar.com",
            "foo bar.com",
            "foo.com\n",
            "$(x).com",
            "-a.com",
            "a..com",
            "{}.com",
            "",
            ".",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_zone_needs_two_labels() {
        assert!(DomainName::parse_zone("localhost").is_err());
        assert!(DomainName::parse_zone("foobar.com").is_ok());
    }

    #[test]
    fn sql_identifiers_refuse_quotes_and_pure_digits() {
        assert!(parse_sql_ident("foo_bar1", 64).is_ok());
        for bad in ["foo-bar", "a'b", "123", "", "a;b", "a`b"] {
            assert!(parse_sql_ident(bad, 64).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_sql_ident(&"a".repeat(65), 64).is_err());
    }

    #[test]
    fn host_paths_refuse_traversal_and_spaces() {
        assert!(parse_host_path("/var/www/foobar.com").is_ok());
        for bad in [
            "var/www",
            "/var/../etc",
            "/var/www ",
            "/a;b",
            "/a/",
            "/",
            "/a//b",
            "/a'b",
        ] {
            assert!(parse_host_path(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn soa_contact_becomes_a_zone_name() {
        assert_eq!(
            parse_soa_contact("hostmaster@foobar.com").unwrap(),
            "hostmaster.foobar.com."
        );
        assert!(parse_soa_contact("host.master@foobar.com").is_err());
        assert!(parse_soa_contact("hostmaster").is_err());
    }

    #[test]
    fn qualified_names_stay_within_253_characters() {
        let d = DomainName::parse(&format!("{}.com", "a".repeat(60))).unwrap();
        assert!(fqdn_fits("@", Some(&d)).is_ok());
        assert!(fqdn_fits(&"b".repeat(253 - 65), Some(&d)).is_ok());
        let e = fqdn_fits(&"b".repeat(253 - 64), Some(&d)).unwrap_err();
        assert!(e.contains("(this one makes 254)"), "{e}");
        assert!(fqdn_fits(&"b".repeat(300), None).is_ok());
    }

    #[test]
    fn soa_contacts_stay_within_253_characters() {
        let domain = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(59),
        ]
        .join(".");
        assert!(parse_soa_contact(&format!("hm@{domain}")).is_err());
        assert!(parse_soa_contact(&format!("h@{}", &domain[2..])).is_ok());
    }

    #[test]
    fn php_versions_are_major_dot_minor() {
        assert!(parse_php_version("8.2").is_ok());
        assert_eq!(
            parse_php_version("99.99").unwrap().len(),
            PHP_VERSION_MAX_LEN
        );
        assert!(parse_php_version("100.1").is_err());
        assert!(parse_php_version("8").is_err());
        assert!(parse_php_version("8.2;").is_err());
    }

    #[test]
    fn unix_users_and_env_names() {
        assert!(parse_unix_user("root").is_ok());
        assert!(parse_unix_user("Root").is_err());
        assert!(parse_env_name("DB_PASSWORD").is_ok());
        assert!(parse_env_name("1DB").is_err());
        assert!(parse_ssh_address("198.18.0.10").is_ok());
        assert!(parse_ssh_address("host.example.org").is_ok());
        assert!(parse_ssh_address("a b").is_err());
    }
}
