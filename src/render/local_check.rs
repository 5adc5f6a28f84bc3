//! Runs a host's validators on this machine: a staged copy of the live config directories the tools
//! read, with the rendered paths laid over it, checked by the real tools. This is what apply does on
//! the host before anything goes live, done locally for `render --check` and the tests.

use crate::desired::{Desired, PathState};
use crate::render::tree;
use crate::tree::Kind;
use std::path::Path;
use std::process::Command;

#[derive(Debug)]
pub struct CheckOutcome {
    pub validator: String,
    pub ok: bool,
    /// What the tool printed (stdout and stderr), for the user to read on failure.
    pub output: String,
}

pub fn check_host(d: &Desired, stage: &Path) -> std::io::Result<Vec<CheckOutcome>> {
    for v in &d.validators {
        for dir in &v.stage {
            let from = Path::new(dir);
            let to = tree::under(stage, dir);
            if to.exists() {
                continue;
            }
            if !from.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("validator {} needs {dir} on this machine (install the package that provides it)", v.name),
                ));
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let status = Command::new("cp").arg("-a").arg(from).arg(&to).status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("cp -a {dir} failed")));
            }
        }
    }
    tree::materialize(d, stage, tree::Into::Overlay)?;
    let root = stage.to_string_lossy();
    let mut out = Vec::new();
    for v in &d.validators {
        // A per-file validator reads every file it is named for (here, all are new).
        let commands: Vec<String> = if v.per_file {
            let mut files: Vec<String> = d
                .paths
                .iter()
                .filter(|p| {
                    p.validator.as_deref() == Some(v.name.as_str()) && p.state.content().is_some()
                })
                .map(|p| p.path.clone())
                .collect();
            // A release's PHP files: what apply lints on the host (in one process there).
            if v.name == "php-lint" {
                for p in &d.paths {
                    if let PathState::Tree(t) = &p.state {
                        files.extend(t.entries.iter().filter_map(|e| match e.kind {
                            Kind::File { .. } if e.path.ends_with(".php") => {
                                Some(format!("{}/{}", t.dir(), e.path))
                            }
                            _ => None,
                        }));
                    }
                }
            }
            files.iter().map(|f| v.command_for_file(&root, f)).collect()
        } else {
            vec![v.command_for_root(&root)]
        };
        let mut ok = true;
        let mut output = String::new();
        for cmd in commands {
            let res = Command::new("sh").arg("-c").arg(&cmd).output()?;
            if !res.status.success() {
                ok = false;
                output.push_str(&String::from_utf8_lossy(&res.stdout));
                output.push_str(&String::from_utf8_lossy(&res.stderr));
            }
        }
        out.push(CheckOutcome {
            validator: v.name.clone(),
            ok,
            output,
        });
    }
    Ok(out)
}
