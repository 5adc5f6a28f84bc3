//! The state provision keeps on a host, in one place: the directory layout under
//! `/var/lib/provision`, the lock, reloads left pending, the generations (one per apply or rollback
//! that changed the host, with backups of what it replaced), the mark a host keeps while it needs
//! attention, and the per-host key that keyed digests of secret files are made with. The shell side
//! lives in `script/apply.sh`; this module is the Rust side: paths, the probe snippet that reads the
//! state, and pure parsers of what it prints.

use crate::desired::Handler;
use serde::{Deserialize, Serialize};

/// A path in provision's state directory on the host, as a literal (consts are made with it).
macro_rules! state_path {
    ($rest:literal) => {
        concat!("/var/lib/provision", $rest)
    };
}
pub(crate) use state_path;

/// Provision's state directory on the host. Shell text with no parameter keeps its own copy:
/// `script/apply.sh`'s `P=` and `facts/probe/dpkg.sh`'s cache (tests hold them to this).
pub const DIR: &str = state_path!("");
/// Held (flock) by the process tree that changes the host: the apply script and its children.
pub const LOCK: &str = state_path!("/lock");
/// Handlers recorded before the swap and removed when they have run.
pub const PENDING: &str = state_path!("/pending");
pub const GENERATIONS: &str = state_path!("/generations");
/// The id of the newest generation.
pub const CURRENT: &str = state_path!("/current");
/// Why the host needs attention (an apply not confirmed by its health checks, a failed rollback).
pub const ATTENTION: &str = state_path!("/attention");
/// The token of a generation that put live what can lock the operator out (a ruleset, sshd's
/// settings) and that no new SSH connection has confirmed yet; its guard rolls it back
/// `GUARD_SECS` after its apply ended unless one removes it (`confirm_guard`).
pub const GUARD: &str = state_path!("/guard");
/// Seconds a guarded generation waits, once its apply has ended, for a new SSH connection.
pub const GUARD_SECS: u32 = 60;
/// Scripts being run, detached from the SSH connection, and their logs.
pub const RUNS: &str = state_path!("/run");
/// A random per-host key: plans hold keyed digests of secret files, useless without it.
pub const KEY: &str = state_path!("/plan.key");
pub const STAGES: &str = state_path!("/stage");
/// Generations kept with their backups (the newest is never pruned).
pub const KEEP: usize = 10;

/// What the probe learned about provision's own state on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// The newest generation, `None` on a host provision never changed.
    pub current: Option<String>,
    pub attention: Option<String>,
    pub pending: Vec<Handler>,
    pub key: Option<String>,
    /// Who holds the lock now, if anyone.
    pub locked_by: Option<String>,
    /// The token of a guard still armed: a generation no new SSH connection has confirmed yet.
    pub guard: Option<String>,
}

/// The probe snippet: prints `@state` lines, read back by `HostState::read`. Creates the state
/// directory and the key on first contact (nothing else is written).
pub fn probe() -> String {
    format!(
        "if [ ! -s {KEY} ]; then (umask 077 && mkdir -p {DIR} && k=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n') && echo \"$k\" > {KEY}.new && mv {KEY}.new {KEY}); fi\n\
         k=; read -r k < {KEY}; [ -z \"$k\" ] || echo \"@state key $k\"\n\
         if [ -f {CURRENT} ]; then read -r g < {CURRENT}; echo \"@state current $g\"; fi\n\
         if [ -f {ATTENTION} ]; then while IFS= read -r l; do echo \"@state attention $l\"; done < {ATTENTION}; fi\n\
         if [ -f {GUARD} ]; then read -r g < {GUARD}; echo \"@state guard $g\"; fi\n\
         if [ -f {PENDING} ]; then while IFS= read -r l; do echo \"@state pending $l\"; done < {PENDING}; fi\n\
         pid=; who=; {{ read -r pid who < {DIR}/lock.info; }} 2>/dev/null; [ -n \"$pid\" ] && [ -d \"/proc/$pid\" ] && echo \"@state locked $who\"\n"
    )
}

impl HostState {
    /// Reads the `@state` lines (without their tag).
    pub fn read(lines: &[String]) -> HostState {
        let mut s = HostState::default();
        let mut attention: Vec<&str> = Vec::new();
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "key" if is_hex(value) => s.key = Some(value.to_string()),
                "current" if !value.is_empty() => s.current = Some(value.to_string()),
                "attention" => attention.push(value),
                "pending" => {
                    if let Some(h) = Handler::parse_line(value) {
                        if !s.pending.contains(&h) {
                            s.pending.push(h);
                        }
                    }
                }
                "locked" => s.locked_by = Some(value.trim().to_string()),
                "guard" if !value.is_empty() => s.guard = Some(value.to_string()),
                _ => {}
            }
        }
        if !attention.is_empty() {
            s.attention = Some(attention.join("; "));
        }
        s
    }
}

fn is_hex(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The command a NEW SSH connection runs to confirm a guarded generation: it disarms the guard
/// armed with `token`, under the host lock (so a guard that has started to roll back is not
/// "confirmed"), and fails when the guard is gone or another's.
pub fn confirm_guard(token: &str) -> String {
    let t = crate::quote::shell_word(token);
    format!(
        "exec 9>> {LOCK} && flock -w 30 9 && g= && {{ read -r g < {GUARD}; }} 2> /dev/null; \
         if [ \"$g\" = {t} ]; then rm -f {GUARD} && echo confirmed; \
         else echo \"the guard is no longer armed for this run (found: ${{g:-none}}): it may have rolled the generation back\"; exit 1; fi"
    )
}

/// A keyed digest of a secret file's content: `sha256(key ‖ sha256(content))`. Stored in plans
/// instead of a plain hash, which would let anyone holding the plan test password guesses offline;
/// without the host's key this one says nothing.
pub fn keyed_digest(key: &str, content: &[u8]) -> String {
    let inner = crate::render::manifest::sha256_hex(content);
    format!(
        "keyed:{}",
        crate::render::manifest::sha256_hex(format!("{key}{inner}").as_bytes())
    )
}

/// One generation as `history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub id: String,
    /// `apply` or `rollback`.
    pub kind: String,
    /// Unix time on the host's clock.
    pub time: u64,
    pub by: String,
    pub summary: String,
    /// `applied` (health checks not yet run), `checked`, `check-failed`, `rolled-back`,
    /// `rollback-failed`.
    pub status: String,
    /// Paths it replaced, created or removed.
    pub paths: Vec<String>,
    /// Handlers it ran (`reload nginx`, `run mariadb-bootstrap`).
    pub ran: Vec<String>,
    /// Whether its backups are still there (old ones are pruned).
    pub restorable: bool,
}

/// The snippet that lists every generation: `@g ID KEY VALUE` lines.
pub fn history_probe() -> String {
    format!(
        "cd {GENERATIONS} 2>/dev/null || exit 0\n\
         for g in *; do [ -d \"$g\" ] || continue\n\
           [ -f \"$g/info\" ] && while IFS= read -r l; do echo \"@g $g $l\"; done < \"$g/info\"\n\
           [ -f \"$g/status\" ] && {{ read -r s < \"$g/status\"; echo \"@g $g status $s\"; }}\n\
           [ -f \"$g/swapped\" ] && while IFS= read -r l; do echo \"@g $g path $l\"; done < \"$g/swapped\"\n\
           [ -f \"$g/ran\" ] && while IFS= read -r l; do echo \"@g $g ran $l\"; done < \"$g/ran\"\n\
           [ -d \"$g/files\" ] && echo \"@g $g restorable yes\"\n\
         done\n"
    )
}

/// Reads `history_probe` output into generations, oldest first.
pub fn read_history(output: &str) -> Vec<Generation> {
    let mut gens: Vec<Generation> = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("@g ") else {
            continue;
        };
        let mut it = rest.splitn(3, ' ');
        let (Some(id), Some(key)) = (it.next(), it.next()) else {
            continue;
        };
        let value = it.next().unwrap_or("").to_string();
        let g = match gens.iter_mut().position(|g| g.id == id) {
            Some(i) => &mut gens[i],
            None => {
                gens.push(Generation {
                    id: id.to_string(),
                    ..Generation::default()
                });
                gens.last_mut().expect("just pushed")
            }
        };
        match key {
            "kind" => g.kind = value,
            "time" => g.time = value.parse().unwrap_or(0),
            "by" => g.by = value,
            "summary" => g.summary = value,
            "status" => g.status = value,
            "path" => g
                .paths
                .push(value.split('\t').next().unwrap_or("").to_string()),
            "ran" => g.ran.push(value),
            "restorable" => g.restorable = true,
            _ => {}
        }
    }
    gens.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    gens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lines_are_read_back() {
        let lines: Vec<String> = [
            "key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "current G20261123-1",
            "attention apply G20261123-1 not confirmed by its health checks",
            "pending reload nginx",
            "pending reload nginx",
            "pending run mariadb-bootstrap",
            "locked root@ctl pid 5",
            "guard G000007-20261206T100000Z.1765015200000000000.42",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = HostState::read(&lines);
        assert_eq!(s.current.as_deref(), Some("G20261123-1"));
        assert!(s.key.is_some());
        assert_eq!(
            s.pending,
            vec![Handler::reload("nginx"), Handler::run("mariadb-bootstrap")]
        );
        assert!(s.attention.unwrap().contains("not confirmed"));
        assert_eq!(s.locked_by.as_deref(), Some("root@ctl pid 5"));
        assert_eq!(
            s.guard.as_deref(),
            Some("G000007-20261206T100000Z.1765015200000000000.42")
        );
    }

    #[test]
    fn a_key_that_is_not_hex_is_ignored() {
        let s = HostState::read(&["key $(rm -rf /)".to_string()]);
        assert_eq!(s.key, None);
    }

    #[test]
    fn keyed_digests_depend_on_the_key() {
        let a = keyed_digest("aa", b"password");
        assert_ne!(a, keyed_digest("bb", b"password"));
        assert_ne!(
            a,
            format!("keyed:{}", crate::render::manifest::sha256_hex(b"password"))
        );
        assert_eq!(a, keyed_digest("aa", b"password"));
    }

    #[test]
    fn history_is_read_oldest_first() {
        let out = "@g G2 kind rollback\n@g G2 time 200\n@g G2 status checked\n@g G1 kind apply\n@g G1 time 100\n\
                   @g G1 summary 3 change(s)\n@g G1 path /etc/nginx/nginx.conf\tfile\n@g G1 ran reload nginx\n@g G1 restorable yes\n";
        let h = read_history(out);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].id, "G1");
        assert_eq!(h[0].paths, vec!["/etc/nginx/nginx.conf"]);
        assert_eq!(h[0].ran, vec!["reload nginx"]);
        assert!(h[0].restorable && !h[1].restorable);
        assert_eq!(h[1].kind, "rollback");
    }
}
