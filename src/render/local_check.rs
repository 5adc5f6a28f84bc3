//! Runs a host's validators on this machine: a staged copy of the live config directories the tools
//! read, with the rendered paths laid over it, checked by the real tools. This is what apply does on
//! the host before anything goes live, done locally for `render --check` and the tests.

use crate::desired::{Account, Desired, PathState, Validator};
use crate::render::tree;
use crate::tree::Kind;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct CheckOutcome {
    pub validator: String,
    pub ok: bool,
    /// What the tool printed (stdout and stderr), for the user to read on failure.
    pub output: String,
}

/// Every validator of `d` run on `stage` (a scratch directory): the live directories they read
/// copied in, the rendered paths laid over them; one outcome per validator, in their order.
pub fn check_host(d: &Desired, stage: &Path) -> std::io::Result<Vec<CheckOutcome>> {
    for v in &d.validators {
        for dir in &v.stage {
            stage_live_dir(&v.name, dir, stage)?;
        }
    }
    tree::materialize(d, stage, tree::Into::Overlay)?;
    let accounts = AccountsView::new(&d.accounts)?;
    let root = crate::quote::shell_word(&stage.to_string_lossy());
    let mut out = Vec::new();
    for v in &d.validators {
        let commands: Vec<String> = if v.per_file {
            files_read(d, v)
                .iter()
                .map(|f| v.command_in(&root, Some(f)))
                .collect()
        } else {
            vec![v.command_in(&root, None)]
        };
        out.push(run(&v.name, &commands, accounts.as_ref())?);
    }
    Ok(out)
}

/// The live directory `dir` that validator `name` reads, copied into the stage once.
fn stage_live_dir(name: &str, dir: &str, stage: &Path) -> std::io::Result<()> {
    let from = Path::new(dir);
    let to = tree::under(stage, dir);
    if to.exists() {
        return Ok(());
    }
    if !from.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("validator {name} needs {dir} on this machine (install the package that provides it)"),
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
    Ok(())
}

/// The files a per-file validator reads (here, all are new): those it is named for, and the
/// release files it reads (what apply checks on the host as it builds the release).
fn files_read(d: &Desired, v: &Validator) -> Vec<String> {
    let mut files: Vec<String> = d
        .paths
        .iter()
        .filter(|p| p.validator.as_deref() == Some(v.name.as_str()) && p.state.content().is_some())
        .map(|p| p.path.clone())
        .collect();
    if let Some(suffix) = &v.release_files {
        for p in &d.paths {
            if let PathState::Tree(t) = &p.state {
                files.extend(t.entries.iter().filter_map(|e| match e.kind {
                    Kind::File { .. } if e.path.ends_with(suffix.as_str()) => {
                        Some(format!("{}/{}", t.dir(), e.path))
                    }
                    _ => None,
                }));
            }
        }
    }
    files
}

/// Runs a validator's commands (with the host's accounts when this machine lacks some): it passes
/// when every one does, and what the failing ones printed is kept.
fn run(
    validator: &str,
    commands: &[String],
    accounts: Option<&AccountsView>,
) -> std::io::Result<CheckOutcome> {
    let mut ok = true;
    let mut output = String::new();
    for cmd in commands {
        let res = match accounts {
            Some(view) => view.command(cmd),
            None => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(cmd);
                c
            }
        }
        .output()?;
        if !res.status.success() {
            ok = false;
            output.push_str(&String::from_utf8_lossy(&res.stdout));
            output.push_str(&String::from_utf8_lossy(&res.stderr));
        }
    }
    Ok(CheckOutcome {
        validator: validator.to_string(),
        ok,
        output,
    })
}

/// `command` (`sh -c`) run in a mount namespace of its own where each `(from, onto)` is
/// bind-mounted: it sees those paths changed, and nothing of this machine changes. `unshare -m` as
/// root; as another user `unshare -Urm` (in a user namespace of its own, as its root).
pub(crate) fn with_binds(binds: &[(&Path, &str)], command: &str) -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    with_binds_as(unsafe { libc::geteuid() } == 0, binds, command)
}

fn with_binds_as(root: bool, binds: &[(&Path, &str)], command: &str) -> Command {
    let mut c = Command::new("unshare");
    c.arg(if root { "-m" } else { "-Urm" })
        .arg("sh")
        .arg("-c")
        .arg("while [ $# -gt 1 ]; do mount --bind \"$1\" \"$2\" || exit 125; shift 2; done; exec sh -c \"$1\"")
        .arg("sh");
    for (from, onto) in binds {
        c.arg(from).arg(onto);
    }
    c.arg(command);
    c
}

/// The validators of a host that should have accounts this machine lacks (a site's user, which
/// its PHP-FPM pool names) see them: they run with this machine's /etc/passwd and /etc/group
/// replaced, for them alone, by copies that add those accounts.
struct AccountsView {
    _dir: tempfile::TempDir,
    passwd: PathBuf,
    group: PathBuf,
}

impl AccountsView {
    /// `None` when this machine has every account already (then nothing changes for the checks).
    fn new(accounts: &[Account]) -> std::io::Result<Option<AccountsView>> {
        if accounts.is_empty() {
            return Ok(None);
        }
        let passwd = std::fs::read_to_string("/etc/passwd")?;
        let group = std::fs::read_to_string("/etc/group")?;
        let Some((passwd, group)) = with_accounts(&passwd, &group, accounts) else {
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let view = AccountsView {
            passwd: dir.path().join("passwd"),
            group: dir.path().join("group"),
            _dir: dir,
        };
        std::fs::write(&view.passwd, passwd)?;
        std::fs::write(&view.group, group)?;
        Ok(Some(view))
    }

    fn command(&self, cmd: &str) -> Command {
        with_binds(
            &[(&self.passwd, "/etc/passwd"), (&self.group, "/etc/group")],
            cmd,
        )
    }
}

/// `passwd` and `group` with the users and groups of `accounts` they lack added (as provision
/// makes them: a group of its own, no login), at ids neither file uses; `None` when they lack none.
fn with_accounts(passwd: &str, group: &str, accounts: &[Account]) -> Option<(String, String)> {
    let entries = |text: &str| -> Vec<(String, u32)> {
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
            })
            .collect()
    };
    let (users, groups) = (entries(passwd), entries(group));
    let (mut passwd, mut group) = (passwd.to_string(), group.to_string());
    let mut id = 65_000u32;
    let mut added = false;
    for a in accounts {
        while users.iter().chain(&groups).any(|(_, used)| *used == id) {
            id -= 1;
        }
        for (text, have, line) in [
            (
                &mut passwd,
                &users,
                format!(
                    "{}:x:{id}:{id}:{}:{}:/usr/sbin/nologin",
                    a.name,
                    a.gecos(),
                    a.home
                ),
            ),
            (&mut group, &groups, format!("{}:x:{id}:", a.name)),
        ] {
            if !have.iter().any(|(n, _)| *n == a.name) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&line);
                text.push('\n');
                added = true;
            }
        }
        id -= 1;
    }
    added.then_some((passwd, group))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::ManagedPath;

    /// A host whose validator stages `dir` and reads `file` (absolute paths on this machine).
    fn host(dir: &Path, file: &Path) -> Desired {
        let mut d = Desired::new("h");
        d.validators = vec![Validator {
            name: "reads".into(),
            command: format!("grep -q staged {{root}}{}", file.display()),
            stage: vec![dir.to_string_lossy().into_owned()],
            per_file: false,
            release_files: None,
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
            because: None,
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

    fn account(name: &str) -> Account {
        Account {
            name: name.into(),
            home: format!("/var/www/{name}"),
            comment: format!("site {name}.example.com"),
        }
    }

    /// Only what is missing is added, at ids neither file uses; nothing missing, nothing to do.
    #[test]
    fn the_accounts_this_machine_lacks_are_added_to_copies_of_its_files() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nold:x:65000:65000::/:/bin/sh";
        let group = "root:x:0:\nold:x:65000:\nblog:x:64999:\n";
        let (p, g) = with_accounts(passwd, group, &[account("shop"), account("blog")]).unwrap();
        assert_eq!(
            p,
            "root:x:0:0:root:/root:/bin/bash\nold:x:65000:65000::/:/bin/sh\n\
             shop:x:64998:64998:[provision] site shop.example.com:/var/www/shop:/usr/sbin/nologin\n\
             blog:x:64997:64997:[provision] site blog.example.com:/var/www/blog:/usr/sbin/nologin\n"
        );
        assert_eq!(g, format!("{group}shop:x:64998:\n"));
        assert_eq!(with_accounts(&p, &g, &[account("shop")]), None);
    }

    /// A validator that needs a desired account (it looks it up, as php-fpm does its pool's user)
    /// passes with it, and fails without it; this machine never gets it.
    #[test]
    fn validators_see_the_hosts_accounts_and_this_machine_is_left_alone() {
        let name = "provcheck-acct";
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("live")).unwrap();
        let mut d = host(&t.path().join("live"), &t.path().join("live/site.conf"));
        d.validators[0].command = format!(
            "getent passwd {name} | grep -qx '{name}:x:[0-9]*:[0-9]*:\\[provision\\] site {name}.example.com:/var/www/{name}:/usr/sbin/nologin' && getent group {name}"
        );
        d.accounts = vec![account(name)];
        let stage = tempfile::tempdir().unwrap();
        let out = check_host(&d, stage.path()).unwrap();
        assert!(out[0].ok, "{out:?}");
        d.accounts.clear();
        let stage = tempfile::tempdir().unwrap();
        assert!(!check_host(&d, stage.path()).unwrap()[0].ok);
        let here = std::fs::read_to_string("/etc/passwd").unwrap();
        assert!(!here.contains(name), "this machine got the account");
        assert!(!std::fs::read_to_string("/etc/group")
            .unwrap()
            .contains(name));
    }

    /// Not as root: the same bind mounts, in a user namespace of the command's own.
    #[test]
    fn a_user_other_than_root_gets_the_accounts_through_a_user_namespace() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let view = t.path().join("passwd");
        std::fs::write(&view, "only:x:1:1::/:/usr/sbin/nologin\n").unwrap();
        std::fs::set_permissions(&view, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = with_binds_as(
            false,
            &[(&view, "/etc/passwd")],
            "getent passwd only && id -u",
        );
        let mut as_nobody = Command::new("setpriv");
        as_nobody
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(c.get_program())
            .args(c.get_args());
        let out = as_nobody.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(text, "only:x:1:1::/:/usr/sbin/nologin\n0\n");
    }
}
