//! A MariaDB replica: the primary's data, then its binary log from the GTID position of that copy,
//! never replayed from the binlog's beginning. An empty replica is seeded with `mariadb-dump
//! --gtid --master-data` from its primary (the replication account may read for that), then follows
//! it. Its facts are the replication threads' state, so a replica that stopped following, or never
//! started, is set up again, with the error in the plan's reason.

use super::{server, sql_path, IRREVERSIBLE, STEP};
use crate::component::{Component, Cx, Need, Out};
use crate::desired::Handler;
use crate::quote::shell_word;
use crate::render::RenderError;
use crate::spec::Spec;

pub struct Replica;
pub static REPLICA: Replica = Replica;

/// How the replica's first copy reaches the primary: a client option file (0600), so the
/// replication password is never on a command line.
fn seed_cnf(spec: &Spec) -> String {
    format!("/var/lib/provision/sql/{}-seed.cnf", spec.database.name)
}

/// Seeds an empty replica from its primary (its own GTID position comes with the copy), then runs
/// the replica's bootstrap (follow the primary from that position). The copy goes through a file:
/// a failed dump must fail the step, not feed an empty copy to the server. It is loaded outside
/// the replica's own binary log: there it would be new transactions of the replica's, in the
/// primary's GTID domain, which a promotion would hand to the others again.
fn step_command(spec: &Spec) -> String {
    let db = &spec.database.name;
    format!(
        "if [ -z \"$(mariadb -NBe 'SELECT @@gtid_slave_pos')\" ] && [ -z \"$(mariadb -NBe {show})\" ]; then \
         f=$(mktemp) && mariadb-dump --defaults-extra-file={cnf} --single-transaction --gtid --master-data=1 --databases {db_word} > \"$f\" \
         && {{ mariadb -e 'STOP SLAVE' > /dev/null 2>&1; mariadb --init-command='SET SESSION sql_log_bin = 0' < \"$f\"; }}; rc=$?; rm -f \"$f\"; [ $rc = 0 ] || exit 1; fi; \
         mariadb < {sql}",
        show = shell_word(&format!("SHOW DATABASES LIKE {}", crate::quote::sql_string(db))),
        cnf = shell_word(&seed_cnf(spec)),
        db_word = shell_word(db),
        sql = shell_word(&sql_path(spec)),
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
        let db = super::db_values(cx, cx.host);
        out.file(
            seed_cnf(cx.spec),
            cx.render("mariadb/seed.cnf", &[("db", db)])?,
        )
        .mode(0o600)
        .sensitive()
        .notify(Handler::run(STEP));
        out.step(STEP, step_command(cx.spec), Some(IRREVERSIBLE));
        Ok(())
    }

    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some("mariadb -e 'SHOW SLAVE STATUS\\G'".into())
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

/// A replica's replication state, from `SHOW SLAVE STATUS\G`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicaFacts {
    /// The primary it follows; `None` when it follows none.
    pub primary: Option<String>,
    pub io_running: String,
    pub sql_running: String,
    pub seconds_behind: Option<u64>,
    pub last_error: Option<String>,
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
                _ => {}
            }
        }
        f
    }

    /// Why the replica must be set up again, if it must.
    pub fn reason(&self, primary: &str) -> Option<String> {
        match &self.primary {
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::lines;
    use super::*;

    #[test]
    fn a_replica_that_follows_its_primary_needs_nothing() {
        let f = ReplicaFacts::parse(&lines(
            "*** 1. row ***\n  Master_Host: 10.0.0.3\n  Slave_IO_Running: Yes\n Slave_SQL_Running: Yes\nSeconds_Behind_Master: 0\n Last_IO_Error: \n",
        ));
        assert_eq!(f.seconds_behind, Some(0));
        assert_eq!(f.reason("10.0.0.3"), None);
    }

    #[test]
    fn a_new_broken_or_misdirected_replica_is_set_up_again_with_the_reason() {
        assert!(ReplicaFacts::parse(&[])
            .reason("10.0.0.3")
            .unwrap()
            .contains("does not follow"));
        let broken = ReplicaFacts::parse(&lines(
            "Master_Host: 10.0.0.3\nSlave_IO_Running: Connecting\nSlave_SQL_Running: Yes\nLast_IO_Error: error connecting to master 'replicator@10.0.0.3:3306'",
        ));
        assert_eq!(
            broken.reason("10.0.0.3").unwrap(),
            "replication is broken (IO thread: Connecting, SQL thread: Yes): error connecting to master 'replicator@10.0.0.3:3306'"
        );
        let elsewhere = ReplicaFacts::parse(&lines(
            "Master_Host: 10.0.0.9\nSlave_IO_Running: Yes\nSlave_SQL_Running: Yes",
        ));
        assert!(elsewhere
            .reason("10.0.0.3")
            .unwrap()
            .contains("follows 10.0.0.9"));
    }
}
