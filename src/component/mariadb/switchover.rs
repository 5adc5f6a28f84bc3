//! A planned switchover (`provision promote`): the SQL of each step, and how the servers' answers
//! are read. Pure; `commands/promote.rs` runs the steps in order on the hosts.
//!
//! 1. The primary goes read-only, and says where its binary log stands (GTID position and state).
//! 2. Every replica waits (bounded) until it has replayed up to that position: no write is lost.
//! 3. The replica to promote stops following, starts a binary log of its own from the primary's
//!    state (so the old primary and the other replicas, all standing at that position, can follow
//!    it from there), and becomes writable.
//! 4. The old primary records that position as the one it follows from. Pointing the web hosts at
//!    the new primary and the old primary at it is then an ordinary apply of the edited inventory.

use super::replica::ReplicaFacts;
use crate::quote::{shell_word, sql_string};

/// What a server says of itself before a switchover.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerState {
    pub read_only: bool,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    /// The last GTID of each domain in its binary log.
    pub binlog_pos: String,
    /// The last GTID of each (domain, server) pair in its binary log.
    pub binlog_state: String,
    pub replica: ReplicaFacts,
    /// `MASTER_GTID_WAIT`'s answer: 0 caught up, -1 timed out.
    pub waited: Option<i64>,
}

const STATE_SQL: &str = "SELECT 'read_only', @@read_only; SELECT 'log_bin', @@log_bin; \
     SELECT 'log_slave_updates', @@log_slave_updates; \
     SELECT 'binlog_pos', @@gtid_binlog_pos; SELECT 'binlog_state', @@gtid_binlog_state;";

fn sql(statements: &str) -> String {
    format!("mariadb -NB -e {}", shell_word(statements))
}

/// What a server says of itself: its variables, then its replication threads and whether a seed
/// finished on it (a replica whose copy may lack rows must not become the primary).
pub fn state_command(spec: &crate::spec::Spec) -> String {
    format!(
        "{} && {}",
        sql(STATE_SQL),
        super::replica::state_command(spec)
    )
}

/// Step 1, on the primary: no more writes (`read_only` waits for the transactions under way to
/// commit), then its position.
pub fn freeze_command() -> String {
    sql(&format!("SET GLOBAL read_only = ON; {STATE_SQL}"))
}

/// Undoes step 1 when a replica could not catch up: nothing else was changed.
pub fn thaw_command() -> String {
    sql("SET GLOBAL read_only = OFF;")
}

/// Step 2, on each replica: wait until it has replayed `pos` (at most `secs`).
pub fn catch_up_command(pos: &str, secs: u64) -> String {
    sql(&format!(
        "SELECT 'waited', MASTER_GTID_WAIT({}, {secs});",
        sql_string(pos)
    ))
}

/// Step 3, on the replica to promote: stop following, a binary log of its own that starts where the
/// primary's stands, writable.
pub fn promote_command(primary_state: &str) -> String {
    sql(&format!(
        "STOP SLAVE; RESET SLAVE ALL; RESET MASTER; SET GLOBAL gtid_binlog_state = {}; SET GLOBAL read_only = OFF;",
        sql_string(primary_state)
    ))
}

/// Step 4, on the old primary: it follows the new one from its own last transaction. It holds
/// every row, so it counts as seeded: the apply that makes it a replica must not copy it again.
pub fn demote_command(pos: &str) -> String {
    format!(
        "{} && touch {}",
        sql(&format!("SET GLOBAL gtid_slave_pos = {};", sql_string(pos))),
        shell_word(super::replica::SEED_MARKER)
    )
}

/// Run under a server's host lock for the whole switchover (`promote` holds every server's, so an
/// apply started meanwhile waits or is refused): says it holds the lock by creating `held`, then
/// keeps it until `release` exists, or `secs` have passed (a promote that died does not keep the
/// servers locked for good).
pub fn hold_command(held: &str, release: &str, secs: u64) -> String {
    format!(
        "touch {held} && i=0 && while [ ! -f {release} ] && [ $i -lt {n} ]; do sleep 0.2; i=$((i + 1)); done; rm -f {held} {release}",
        held = shell_word(held),
        release = shell_word(release),
        n = secs * 5
    )
}

/// A GTID list as MariaDB prints it (`0-1-42,1-2-7`); anything else in an answer is refused
/// rather than passed on to the next step.
pub fn is_gtid_list(s: &str) -> bool {
    s.split(',').filter(|g| !g.is_empty()).all(|g| {
        let parts: Vec<&str> = g.split('-').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl ServerState {
    pub fn parse(lines: &[String]) -> ServerState {
        let mut s = ServerState {
            replica: ReplicaFacts::parse(lines),
            ..ServerState::default()
        };
        for line in lines {
            let Some((k, v)) = line.split_once('\t') else {
                continue;
            };
            let v = v.trim();
            match k {
                "read_only" => s.read_only = v == "1",
                "log_bin" => s.log_bin = v == "1",
                "log_slave_updates" => s.log_slave_updates = v == "1",
                "binlog_pos" => s.binlog_pos = v.to_string(),
                "binlog_state" => s.binlog_state = v.to_string(),
                "waited" => s.waited = v.parse().ok(),
                _ => {}
            }
        }
        s
    }

    /// Why this replica cannot be part of a switchover away from `primary`, if it cannot.
    pub fn unfit_replica(&self, primary: &str, promoted: bool) -> Option<String> {
        if let Some(why) = self.replica.reason(primary) {
            return Some(why);
        }
        if promoted && !(self.log_bin && self.log_slave_updates) {
            return Some(
                "it writes no binary log of what it replays (log_bin, log_slave_updates): apply the inventory first, which configures it (a restart of the server)"
                    .into(),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, spec};
    use super::*;

    #[test]
    fn a_servers_variables_and_threads_are_read_from_one_answer() {
        let s = ServerState::parse(&lines(
            "read_only\t1\nlog_bin\t1\nlog_slave_updates\t1\nbinlog_pos\t0-17-42\nbinlog_state\t0-17-42,0-9-3\n*** 1. row ***\n Master_Host: 10.0.0.3\n Slave_IO_Running: Yes\n Slave_SQL_Running: Yes\n*** 1. row ***\nProvision_Database: 1\nProvision_Seeded: yes\n",
        ));
        assert!(s.read_only && s.log_bin && s.log_slave_updates);
        assert_eq!(s.binlog_pos, "0-17-42");
        assert_eq!(s.binlog_state, "0-17-42,0-9-3");
        assert_eq!(s.unfit_replica("10.0.0.3", true), None);
        assert!(s
            .unfit_replica("10.0.0.4", true)
            .unwrap()
            .contains("follows 10.0.0.3"));
        let old = ServerState {
            log_slave_updates: false,
            ..s
        };
        assert_eq!(old.unfit_replica("10.0.0.3", false), None);
        assert!(old
            .unfit_replica("10.0.0.3", true)
            .unwrap()
            .contains("log_slave_updates"));
        assert_eq!(ServerState::parse(&lines("waited\t-1")).waited, Some(-1));
    }

    /// A replica whose seed stopped half-way (no marker) lacks rows: promoting it would lose them.
    #[test]
    fn a_replica_whose_seed_did_not_finish_cannot_be_promoted() {
        let s = ServerState::parse(&lines(
            "read_only\t1\nlog_bin\t1\nlog_slave_updates\t1\n Master_Host: 10.0.0.3\n Slave_IO_Running: Yes\n Slave_SQL_Running: Yes\nProvision_Database: 1\n",
        ));
        assert!(s
            .unfit_replica("10.0.0.3", true)
            .unwrap()
            .starts_with("no seed of the replica finished"));
        assert!(state_command(&spec()).contains("Provision_Seeded"));
    }

    /// The command that keeps a server's lock says it holds it, and ends once released (or when
    /// its time is up), leaving no file behind.
    #[test]
    fn the_lock_is_held_until_released_or_its_time_is_up() {
        let dir = tempfile::tempdir().unwrap();
        let (held, release) = (dir.path().join("held"), dir.path().join("release"));
        let command = hold_command(&held.to_string_lossy(), &release.to_string_lossy(), 30);
        let mut child = std::process::Command::new("sh")
            .args(["-c", &command])
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while !held.exists() {
            assert!(start.elapsed().as_secs() < 10, "never held");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(child.try_wait().unwrap().is_none(), "it let go unreleased");
        std::fs::write(&release, "").unwrap();
        assert!(child.wait().unwrap().success());
        assert!(start.elapsed().as_secs() < 10, "the release was not seen");
        assert!(!held.exists() && !release.exists());
        // Unreleased, it lets go after its time (1 s here).
        let command = hold_command(&held.to_string_lossy(), &release.to_string_lossy(), 1);
        let status = std::process::Command::new("sh")
            .args(["-c", &command])
            .status();
        assert!(status.unwrap().success() && !held.exists());
    }

    #[test]
    fn only_gtid_lists_pass_from_one_step_to_the_next() {
        assert!(is_gtid_list(""));
        assert!(is_gtid_list("0-1-42"));
        assert!(is_gtid_list("0-1-42,1-2-7"));
        assert!(!is_gtid_list("0-1"));
        assert!(!is_gtid_list("0-1-4'2"));
        assert!(!is_gtid_list("0-1-42; DROP"));
    }

    #[test]
    fn positions_reach_the_server_as_sql_strings_in_one_shell_word() {
        assert!(demote_command("0-1-42").starts_with(
            "mariadb -NB -e 'SET GLOBAL gtid_slave_pos = '\\''0-1-42'\\'';' && touch "
        ));
        assert!(promote_command("0-1-42,0-2-3")
            .contains("RESET MASTER; SET GLOBAL gtid_binlog_state = '\\''0-1-42,0-2-3'\\''"));
    }
}
