//! `[database]`: names, users and their secrets. Secrets are read here (environment or file) and
//! never shown: messages name where a secret comes from, not what it is.

use super::check::Checker;
use super::sources::SECRET_FILE_LIMIT;
use super::{Database, Replication};
use crate::error::shown;
use crate::inventory::{RawDatabase, RawInventory};
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
    /// The site's database and its user; the password is registered as the site's.
    pub(super) fn database(&mut self, d: &RawDatabase) -> Option<Database> {
        let name = self.check(&d.name, "database.name", database_name);
        let user = self.check(&d.user, "database.user", user_name);
        let password = self.secret(
            &d.password_env,
            &d.password_file,
            "database",
            "password",
            d.span.clone(),
        );
        if self.at.many {
            for (v, k) in [
                (&d.replication_user, "replication_user"),
                (&d.replication_password_env, "replication_password_env"),
                (&d.replication_password_file, "replication_password_file"),
            ] {
                if let Some(v) = v {
                    self.fail(v.span(), &format!("database.{k}"), "found a replication key in a site's database; allowed: the replication account once for every site, in [replication] (user, password_env or password_file)".into());
                }
            }
        }
        self.secrets
            .insert(SecretKey::DatabasePassword(self.at), password?);
        Some(Database {
            name: name?,
            user: user?,
        })
    }

    /// The replication account, when a replica needs one or the inventory gives one: `[database]`'s
    /// replication keys in the one-site form, `[replication]` in the `[[sites]]` form.
    pub(super) fn replication(&mut self, raw: &RawInventory) -> Option<Option<Replication>> {
        let wants_replica = raw.hosts.iter().any(|h| {
            h.roles
                .get_ref()
                .iter()
                .any(|r| r.get_ref() == "db-replica")
        });
        let (user, env, file, span, table) = match (&raw.replication, raw.many) {
            (Some(r), true) => (
                &r.user,
                &r.password_env,
                &r.password_file,
                r.span.clone(),
                "replication",
            ),
            (None, true) if wants_replica => {
                self.fail(0..0, "replication", "missing: a \"db-replica\" host needs the replication account; allowed: a [replication] table with user and password_env or password_file".into());
                return None;
            }
            (Some(r), false) => {
                self.fail(r.span.clone(), "replication", "found [replication] with the one-site form; allowed: database.replication_user and database.replication_password_env or _file".into());
                return None;
            }
            (None, _) if raw.many => return Some(None),
            (None, _) => {
                let d = &raw.sites.first()?.database;
                let given = d.replication_password_env.is_some()
                    || d.replication_password_file.is_some()
                    || d.replication_user.is_some();
                if !wants_replica && !given {
                    return Some(None);
                }
                (
                    &d.replication_user,
                    &d.replication_password_env,
                    &d.replication_password_file,
                    d.span.clone(),
                    "database",
                )
            }
        };
        let (user_key, prefix) = if table == "replication" {
            ("replication.user", "password")
        } else {
            ("database.replication_user", "replication_password")
        };
        let ruser = match user {
            Some(u) => self.check(u, user_key, user_name),
            None => Some("replicator".to_string()),
        };
        for (i, def) in raw.sites.iter().enumerate() {
            let site_user = def.database.user.get_ref();
            let Some(r) = &ruser else { break };
            if !site_user.eq_ignore_ascii_case(r) {
                continue;
            }
            let at = crate::secret::SiteRef {
                index: i as u16,
                many: raw.many,
            };
            let users = format!("{}.user", at.key("database"));
            // Point at the key the user wrote; without a replication user, at the site's user.
            let (span, key, other) = match user {
                Some(ru) => (ru.span(), user_key.to_string(), users),
                None => (
                    def.database.user.span(),
                    users,
                    "the default replication_user".to_string(),
                ),
            };
            self.fail(span, &key, format!(
                "found {}, the same as {other}; allowed: a replication user other than the application user, which must not hold replication privileges",
                shown(r)
            ));
        }
        let rpw = self.secret(env, file, table, prefix, span);
        self.secrets
            .insert(SecretKey::ReplicationPassword { many: raw.many }, rpw?);
        Some(Some(Replication { user: ruser? }))
    }

    /// A secret from `{key}_env` or `{key}_file` of `table`.
    fn secret(
        &mut self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        table: &str,
        key: &str,
        table_span: Range<usize>,
    ) -> Option<Secret> {
        match (env, file) {
            (Some(e), Some(f)) => {
                let span = e.span().start.max(f.span().start)..e.span().end.max(f.span().end);
                self.fail(
                    span,
                    &format!("{table}.{key}_env"),
                    format!("both {key}_env and {key}_file are set; allowed: exactly one of them"),
                );
                None
            }
            (None, None) => {
                self.fail(
                    table_span,
                    table,
                    format!("no {key}: allowed: {key}_env = \"VARIABLE\" or {key}_file = \"path\""),
                );
                None
            }
            (Some(e), None) => {
                let k = format!("{table}.{key}_env");
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
                let k = format!("{table}.{key}_file");
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
