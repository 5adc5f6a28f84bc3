//! `[database]`: names, users and their secrets. Secrets are read here (environment or file) and
//! never shown: messages name where a secret comes from, not what it is.

use super::check::Checker;
use super::sources::SECRET_FILE_LIMIT;
use super::{Database, Replication};
use crate::error::shown;
use crate::inventory::{RawDatabase, RawHost};
use crate::names::*;
use crate::secret::{check_secret_value, Secret, SecretKey};
use std::ops::Range;
use toml::Spanned;

/// Databases MariaDB keeps for itself: provision would grant the application user all of one.
const SYSTEM_DATABASES: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];
/// Accounts MariaDB or Debian create and rely on: provision would reset their password or grants.
/// Compared in any case, as a `Root` next to `root` invites mistakes even where it is distinct.
const SYSTEM_USERS: [&str; 5] = ["root", "mariadb.sys", "mysql", "debian-sys-maint", "PUBLIC"];

fn not_reserved(
    name: String,
    reserved: &[&str],
    what: &str,
) -> Result<String, crate::error::Allowed> {
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
        Err(format!(
            "a name other than the {what} {} (in any case)",
            reserved.join(", ")
        )
        .into())
    } else {
        Ok(name)
    }
}

fn database_name(v: &str) -> Result<String, crate::error::Allowed> {
    not_reserved(
        parse_sql_ident(v, 64)?,
        &SYSTEM_DATABASES,
        "system databases",
    )
}

fn user_name(v: &str) -> Result<String, crate::error::Allowed> {
    not_reserved(parse_sql_ident(v, 32)?, &SYSTEM_USERS, "system accounts")
}

impl Checker<'_> {
    pub(super) fn database(&mut self, d: &RawDatabase, hosts: &[RawHost]) -> Option<Database> {
        let name = self.check(&d.name, "database.name", database_name);
        let user = self.check(&d.user, "database.user", user_name);
        let password = self.secret(
            &d.password_env,
            &d.password_file,
            "password",
            d.span.clone(),
        );
        let wants_replica = hosts.iter().any(|h| {
            h.roles
                .get_ref()
                .iter()
                .any(|r| r.get_ref() == "db-replica")
        });
        let given = d.replication_password_env.is_some()
            || d.replication_password_file.is_some()
            || d.replication_user.is_some();
        let replication = if wants_replica || given {
            let ruser = match &d.replication_user {
                Some(u) => self.check(u, "database.replication_user", user_name),
                None => Some("replicator".to_string()),
            };
            if let (Some(u), Some(r)) = (&user, &ruser) {
                if u.eq_ignore_ascii_case(r) {
                    // Point at the key the user wrote; without replication_user, at database.user.
                    let (span, key, other) = match &d.replication_user {
                        Some(ru) => (ru.span(), "database.replication_user", "database.user"),
                        None => (
                            d.user.span(),
                            "database.user",
                            "the default replication_user",
                        ),
                    };
                    self.fail(span, key, format!(
                        "found {}, the same as {other}; allowed: a replication user other than the application user, which must not hold replication privileges",
                        shown(r)
                    ));
                }
            }
            let rpw = self.secret(
                &d.replication_password_env,
                &d.replication_password_file,
                "replication_password",
                d.span.clone(),
            );
            self.secrets.insert(SecretKey::ReplicationPassword, rpw?);
            Some(Replication { user: ruser? })
        } else {
            None
        };
        self.secrets.insert(SecretKey::DatabasePassword, password?);
        Some(Database {
            name: name?,
            user: user?,
            replication,
        })
    }

    fn secret(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        key: &str,
        table_span: Range<usize>,
    ) -> Option<Secret> {
        match (env, file) {
            (Some(e), Some(f)) => {
                let span = e.span().start.max(f.span().start)..e.span().end.max(f.span().end);
                self.fail(
                    span,
                    &format!("database.{key}_env"),
                    format!("both {key}_env and {key}_file are set; allowed: exactly one of them"),
                );
                None
            }
            (None, None) => {
                self.fail(
                    table_span,
                    "database",
                    format!("no {key}: allowed: {key}_env = \"VARIABLE\" or {key}_file = \"path\""),
                );
                None
            }
            (Some(e), None) => {
                let k = format!("database.{key}_env");
                let name = self.check(e, &k, parse_env_name)?;
                let origin = format!("environment variable {name}");
                match self.sources.env_var(&name) {
                    None => {
                        self.fail(e.span(), &k, format!("{origin} is not set; allowed: a non-empty value of printable characters"));
                        None
                    }
                    Some(v) => self.secret_value(v, origin, e.span(), &k),
                }
            }
            (None, Some(f)) => {
                let k = format!("database.{key}_file");
                let rel = self.check(f, &k, parse_local_path)?;
                let full = self.opened_path(&rel);
                let origin = format!("file {}", full.display());
                let bytes = match self.sources.read_file(&full, SECRET_FILE_LIMIT) {
                    Ok(b) => b,
                    Err(err) => {
                        self.fail(f.span(), &k, format!("cannot read {origin}: {err}"));
                        return None;
                    }
                };
                if bytes.len() > SECRET_FILE_LIMIT {
                    self.fail(f.span(), &k, format!(
                        "{origin} is longer than {SECRET_FILE_LIMIT} bytes; allowed: a file holding only the password (at most 512 bytes)"
                    ));
                    return None;
                }
                match String::from_utf8(bytes) {
                    // One trailing newline is what `echo pw > file` leaves; it is not part of the secret.
                    Ok(v) => {
                        let v = v
                            .strip_suffix('\n')
                            .map(|s| s.strip_suffix('\r').unwrap_or(s).to_string())
                            .unwrap_or(v);
                        self.secret_value(v, origin, f.span(), &k)
                    }
                    Err(_) => {
                        self.fail(f.span(), &k, format!("{origin} is not UTF-8 text"));
                        None
                    }
                }
            }
        }
    }

    fn secret_value(
        &mut self,
        v: String,
        origin: String,
        span: Range<usize>,
        key: &str,
    ) -> Option<Secret> {
        match check_secret_value(&v) {
            Ok(()) => Some(Secret::new(v, origin)),
            Err(why) => {
                self.fail(span, key, format!("{origin}: {why}"));
                None
            }
        }
    }
}
