//! Backups (`[backup]`): the dump script on every database host, and on the backup host (the first
//! replica, else the primary) its nightly schedule: a systemd timer where systemd runs, else a
//! cron line (cron is installed; its line does nothing where systemd runs). `provision backup`
//! runs the script now; `provision restore` runs it on the primary first, as a safety copy.

use super::{Component, Cx, Need, Out};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Role;
use serde_json::json;

pub struct Backup;
pub static BACKUP: Backup = Backup;

/// The dump script on every database host; prints the path of the dump it made.
pub const SCRIPT: &str = "/usr/local/sbin/provision-backup";
/// Where the dumps are kept, on the host that makes them.
pub const DIR: &str = "/var/backups/provision";
const STEP: &str = "backup-schedule";
const TIMER: &str = "provision-backup.timer";

impl Component for Backup {
    fn name(&self) -> &'static str {
        "backup"
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let spec = cx.spec;
        let Some(b) = &spec.backup else {
            return Ok(());
        };
        if !(cx.host.has(Role::Db) || cx.host.has(Role::DbReplica)) {
            return Ok(());
        }
        let values = json!({
            "keep_days": b.keep_days,
            "keep_minutes": b.keep_days * 1440,
            "hour": b.hour,
            "minute": b.minute,
            "time": format!("{:02}:{:02}", b.hour, b.minute),
        });
        let render = |name: &str| cx.render(name, &[("backup", values.clone())]);
        out.file(SCRIPT, render("backup/provision-backup")?)
            .mode(0o755)
            .checked_by("bash");
        out.file_validator("bash", "bash -n {root}{file}");
        if cx.host.name != spec.backup_host().name {
            return Ok(());
        }
        out.package("cron");
        let run = Handler::run(STEP);
        for (path, template) in [
            (
                "/etc/systemd/system/provision-backup.service",
                "backup/provision-backup.service",
            ),
            (
                "/etc/systemd/system/provision-backup.timer",
                "backup/provision-backup.timer",
            ),
            ("/etc/cron.d/provision-backup", "backup/cron"),
        ] {
            out.file(path, render(template)?).notify(run.clone());
        }
        out.step(STEP, super::schedule::enable(TIMER), None);
        Ok(())
    }

    fn probe(&self, cx: &Cx) -> Option<String> {
        cx.spec.backup.as_ref()?;
        (cx.host.name == cx.spec.backup_host().name).then(|| super::schedule::probe(TIMER))
    }

    fn needs(&self, cx: &Cx, lines: &[String]) -> Vec<Need> {
        if cx.spec.backup.is_none() || cx.host.name != cx.spec.backup_host().name {
            return Vec::new();
        }
        if lines.iter().any(|l| l == "active") {
            return Vec::new();
        }
        vec![Need {
            handler: Handler::run(STEP),
            reason: "the nightly backup is not scheduled (its timer, or cron, is not running)"
                .into(),
        }]
    }
}
