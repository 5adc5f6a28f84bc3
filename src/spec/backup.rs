//! `[backup]`: a nightly compressed dump of the site's database, kept `keep_days` days, taken on a
//! replica when there is one (the primary keeps serving undisturbed).

use super::check::Checker;
use super::{Host, Role, Spec};
use crate::inventory::{RawBackup, KEEP_DAYS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub keep_days: u32,
    /// When the nightly dump runs, host time.
    pub hour: u8,
    pub minute: u8,
}

pub(super) fn parse_time(v: &str) -> Result<(u8, u8), crate::error::Allowed> {
    let allowed = "a time of day as HH:MM, like \"03:15\"";
    let (h, m) = v.split_once(':').ok_or(allowed)?;
    let ok = |s: &str, max: u8| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u8>().ok())
            .flatten()
            .filter(|n| *n <= max)
    };
    Ok((ok(h, 23).ok_or(allowed)?, ok(m, 59).ok_or(allowed)?))
}

impl Spec {
    /// The host that takes the dumps: the first replica, else the primary.
    pub fn backup_host(&self) -> &Host {
        self.hosts_with(Role::DbReplica)
            .next()
            .unwrap_or_else(|| self.db_primary())
    }
}

impl Checker<'_> {
    pub(super) fn backup(&mut self, b: &RawBackup) -> Option<Backup> {
        let keep_days = match &b.keep_days {
            Some(k) => self.int(k, "backup.keep_days", KEEP_DAYS)? as u32,
            None => 7,
        };
        let (hour, minute) = match &b.time {
            Some(t) => self.check(t, "backup.time", parse_time)?,
            None => (3, 15),
        };
        Some(Backup {
            keep_days,
            hour,
            minute,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_of_day_parse() {
        assert_eq!(parse_time("03:15").unwrap(), (3, 15));
        assert_eq!(parse_time("23:59").unwrap(), (23, 59));
        for bad in ["24:00", "3:15", "03:60", "0315", "03:1x", "-1:00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
