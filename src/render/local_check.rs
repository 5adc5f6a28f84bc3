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
            // Its content into a real directory of the stage: a `dir` that is a link is followed
            // once (as apply's stage_copy does), so nothing laid over the copy lands in the live tree.
            std::fs::create_dir_all(&to)?;
            let status = Command::new("cp")
                .arg("-a")
                .arg(from.join("."))
                .arg(&to)
                .status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!("cp -a {dir}/. failed")));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{ManagedPath, Validator};

    /// A host whose validator stages `dir` and reads `file` (absolute paths on this machine).
    fn host(dir: &Path, file: &Path) -> Desired {
        let mut d = Desired::new("h");
        d.validators = vec![Validator {
            name: "reads".into(),
            command: format!("grep -q staged {{root}}{}", file.display()),
            stage: vec![dir.to_string_lossy().into_owned()],
            per_file: false,
        }];
        d.paths = vec![ManagedPath {
            path: file.to_string_lossy().into_owned(),
            state: PathState::File {
                content: b"staged\n".to_vec(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
            },
            notify: vec![],
            validator: Some("reads".into()),
            from_previous: false,
            code: false,
        }];
        d
    }

    /// A config directory that is a link on this machine: staged as a real directory holding its
    /// content, the rendered file laid over the copy, the live file untouched.
    #[test]
    fn a_linked_config_directory_is_staged_as_a_real_copy() {
        let t = tempfile::tempdir().unwrap();
        let live = t.path().join("live");
        std::fs::create_dir_all(live.join("real")).unwrap();
        std::fs::write(live.join("real/site.conf"), "live\n").unwrap();
        std::fs::write(live.join("real/other.conf"), "kept\n").unwrap();
        std::os::unix::fs::symlink(live.join("real"), live.join("conf")).unwrap();
        let stage = t.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        let d = host(&live.join("conf"), &live.join("conf/site.conf"));
        let out = check_host(&d, &stage).unwrap();
        assert!(out[0].ok, "{out:?}");
        assert_eq!(
            std::fs::read_to_string(live.join("real/site.conf")).unwrap(),
            "live\n"
        );
        let staged = tree::under(&stage, &live.join("conf").to_string_lossy());
        assert!(!staged.symlink_metadata().unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(staged.join("other.conf")).unwrap(),
            "kept\n"
        );
    }

    /// A link inside the copied directory that leads out of the stage (an absolute link to another
    /// live directory): the write under it is refused, nothing lands outside the stage.
    #[test]
    fn a_link_in_the_checked_tree_never_leads_a_write_outside_the_stage() {
        let t = tempfile::tempdir().unwrap();
        let live = t.path().join("live");
        std::fs::create_dir_all(live.join("conf")).unwrap();
        std::fs::create_dir_all(live.join("elsewhere")).unwrap();
        std::fs::write(live.join("elsewhere/site.conf"), "live\n").unwrap();
        std::os::unix::fs::symlink(live.join("elsewhere"), live.join("conf/sites")).unwrap();
        let stage = t.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        for file in ["conf/sites/site.conf", "conf/sites/new/site.conf"] {
            let d = host(&live.join("conf"), &live.join(file));
            let e = check_host(&d, &stage).unwrap_err();
            assert!(e.to_string().contains("leads outside it"), "{e}");
            std::fs::remove_dir_all(&stage).unwrap();
            std::fs::create_dir(&stage).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(live.join("elsewhere/site.conf")).unwrap(),
            "live\n"
        );
        assert!(!live.join("elsewhere/new").exists());
    }
}
