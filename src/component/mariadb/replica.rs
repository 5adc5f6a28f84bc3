//! A MariaDB replica: the primary's data, then its binary log from the GTID position of that copy,
//! never replayed from the binlog's beginning. A replica is seeded with `mariadb-dump --gtid
//! --master-data` from its primary (the replication account may read for that), then follows it.
//! A seed counts only once its last row is in: the seed writes a marker after the load succeeded,
//! and a replica without it (or without the database) is seeded again from scratch, as the dump
//! sets the GTID position and creates the database before any row. Its facts are the marker and
//! the replication threads' state, so a replica whose seed stopped half-way, that stopped
//! following, or never started, is set up again, with the reason in the plan.

use super::{server, sql_path, IRREVERSIBLE, STEP};
use crate::component::{Component, Cx, Need, Out};
use crate::desired::{Handler, HealthCheck};
use crate::health::CheckFailed;
use crate::quote::shell_word;
use crate::render::RenderError;
use crate::spec::Spec;
use crate::transport::Output;

pub struct Replica;
pub static REPLICA: Replica = Replica;

/// How the replica's first copy reaches the primary: a client option file (0600), so the
/// replication password is never on a command line.
const SEED_CNF: &str = crate::host_state::state_path!("/sql/replica-seed.cnf");

/// The marker a seed writes once the copy of every site's database is loaded whole. It stands
/// beside the bootstrap SQL in provision's state, not in a database (a table there would be a
/// transaction of the replica's own, which the others do not have). One for the server: a site
/// added later reaches the replica through the binary log it follows.
pub const SEED_MARKER: &str = crate::host_state::state_path!("/sql/replica.seeded");

/// Some site's database exists on the server: a marker left by a seed whose data went since (a
/// server installed again) does not count.
fn database_sql(spec: &Spec) -> String {
    let names: Vec<String> = spec
        .sites
        .iter()
        .map(|s| crate::quote::sql_string(&s.database.name))
        .collect();
    format!(
        "SELECT COUNT(*) > 0 AS Provision_Database FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({})",
        names.join(", ")
    )
}

/// Seeds the replica from its primary unless a seed finished on it (its GTID position comes with
/// the copy), then runs the replica's bootstrap (follow the primary from that position). The
/// copy goes through a file: a failed dump must fail the step, not feed an empty copy to the
/// server. It replaces whatever a seed that stopped half-way left (`--add-drop-database`), and is
/// loaded outside the replica's own binary log: there it would be new transactions of the
/// replica's, in the primary's GTID domain, which a promotion would hand to the others again.
/// The marker is written only after the load succeeded.
fn step_command(spec: &Spec) -> String {
    let dbs: Vec<String> = spec
        .sites
        .iter()
        .map(|s| shell_word(&s.database.name))
        .collect();
    let first = spec.sites.first().map(sql_path).unwrap_or_default();
    format!(
        "if ! [ -f {mark} ] || [ \"$(mariadb -NBe {exists})\" != 1 ]; then rm -f {mark}; \
         f=$(mktemp) && mariadb-dump --defaults-extra-file={cnf} --single-transaction --gtid --master-data=1 --add-drop-database --databases {dbs} > \"$f\" \
         && {{ mariadb -e 'STOP SLAVE' > /dev/null 2>&1; mariadb --init-command='SET SESSION sql_log_bin = 0' < \"$f\"; }} && touch {mark}; rc=$?; rm -f \"$f\"; [ $rc = 0 ] || exit 1; fi; \
         mariadb < {sql}",
        mark = shell_word(SEED_MARKER),
        exists = shell_word(&database_sql(spec)),
        cnf = shell_word(SEED_CNF),
        dbs = dbs.join(" "),
        sql = shell_word(&first),
    )
}

/// What a replica says of itself, for its facts, its health check and `promote`: its replication
/// threads, whether a site's database exists, and whether a seed finished on it (`ReplicaFacts`).
pub fn state_command(spec: &Spec) -> String {
    format!(
        "mariadb -e {}; [ -f {} ] && echo 'Provision_Seeded: yes'; true",
        shell_word(&format!("SHOW SLAVE STATUS\\G {}\\G", database_sql(spec))),
        shell_word(SEED_MARKER)
    )
}

impl Component for Replica {
    fn name(&self) -> &'static str {
        "mariadb-replica"
    }

    fn after(&self) -> &'static [&'static str] {
        // The primary's bootstrap creates the account the replica connects with.
        &["mariadb"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        server(cx, out)?;
        let first = cx.spec.sites.first();
        let db = super::db_values(cx, cx.host, first);
        let cnf = match first {
            Some(site) => cx.render_for(site, "mariadb/seed.cnf", &[("db", db)])?,
            None => cx.render("mariadb/seed.cnf", &[("db", db)])?,
        };
        out.file(SEED_CNF, cnf)
            .mode(0o600)
            .sensitive()
            .notify(Handler::run(STEP));
        out.step(STEP, step_command(cx.spec), Some(IRREVERSIBLE));
        out.check(HealthCheck::Remote {
            host: cx.host.name.clone(),
            component: self.name().into(),
            what: format!(
                "replication on {} from {}",
                cx.host.name,
                cx.spec.db_primary().name
            ),
            command: state_command(cx.spec),
        });
        Ok(())
    }

    fn read_check(&self, spec: &Spec, answer: &Output) -> Result<String, CheckFailed> {
        let lines: Vec<String> = answer.text().lines().map(str::to_string).collect();
        ReplicaFacts::parse(&lines).check(&spec.db_primary().internal_address().to_string())
    }

    fn probe(&self, cx: &Cx) -> Option<String> {
        Some(state_command(cx.spec))
    }

    fn report(&self, cx: &Cx, lines: &[String]) -> Vec<crate::component::Report> {
        let f = ReplicaFacts::parse(lines);
        let primary = cx.spec.db_primary().internal_address().to_string();
        let text = match f.reason(&primary) {
            Some(why) => why,
            None => format!(
                "replication from {primary}: IO and SQL threads running, {} s behind",
                f.seconds_behind
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        };
        vec![crate::component::Report {
            ok: f.reason(&primary).is_none(),
            text,
        }]
    }

    fn needs(&self, cx: &Cx, lines: &[String]) -> Vec<Need> {
        let primary = cx.spec.db_primary().internal_address().to_string();
        ReplicaFacts::parse(lines)
            .reason(&primary)
            .map(|reason| Need {
                handler: Handler::run(STEP),
                reason,
            })
            .into_iter()
            .collect()
    }
}

/// A replica's state, from `state_command`: its replication threads, and whether it holds a whole
/// copy of the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicaFacts {
    /// The primary it follows; `None` when it follows none.
    pub primary: Option<String>,
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind: Option<u64>,
    pub last_error: Option<String>,
    /// The primary's binary log position the IO thread has read up to, and the one the SQL thread
    /// has applied (file, position): equal when it has replayed all it received.
    pub read: (String, String),
    pub applied: (String, String),
    /// The database exists on it.
    pub database: bool,
    /// A seed finished on it (its marker is there).
    pub seeded: bool,
}

impl ReplicaFacts {
    pub fn parse(lines: &[String]) -> ReplicaFacts {
        let mut f = ReplicaFacts::default();
        for line in lines {
            let Some((k, v)) = line.trim().split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "Master_Host" if !v.is_empty() => f.primary = Some(v.to_string()),
                "Slave_IO_Running" => f.io_running = v.to_string(),
                "Slave_SQL_Running" => f.sql_running = v.to_string(),
                "Seconds_Behind_Master" => f.seconds_behind = v.parse().ok(),
                "Last_IO_Error" | "Last_SQL_Error" if !v.is_empty() => {
                    f.last_error = Some(v.to_string())
                }
                "Master_Log_File" => f.read.0 = v.to_string(),
                "Read_Master_Log_Pos" => f.read.1 = v.to_string(),
                "Relay_Master_Log_File" => f.applied.0 = v.to_string(),
                "Exec_Master_Log_Pos" => f.applied.1 = v.to_string(),
                "Provision_Database" => f.database = v == "1",
                "Provision_Seeded" => f.seeded = v == "yes",
                _ => {}
            }
        }
        f
    }

    /// Why the replica must be set up again, if it must.
    pub fn reason(&self, primary: &str) -> Option<String> {
        // A replica with the database but no finished seed may lack rows, whatever it follows.
        let partial = !(self.seeded && self.database) && (self.database || self.primary.is_some());
        match &self.primary {
            _ if partial => Some(
                "no seed of the replica finished (its copy of the database may lack rows): seeded again from scratch"
                    .into(),
            ),
            None => Some("the replica does not follow its primary yet".into()),
            Some(p) if p != primary => {
                Some(format!("the replica follows {p}, its primary is {primary}"))
            }
            Some(_) if self.io_running != "Yes" || self.sql_running != "Yes" => Some(format!(
                "replication is broken (IO thread: {}, SQL thread: {}){}",
                self.io_running,
                self.sql_running,
                self.last_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )),
            Some(_) => None,
        }
    }

    /// The health check: it follows `primary` with both threads running, and has replayed all it
    /// received (what the IO thread read is what the SQL thread applied, no delay).
    pub fn check(&self, primary: &str) -> Result<String, CheckFailed> {
        if let Some(why) = self.reason(primary) {
            return Err(CheckFailed(why));
        }
        if self.read != self.applied || self.seconds_behind != Some(0) {
            return Err(CheckFailed(format!(
                "not caught up: read {}:{}, applied {}:{}, {} s behind",
                self.read.0,
                self.read.1,
                self.applied.0,
                self.applied.1,
                self.seconds_behind
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into())
            )));
        }
        Ok(format!("follows {primary}, caught up"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, spec};
    use super::*;

    /// What `state_command` prints for a seeded replica of 10.0.0.3, caught up.
    const FOLLOWING: &str = "*** 1. row ***\n  Master_Host: 10.0.0.3\n  Master_Log_File: mysql-bin.000002\n  Read_Master_Log_Pos: 1234\n  Relay_Master_Log_File: mysql-bin.000002\n  Slave_IO_Running: Yes\n Slave_SQL_Running: Yes\n  Exec_Master_Log_Pos: 1234\nSeconds_Behind_Master: 0\n Last_IO_Error: \n*** 1. row ***\nProvision_Database: 1\nProvision_Seeded: yes\n";

    #[test]
    fn a_replica_that_follows_its_primary_needs_nothing() {
        let f = ReplicaFacts::parse(&lines(FOLLOWING));
        assert_eq!(f.seconds_behind, Some(0));
        assert_eq!(f.reason("10.0.0.3"), None);
        assert_eq!(f.check("10.0.0.3").unwrap(), "follows 10.0.0.3, caught up");
    }

    #[test]
    fn a_new_broken_or_misdirected_replica_is_set_up_again_with_the_reason() {
        assert!(ReplicaFacts::parse(&[])
            .reason("10.0.0.3")
            .unwrap()
            .contains("does not follow"));
        let broken = ReplicaFacts::parse(&lines(&FOLLOWING.replace(
            "Slave_IO_Running: Yes",
            "Slave_IO_Running: Connecting\nLast_IO_Error: error connecting to master 'replicator@10.0.0.3:3306'",
        )));
        assert_eq!(
            broken.reason("10.0.0.3").unwrap(),
            "replication is broken (IO thread: Connecting, SQL thread: Yes): error connecting to master 'replicator@10.0.0.3:3306'"
        );
        let elsewhere = ReplicaFacts::parse(&lines(&FOLLOWING.replace("10.0.0.3", "10.0.0.9")));
        assert!(elsewhere
            .reason("10.0.0.3")
            .unwrap()
            .contains("follows 10.0.0.9"));
    }

    /// The dump sets the GTID position and creates the database before its first row: a seed that
    /// stopped half-way looks like a replica that follows its primary, but its marker is missing.
    #[test]
    fn a_replica_whose_seed_did_not_finish_is_seeded_again() {
        let halfway =
            ReplicaFacts::parse(&lines(&FOLLOWING.replace("Provision_Seeded: yes\n", "")));
        assert!(halfway
            .reason("10.0.0.3")
            .unwrap()
            .starts_with("no seed of the replica finished"));
        assert!(halfway.check("10.0.0.3").is_err());
        // Killed before the replica followed anyone: the database is there, the marker is not.
        let unfollowed = ReplicaFacts::parse(&lines("*** 1. row ***\nProvision_Database: 1\n"));
        assert!(unfollowed
            .reason("10.0.0.3")
            .unwrap()
            .starts_with("no seed of the replica finished"));
        // A marker without the database (a server installed again) does not count either.
        let gone = ReplicaFacts::parse(&lines(
            &FOLLOWING.replace("Provision_Database: 1", "Provision_Database: 0"),
        ));
        assert!(gone.reason("10.0.0.3").is_some());
    }

    #[test]
    fn a_replica_that_has_not_replayed_what_it_read_is_not_caught_up() {
        let behind = ReplicaFacts::parse(&lines(
            &FOLLOWING.replace("Exec_Master_Log_Pos: 1234", "Exec_Master_Log_Pos: 900"),
        ));
        assert_eq!(behind.reason("10.0.0.3"), None);
        assert_eq!(
            behind.check("10.0.0.3").unwrap_err().0,
            "not caught up: read mysql-bin.000002:1234, applied mysql-bin.000002:900, 0 s behind"
        );
        let late = ReplicaFacts::parse(&lines(
            &FOLLOWING.replace("Seconds_Behind_Master: 0", "Seconds_Behind_Master: 7"),
        ));
        assert!(late.check("10.0.0.3").is_err());
    }

    /// The seed writes its marker only after the load, and a seed that runs again replaces what
    /// the one before left.
    #[test]
    fn the_seed_marks_the_replica_only_after_its_load_succeeded() {
        let spec = spec();
        let c = step_command(&spec);
        let load = c
            .find("mariadb --init-command='SET SESSION sql_log_bin = 0'")
            .unwrap();
        let mark = format!("&& touch {}", SEED_MARKER);
        assert!(c.find(&mark).unwrap() > load, "{c}");
        assert!(c.contains("--add-drop-database"), "{c}");
        assert!(
            c.starts_with(&format!("if ! [ -f {} ]", SEED_MARKER)),
            "{c}"
        );
        // The same command tells the facts, the health check and promote about the marker.
        assert!(state_command(&spec).contains(SEED_MARKER));
    }
}
