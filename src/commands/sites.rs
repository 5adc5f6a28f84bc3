//! `delete-site`: what a site that left the inventory still holds (its document root with its
//! uploads, its database and its accounts, its Unix user), removed on purpose, after a backup of
//! both. The site's record, which the web hosts keep when it leaves (`component::app::RETIRED`),
//! says what is its; every value of it is checked again before it reaches a command.

use super::hosts::{context, loaded, run_options};
use crate::apply::{self, run_commands, Context, HostError};
use crate::cli::{DeleteSiteArgs, HostArgs};
use crate::component::app::RETIRED;
use crate::component::backup::DIR;
use crate::component::Registry;
use crate::exit::{self, Usage};
use crate::quote::{shell_word, sql_string};
use crate::spec::{Host, Role};
use crate::ui;
use anyhow::Result;
use std::process::ExitCode;

/// What a web host's record says of a retired site, each value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub name: String,
    pub document_root: String,
    pub database: String,
    pub database_user: String,
}

impl Retired {
    /// Reads a record (`key value` lines); `None` unless every value is one provision writes.
    pub fn parse(text: &str) -> Option<Retired> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_string)
        };
        let r = Retired {
            name: crate::spec::parse_site_name(&get("name")?).ok()?,
            document_root: get("document_root")?,
            database: get("database")?,
            database_user: get("database_user")?,
        };
        let root_ok = crate::names::parse_host_path(&r.document_root).is_ok()
            && crate::spec::document_root_problem(&r.document_root).is_none();
        let idents_ok = [&r.database, &r.database_user]
            .iter()
            .all(|i| crate::names::parse_sql_ident(i, 64).is_ok());
        (root_ok && idents_ok).then_some(r)
    }

    /// On a web host: the document root into a dated archive, then it, the site's user, its PHP
    /// state and its record go.
    fn web_commands(&self, domain: &str, stamp: &str) -> Vec<(String, String)> {
        let archive = format!("{DIR}/{domain}-before-delete-{stamp}.tar.gz");
        let root = shell_word(&self.document_root);
        vec![
            (
                format!(
                    "mkdir -p {DIR} && chmod 700 {DIR} && if [ -d {root} ]; then tar -czf {a}.part -C / {rel} && gzip -t {a}.part && mv {a}.part {a} && echo {a}; fi",
                    a = shell_word(&archive),
                    rel = shell_word(self.document_root.trim_start_matches('/')),
                ),
                format!("the backup of {} failed; nothing was removed", self.document_root),
            ),
            (
                format!(
                    "rm -rf {root} /var/lib/php-sites/{n} && if id -u {n} > /dev/null 2>&1; then userdel {n}; fi && rm -f {rec}",
                    n = shell_word(&self.name),
                    rec = shell_word(&record_of(domain)),
                ),
                format!("removing {} and the user {} failed", self.document_root, self.name),
            ),
        ]
    }

    /// On the database primary: a dump of the database, then it and its user's accounts go.
    fn db_commands(&self, stamp: &str) -> Vec<(String, String)> {
        let dump = format!("{DIR}/{}-before-delete-{stamp}.sql.gz", self.database);
        let drop = format!(
            "SET SESSION group_concat_max_len = 1048576; \
             SET @a = (SELECT GROUP_CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User = {user}); \
             SET @d = IF(@a IS NULL, 'DO 0', CONCAT('DROP USER IF EXISTS ', @a)); \
             PREPARE d FROM @d; EXECUTE d; DEALLOCATE PREPARE d; DROP DATABASE IF EXISTS `{db}`;",
            user = sql_string(&self.database_user),
            db = self.database,
        );
        vec![
            (
                format!(
                    "mkdir -p {DIR} && chmod 700 {DIR} && mariadb-dump --single-transaction --routines --events --triggers --databases {db} | gzip -6 > {d}.part && gzip -t {d}.part && mv {d}.part {d} && echo {d}",
                    db = shell_word(&self.database),
                    d = shell_word(&dump),
                ),
                format!("the backup of the database {} failed; nothing was removed", self.database),
            ),
            (
                format!("mariadb -e {}", shell_word(&drop)),
                format!("dropping the database {} failed", self.database),
            ),
        ]
    }
}

/// Runs `commands` on `host` under its lock, over a connection of its own: their output lines.
fn on(ctx: &Context, host: &Host, commands: &[(String, String)]) -> Result<Vec<String>, HostError> {
    let mut t = apply::connect(ctx, host)?;
    run_commands(ctx, host, t.as_mut(), commands)
}

fn failed(host: &Host, e: HostError) -> ExitCode {
    ui::error(&format!("error: {}: {e}", host.name));
    ExitCode::from(match e {
        HostError::Connect(_) => exit::UNREACHABLE,
        _ => exit::FAILED,
    })
}

pub fn delete_site(registry: &Registry, a: &DeleteSiteArgs) -> Result<ExitCode> {
    let h = HostArgs {
        common: a.common.clone(),
        hosts: Vec::new(),
        json: false,
        trust_new_hosts: a.trust_new_hosts,
        local: false,
        verbose: a.verbose,
        forks: 1,
        ssh_reuse: None,
    };
    let l = loaded(&h)?;
    let domain = crate::names::DomainName::parse(&a.domain)
        .map_err(|e| Usage(format!("--domain {}: allowed: {}", a.domain, e.0)))?
        .to_string();
    if l.spec.sites.iter().any(|s| s.domain.as_str() == domain) {
        return Err(Usage(format!(
            "--domain {domain}: the inventory still has this site; allowed: a site that left it (apply the inventory without it first)"
        ))
        .into());
    }
    let webs: Vec<&Host> = l.spec.hosts_with(Role::Web).collect();
    let primary = l.spec.db_primary();
    let mut names: Vec<String> = webs.iter().map(|w| w.name.clone()).collect();
    if !names.contains(&primary.name) {
        names.push(primary.name.clone());
    }
    let progress = ui::Progress::new(&names, false, a.verbose);
    let ctx = context(registry, &l, run_options(&h, 60), &progress);
    let stamp = chrono_stamp();
    let (r, mut made) = match remove_from_web_hosts(&ctx, &webs, &domain, &stamp) {
        Ok(Some(removed)) => removed,
        Ok(None) => {
            drop(progress);
            return Err(Usage(format!(
                "--domain {domain}: no web host of the inventory keeps a record of this site ({}); nothing was removed",
                record_of(&domain)
            ))
            .into());
        }
        Err((web, e)) => {
            drop(progress);
            return Ok(failed(web, e));
        }
    };
    let done = on(&ctx, primary, &r.db_commands(&stamp));
    drop(progress);
    match done {
        Ok(lines) => {
            made.extend(lines.into_iter().map(|l| format!("{}: {l}", primary.name)));
            for m in made.iter().filter(|m| m.contains(DIR)) {
                ui::line(&format!("kept: {m}"));
            }
            ui::line(&format!(
                "{domain}: deleted: its document root {}, database {}, accounts of {} and user {}",
                r.document_root, r.database, r.database_user, r.name
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(failed(primary, e)),
    }
}

/// A host that failed, and why.
type HostFailed<'h> = (&'h Host, HostError);

/// Where a web host keeps the record of the site `domain` once it left the inventory.
fn record_of(domain: &str) -> String {
    format!("{RETIRED}/{domain}")
}

/// On every web host that keeps the site's record: its files backed up, then removed. The record
/// (the last one read) and what the hosts printed (the backups made, `host: path`); `None` when no
/// web host keeps a record; the host that failed, with why.
fn remove_from_web_hosts<'h>(
    ctx: &Context,
    webs: &[&'h Host],
    domain: &str,
    stamp: &str,
) -> Result<Option<(Retired, Vec<String>)>, HostFailed<'h>> {
    let mut found: Option<Retired> = None;
    let mut made = Vec::new();
    for web in webs {
        let Some(r) = read_record(ctx, web, domain).map_err(|e| (*web, e))? else {
            continue;
        };
        let lines = on(ctx, web, &r.web_commands(domain, stamp)).map_err(|e| (*web, e))?;
        made.extend(lines.into_iter().map(|l| format!("{}: {l}", web.name)));
        found = Some(r);
    }
    Ok(found.map(|r| (r, made)))
}

/// The site's record on `web`: `None` when it keeps none, refused when it is not one provision wrote.
fn read_record(ctx: &Context, web: &Host, domain: &str) -> Result<Option<Retired>, HostError> {
    let record = record_of(domain);
    let lines = on(
        ctx,
        web,
        &[(
            format!("if [ -f {r} ]; then cat {r}; fi", r = shell_word(&record)),
            "reading the site's record failed".into(),
        )],
    )?;
    let text = lines.join("\n");
    if text.trim().is_empty() {
        return Ok(None);
    }
    Retired::parse(&text).map(Some).ok_or_else(|| {
        HostError::Refused(format!(
            "{record} is not a record provision wrote; nothing was removed"
        ))
    })
}

/// `YYYYMMDDTHHMMSSZ` of now, for the backups' names.
fn chrono_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ymd = crate::component::zone::ymd_from_unix(secs as i64);
    let rem = secs % 86_400;
    format!(
        "{ymd:08}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_only_with_values_provision_writes() {
        let ok =
            "name shop\ndocument_root /var/www/shop.example\ndatabase shop\ndatabase_user shop\n";
        let r = Retired::parse(ok).unwrap();
        assert_eq!(r.document_root, "/var/www/shop.example");
        for bad in [
            ok.replace("name shop", "name root"),
            ok.replace("/var/www/shop.example", "/etc"),
            ok.replace("/var/www/shop.example", "/var/www/x; rm -rf /"),
            ok.replace("database shop", "database `x`"),
            ok.replace("database_user shop\n", ""),
        ] {
            assert_eq!(Retired::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn its_commands_back_up_first_and_quote_every_value() {
        let r = Retired::parse(
            "name shop\ndocument_root /var/www/shop.example\ndatabase shop\ndatabase_user shop\n",
        )
        .unwrap();
        let web = r.web_commands("shop.example", "20261206T120000Z");
        assert!(web[0].0.contains("tar -czf /var/backups/provision/shop.example-before-delete-20261206T120000Z.tar.gz.part -C / var/www/shop.example"), "{}", web[0].0);
        assert!(
            web[1].0.starts_with("rm -rf /var/www/shop.example "),
            "{}",
            web[1].0
        );
        let db = r.db_commands("20261206T120000Z");
        assert!(db[0].0.contains("--databases shop "), "{}", db[0].0);
        assert!(
            db[1].0.contains("DROP DATABASE IF EXISTS `shop`"),
            "{}",
            db[1].0
        );
    }
}
