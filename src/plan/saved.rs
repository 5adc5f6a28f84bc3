//! Saved plans, as Terraform users expect: `plan --out FILE` writes what apply would do on every
//! selected host; `apply --plan FILE` plans again and runs only if the new plan makes exactly the same
//! commitments (same host generation, same packages, same paths from the same shapes to the same
//! shapes, same handlers). The file holds no secret (what it shows is masked like any output) and no
//! plain hash of a file that holds one (those are keyed with the host's own key, see
//! `host_state::keyed_digest`); it is written mode 0600 all the same.

use super::HostPlan;
use crate::render::manifest::sha256_hex;
use crate::secret::Redactor;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;

pub const FORMAT: &str = "provision-plan/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    /// The inventory the plan was made from, as given on the command line (for messages).
    pub inventory: String,
    /// Unix time on the machine that made it.
    pub created: u64,
    pub hosts: Vec<SavedHost>,
    /// sha256 of the rest of the file: a truncated or edited file is refused.
    pub checksum: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedHost {
    pub host: String,
    /// What apply must do, and nothing else (compared with a fresh plan).
    pub commitments: Value,
    /// The plan as shown (reasons, masked diffs), for a reader of the file.
    pub plan: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFileError(pub String);

impl std::fmt::Display for PlanFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanFileError {}

/// What a host plan commits to: the parts apply executes. Reasons and diffs are left out (the age
/// of the package lists in a reason changes by the hour without changing what runs).
pub fn commitments(p: &HostPlan) -> Value {
    let mut v = json!({
        "host": p.host,
        "generation": p.generation,
        "attention": p.attention.is_some(),
        "update_package_lists": p.update_package_lists.is_some(),
        "install": p.install,
        "changes": p.changes.iter().map(|c| json!({
            "path": c.path,
            "action": c.action,
            "before": c.before,
            "after": c.after,
        })).collect::<Vec<_>>(),
        "steps": p.steps.iter().map(|s| s.handler.line()).collect::<Vec<_>>(),
    });
    // Only when there are any: plans saved before these fields compare equal.
    if !p.leaving.is_empty() {
        v["leaving"] = json!(p.leaving);
    }
    if !p.accounts.is_empty() {
        v["accounts"] = json!(p
            .accounts
            .iter()
            .map(|a| format!("{}, home {}", a.line(), a.home))
            .collect::<Vec<_>>());
    }
    v
}

fn body_checksum(p: &SavedPlan) -> String {
    let mut body = p.clone();
    body.checksum = String::new();
    sha256_hex(serde_json::to_string(&body).unwrap_or_default().as_bytes())
}

impl SavedPlan {
    /// The plan of `hosts`, every string of what is shown masked by `redactor` (before the
    /// checksum, so the file stays whole).
    pub fn new(
        inventory: &str,
        created: u64,
        hosts: &[HostPlan],
        redactor: &Redactor,
    ) -> SavedPlan {
        let mut p = SavedPlan {
            format: FORMAT.into(),
            inventory: inventory.to_string(),
            created,
            hosts: hosts
                .iter()
                .map(|h| SavedHost {
                    host: h.host.clone(),
                    commitments: commitments(h),
                    plan: redactor.redact_json(serde_json::to_value(h).unwrap_or(Value::Null)),
                })
                .collect(),
            checksum: String::new(),
        };
        p.checksum = body_checksum(&p);
        p
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the plan to `path` as a file only its owner can read, made so from the start (an
    /// earlier regular file there is replaced, not rewritten, so its mode does not carry over).
    /// Anything else (a pipe, `/dev/stdout`) is written to as it is.
    pub fn write_private(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(path)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(self.to_json().as_bytes())?;
        f.flush()
    }

    pub fn from_json(text: &str, file: &str) -> Result<SavedPlan, PlanFileError> {
        let p: SavedPlan = serde_json::from_str(text).map_err(|e| {
            PlanFileError(format!(
                "{file}: not a readable plan file ({e}); make a new one with `provision plan --out {file}`"
            ))
        })?;
        if p.format != FORMAT {
            return Err(PlanFileError(format!(
                "{file}: plan format {:?}; allowed: {FORMAT:?} (made by another version of provision)",
                p.format
            )));
        }
        if body_checksum(&p) != p.checksum {
            return Err(PlanFileError(format!(
                "{file}: the plan file was changed after it was written (checksum mismatch); make a new one"
            )));
        }
        Ok(p)
    }

    pub fn host(&self, name: &str) -> Option<&SavedHost> {
        self.hosts.iter().find(|h| h.host == name)
    }
}

/// How a fresh plan differs from a saved one, in words (empty when they commit to the same).
pub fn differences(saved: &Value, now: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    if field(saved, "generation") != field(now, "generation") {
        out.push(format!(
            "the host was changed since the plan was made: its newest generation was {} then and is {} now",
            show(&field(saved, "generation")),
            show(&field(now, "generation"))
        ));
    }
    for k in [
        "attention",
        "update_package_lists",
        "install",
        "accounts",
        "steps",
        "leaving",
    ] {
        if field(saved, k) != field(now, k) {
            out.push(format!(
                "{k}: planned {}, now {}",
                show(&field(saved, k)),
                show(&field(now, k))
            ));
        }
    }
    let changes = |v: &Value| -> Vec<Value> {
        v.get("changes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old, new) = (changes(saved), changes(now));
    let path = |c: &Value| {
        c.get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for c in &old {
        match new.iter().find(|n| path(n) == path(c)) {
            None => out.push(format!(
                "{}: planned to {}, no longer needed",
                path(c),
                show(&field(c, "action"))
            )),
            Some(n) if n != c => {
                for k in ["action", "before", "after"] {
                    if field(c, k) != field(n, k) {
                        out.push(format!(
                            "{}: {k} was {}, is {} now",
                            path(c),
                            show(&field(c, k)),
                            show(&field(n, k))
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    for n in &new {
        if !old.iter().any(|c| path(c) == path(n)) {
            out.push(format!(
                "{}: not in the plan, would be {} now",
                path(n),
                show(&field(n, "action"))
            ));
        }
    }
    out
}

/// A JSON value in a message: strings bare, digests shortened.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let v = show(v);
                let v = if v.len() > 24 && (v.starts_with("sha256:") || v.starts_with("keyed:")) {
                    format!("{}…", &v[..v.find(':').unwrap_or(0) + 13])
                } else {
                    v
                };
                format!("{k} {v}")
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> SavedPlan {
        let v = json!({
            "host": "web-01", "generation": "G1", "attention": false, "update_package_lists": false,
            "install": [], "steps": ["reload nginx"],
            "changes": [{ "path": "/etc/nginx/nginx.conf", "action": "update",
                          "before": { "kind": "file", "digest": "sha256:aa" },
                          "after": { "kind": "file", "digest": "sha256:bb" } }],
        });
        let mut p = SavedPlan {
            format: FORMAT.into(),
            inventory: "inv.toml".into(),
            created: 1,
            hosts: vec![SavedHost {
                host: "web-01".into(),
                commitments: v,
                plan: Value::Null,
            }],
            checksum: String::new(),
        };
        p.checksum = body_checksum(&p);
        p
    }

    #[test]
    fn a_saved_plan_round_trips_and_edits_are_refused() {
        let p = saved();
        let text = p.to_json();
        assert!(SavedPlan::from_json(&text, "f").is_ok());
        let edited = text.replace("sha256:bb", "sha256:cc");
        assert!(SavedPlan::from_json(&edited, "f")
            .unwrap_err()
            .0
            .contains("changed after"));
        let cut = &text[..text.len() / 2];
        assert!(SavedPlan::from_json(cut, "f")
            .unwrap_err()
            .0
            .contains("not a readable plan"));
    }

    #[test]
    fn a_plan_file_is_made_private_and_replaces_a_readable_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        saved().write_private(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(SavedPlan::from_json(&text, "f").is_ok());
    }

    #[test]
    fn the_same_commitments_have_no_differences() {
        let p = saved();
        let c = &p.hosts[0].commitments;
        assert!(differences(c, c).is_empty());
    }

    #[test]
    fn a_moved_generation_and_a_changed_file_are_named() {
        let p = saved();
        let mut now = p.hosts[0].commitments.clone();
        now["generation"] = json!("G2");
        now["changes"][0]["before"]["digest"] = json!("sha256:ff");
        let d = differences(&p.hosts[0].commitments, &now);
        assert!(
            d[0].contains("generation was G1 then and is G2 now"),
            "{d:?}"
        );
        assert!(
            d[1].starts_with("/etc/nginx/nginx.conf: before was"),
            "{d:?}"
        );
    }

    #[test]
    fn a_host_leaving_a_balancer_since_the_plan_is_named() {
        let p = saved();
        let mut now = p.hosts[0].commitments.clone();
        now["leaving"] = json!(["web-03"]);
        let d = differences(&p.hosts[0].commitments, &now);
        assert_eq!(d, [r#"leaving: planned none, now ["web-03"]"#], "{d:?}");
    }

    /// The account a plan was to make exists by the time it is applied (made by hand, or by
    /// another run): the commitments differ, named.
    #[test]
    fn an_account_planned_and_made_since_is_named() {
        let p = saved();
        let mut planned = p.hosts[0].commitments.clone();
        planned["accounts"] =
            json!(["create user shop (group shop) for site shop.example.com, home /var/www/shop"]);
        let d = differences(&planned, &p.hosts[0].commitments);
        assert_eq!(
            d,
            [
                r#"accounts: planned ["create user shop (group shop) for site shop.example.com, home /var/www/shop"], now none"#
            ],
            "{d:?}"
        );
    }
}
