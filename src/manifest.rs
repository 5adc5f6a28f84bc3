//! The machine-readable description of a render: per host, packages, paths (mode, owner, sha256 of
//! the content as written), services, validators and health checks.

use crate::desired::{Desired, PathState};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn manifest(inventory: &str, secrets_revealed: bool, hosts: &[Desired]) -> Value {
    let hosts: Vec<Value> = hosts
        .iter()
        .map(|d| {
            let paths: Vec<Value> = d
                .paths
                .iter()
                .map(|p| {
                    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
                    match &p.state {
                        PathState::File { content, mode, .. } => {
                            v["state"]["mode"] = json!(format!("{mode:04o}"));
                            v["state"]["sha256"] = json!(sha256_hex(content));
                        }
                        PathState::Dir { mode, .. } => {
                            v["state"]["mode"] = json!(format!("{mode:04o}"))
                        }
                        PathState::Link { .. } | PathState::Absent => {}
                    }
                    v
                })
                .collect();
            json!({
                "host": d.host,
                "packages": d.packages,
                "paths": paths,
                "services": d.services,
                "validators": d.validators,
                "checks": d.checks,
            })
        })
        .collect();
    json!({
        "inventory": inventory,
        "secrets": if secrets_revealed { "revealed" } else { "hidden" },
        "hosts": hosts,
    })
}
