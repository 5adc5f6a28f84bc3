//! The shell scripts apply sends to a host, generated from a plan. Pure: the same plan gives the same
//! script. Every value that reaches the shell is quoted with `shell_word`; file contents travel as
//! base64 in quoted here-documents, on the script's stdin, so they never appear in a process list.

use crate::desired::{Handler, ManagedPath, PathState};
use crate::facts::{handler_line, PENDING_FILE, STATE_DIR};
use crate::plan::{Before, HostPlan};
use crate::templates::shell_word as q;

/// Marks a base64 block in a script, so `-v` output can leave the contents out.
pub const DATA_START: &str = "base64 -d > ";
pub const DATA_END: &str = "PROVISION_DATA";

pub fn lock_command(info: &str) -> String {
    format!(
        "mkdir -p {STATE_DIR} && chmod 700 {STATE_DIR} && exec 9>>{STATE_DIR}/lock && \
         if flock -n 9; then echo {info} > {STATE_DIR}/lock.info; echo LOCKED; exec cat > /dev/null; \
         else echo \"BUSY $(cat {STATE_DIR}/lock.info 2>/dev/null)\"; fi",
        info = q(info)
    )
}

fn header(generation: &str) -> String {
    format!(
        "set -u\nexport LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive\n\
         P={STATE_DIR}\nG={}\nS=\"$P/stage/$G\"\nB=\"$P/backup/$G\"\n\
         say() {{ echo \"@$*\"; }}\n\
         fail() {{ echo \"@fail $*\"; exit 1; }}\n\
         show() {{ printf '%s\\n' \"$1\" | tail -n 40 | sed 's/^/@out /'; }}\n\
         restore() {{\n  [ -f \"$B/swapped\" ] || return 0\n  tac \"$B/swapped\" | while read -r p; do\n    rm -rf \"$p\"\n    if [ -e \"$B/files$p\" ] || [ -L \"$B/files$p\" ]; then cp -a \"$B/files$p\" \"$p\"; fi\n  done\n  rm -f \"$B/swapped\"\n}}\n",
        q(generation)
    )
}

/// The command that makes a service take its new configuration.
fn service_command(h: &Handler, systemd: bool) -> String {
    match (h, systemd) {
        (Handler::Reload(s), true) => format!("systemctl reload-or-restart {}", q(s)),
        (Handler::Restart(s), true) => format!("systemctl restart {}", q(s)),
        (Handler::Start(s), true) => format!("systemctl start {}", q(s)),
        (Handler::Start(s), false) => format!("service {} start", q(s)),
        (Handler::Reload(s), false) => format!("{{ service {0} status > /dev/null 2>&1 && service {0} reload; }} || service {0} restart", q(s)),
        (Handler::Restart(s), false) => format!("service {0} stop > /dev/null 2>&1; service {0} start", q(s)),
        // As root over the local socket (unix_socket authentication, Debian's default).
        (Handler::RunSql(p), _) => format!("mariadb < {}", q(p)),
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn temp_next_to(path: &str) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.provision-new")
}

fn stale_check(path: &str, before: &Before) -> String {
    let p = q(path);
    let cond = match before {
        Before::Absent => format!("[ ! -e {p} ] && [ ! -L {p} ]"),
        Before::File { sha256 } => format!(
            "[ -f {p} ] && [ ! -L {p} ] && [ \"$(sha256sum < {p} | cut -d' ' -f1)\" = {} ]",
            q(sha256)
        ),
        Before::Dir => format!("[ -d {p} ] && [ ! -L {p} ]"),
        Before::Link { target } => format!("[ \"$(readlink {p})\" = {} ]", q(target)),
        Before::Other => format!("[ -e {p} ]"),
    };
    format!(
        "{cond} || fail {}\n",
        q(&format!(
            "stale plan: {path} changed since it was planned; run again"
        ))
    )
}

/// Writes the content of `p` to `dest` (a quoted shell word) from an embedded base64 block.
fn data_block(dest: &str, content: &[u8]) -> String {
    let mut s = format!("{DATA_START}{dest} <<'{DATA_END}' || fail 'cannot write the stage'\n");
    let b64 = base64_encode(content);
    for chunk in b64.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        s.push('\n');
    }
    s.push_str(DATA_END);
    s.push('\n');
    s
}

/// Lays one desired path into the stage root `R` (validators read the stage, never the live tree).
fn stage_path(p: &ManagedPath, idx: usize) -> String {
    let dest = format!("\"$R\"{}", q(&p.path));
    let dir = format!("\"$R\"{}", q(parent(&p.path)));
    match &p.state {
        PathState::File { content, .. } => {
            format!(
                "mkdir -p {dir} && rm -rf {dest}\n{}cp \"$S/new/{idx}\" {dest}\n",
                data_block(&format!("\"$S/new/{idx}\""), content)
            )
        }
        PathState::Dir { .. } => format!("mkdir -p {dest}\n"),
        PathState::Link { target } => format!(
            "mkdir -p {dir} && rm -rf {dest} && ln -s {} {dest}\n",
            q(target)
        ),
        PathState::Absent => format!("rm -rf {dest}\n"),
    }
}

/// Puts one staged path live: backup of what was there, then an atomic rename.
fn swap_path(p: &ManagedPath, idx: usize) -> String {
    let path = q(&p.path);
    let tmp = q(&temp_next_to(&p.path));
    if let PathState::Dir { mode, owner, group } = &p.state {
        // A directory is only created or re-moded, never backed up: a copy of a document root could
        // be large, and an extra empty directory after a rollback harms nothing.
        return format!(
            "{{ {{ [ -d {path} ] && [ ! -L {path} ]; }} || {{ rm -f {path} && mkdir -p {path}; }}; }} && chmod {mode:04o} {path} && chown {}:{} {path} || {{ restore; fail 'cannot create '{path}; }}\n",
            q(owner),
            q(group)
        );
    }
    let mut s = format!(
        "if [ -e {path} ] || [ -L {path} ]; then mkdir -p \"$B/files\"{dir} && cp -a {path} \"$B/files\"{path} || fail 'backup of '{path}' failed'; fi\n\
         echo {path} >> \"$B/swapped\"\n",
        dir = q(parent(&p.path)),
    );
    let install = match &p.state {
        PathState::File { mode, owner, group, .. } => format!(
            "mkdir -p {dir} && install -m {mode:04o} -o {o} -g {g} \"$S/new/{idx}\" {tmp} && {{ [ ! -d {path} ] || [ -L {path} ] || rm -rf {path}; }} && mv -f {tmp} {path}",
            dir = q(parent(&p.path)),
            o = q(owner),
            g = q(group),
        ),
        PathState::Dir { mode, owner, group } => format!(
            "{{ [ -d {path} ] && [ ! -L {path} ] || rm -rf {path}; }} && mkdir -p {path} && chmod {mode:04o} {path} && chown {}:{} {path}",
            q(owner),
            q(group)
        ),
        PathState::Link { target } => {
            format!("mkdir -p {dir} && ln -sfn {} {tmp} && mv -Tf {tmp} {path}", q(target), dir = q(parent(&p.path)))
        }
        PathState::Absent => format!("rm -rf {path}"),
    };
    s.push_str(&format!(
        "{install} || {{ restore; fail 'cannot put '{path}' in place'; }}\n"
    ));
    s
}

/// The script that executes a host's plan: stale check, packages, stage, validate, swap, reload.
/// Prints `@phase NAME`, `@fail REASON` (exit 1) with `@out` lines of tool output, and `@done`.
pub fn apply_script(plan: &HostPlan, stage: &[ManagedPath], generation: &str) -> String {
    let mut s = header(generation);
    // Stages left by an apply that was killed are stale: the lock is ours, nothing else uses them.
    s.push_str("rm -rf \"$P\"/stage/*\n");
    s.push_str("mkdir -p \"$S/new\" \"$B\" && chmod 700 \"$P\" \"$P/stage\" \"$P/backup\" || fail 'cannot create the stage'\n");
    s.push_str("say phase check\n");
    for c in &plan.changes {
        s.push_str(&stale_check(&c.path, &c.before));
    }
    if !plan.install.is_empty() {
        s.push_str("say phase packages\n");
        if plan.update_package_lists.is_some() {
            s.push_str("out=$(apt-get update -q --error-on=any -o DPkg::Lock::Timeout=300 2>&1) || { show \"$out\"; fail 'apt-get update failed'; }\n");
        }
        let pkgs: Vec<String> = plan.install.iter().map(|p| q(p)).collect();
        // Packages must not start their services with default configs: provision starts them once
        // the validated configs are in place.
        s.push_str(&format!(
            "created=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && created=1; fi\n\
             out=$(apt-get install -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {} 2>&1); rc=$?\n\
             [ -z \"$created\" ] || rm -f /usr/sbin/policy-rc.d\n\
             [ $rc = 0 ] || {{ show \"$out\"; fail 'apt-get install failed'; }}\n",
            pkgs.join(" ")
        ));
    }
    if !plan.changes.is_empty() {
        s.push_str("say phase stage\nR=\"$S/root\"\nmkdir -p \"$R\"\n");
        let mut dirs: Vec<&String> = plan.validators.iter().flat_map(|v| &v.stage).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            s.push_str(&format!(
                "if [ -d {0} ]; then mkdir -p \"$R\"{1} && cp -a {0} \"$R\"{1}/; fi\n",
                q(d),
                q(parent(d))
            ));
        }
        let mut staged: Vec<&ManagedPath> = stage.iter().collect();
        for c in &plan.changes {
            if !staged.iter().any(|p| p.path == c.path) {
                staged.push(&c.desired);
            }
        }
        let index = |path: &str| staged.iter().position(|p| p.path == path).unwrap_or(0);
        for (i, p) in staged.iter().enumerate() {
            s.push_str(&stage_path(p, i));
        }
        s.push_str("say phase validate\n");
        for v in &plan.validators {
            s.push_str(&format!(
                "out=$(sh -c {} 2>&1) || {{ show \"$out\"; fail {}; }}\n",
                q(&v.command_for_root(&format!("{STATE_DIR}/stage/{generation}/root"))),
                q(&format!(
                    "validation failed: {} rejected the staged configuration; nothing was changed",
                    v.name
                ))
            ));
        }
        let pending: String = plan
            .steps
            .iter()
            .map(|st| handler_line(&st.handler) + "\n")
            .collect();
        s.push_str(&format!(
            "say phase swap\nprintf '%s' {} > {PENDING_FILE}\n",
            q(&pending)
        ));
        for c in &plan.changes {
            s.push_str(&swap_path(&c.desired, index(&c.path)));
        }
    } else if !plan.steps.is_empty() {
        let pending: String = plan
            .steps
            .iter()
            .map(|st| handler_line(&st.handler) + "\n")
            .collect();
        s.push_str(&format!("printf '%s' {} > {PENDING_FILE}\n", q(&pending)));
    }
    if !plan.steps.is_empty() {
        s.push_str("say phase reload\n");
        for st in &plan.steps {
            s.push_str(&format!(
                "out=$({} 2>&1) || {{ show \"$out\"; restore; {}; fail {}; }}\nsay did {}\n",
                service_command(&st.handler, plan.systemd),
                reload_all(plan),
                q(&format!(
                    "{} failed; the previous files were restored",
                    handler_line(&st.handler)
                )),
                q(&handler_line(&st.handler)),
            ));
        }
    }
    s.push_str(&format!(
        "rm -f {PENDING_FILE}\necho \"$G\" > \"$P/generation\"\nrm -rf \"$S\"\n"
    ));
    // Keep the five newest backups: enough to roll back, bounded on disk.
    s.push_str("ls -1d \"$P\"/backup/* 2>/dev/null | sort | head -n -5 | while read -r old; do rm -rf \"$old\"; done\nsay done\n");
    s
}

/// Best effort after a restore: every service the plan touches takes the restored files.
fn reload_all(plan: &HostPlan) -> String {
    let cmds: Vec<String> = plan
        .steps
        .iter()
        .filter(|st| !matches!(st.handler, Handler::RunSql(_)))
        .map(|st| {
            format!(
                "{} > /dev/null 2>&1",
                service_command(&st.handler, plan.systemd)
            )
        })
        .collect();
    if cmds.is_empty() {
        ":".into()
    } else {
        cmds.join("; ")
    }
}

/// Puts back what `apply_script` with the same generation swapped in, and reloads the services.
pub fn rollback_script(plan: &HostPlan, generation: &str) -> String {
    let mut s = header(generation);
    s.push_str(&format!(
        "say phase rollback\nrestore\n{}\nrm -f {PENDING_FILE}\nsay done\n",
        reload_all(plan)
    ));
    s
}

/// The script as `-v` shows it: base64 blocks left out.
pub fn for_display(script: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in script.lines() {
        if skipping {
            if line == DATA_END {
                skipping = false;
                out.push_str("  [file content left out]\n");
            }
            continue;
        }
        if line.starts_with(DATA_START) {
            skipping = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Validator;
    use crate::plan::{Action, Change, Step};

    fn plan() -> (HostPlan, Vec<ManagedPath>) {
        let conf = ManagedPath {
            path: "/etc/provision/sites/foobar.com/config.php".into(),
            state: PathState::File {
                content: b"'password' => 'hunter2'".to_vec(),
                mode: 0o640,
                owner: "root".into(),
                group: "www-data".into(),
                sensitive: true,
            },
            notify: vec![Handler::Reload("php8.2-fpm".into())],
            validator: Some("php-lint".into()),
        };
        let plan = HostPlan {
            host: "web-01".into(),
            os: "debian 12".into(),
            systemd: false,
            update_package_lists: Some("never downloaded".into()),
            install: vec!["nginx".into(), "php8.2-fpm".into()],
            changes: vec![Change {
                path: conf.path.clone(),
                action: Action::Create,
                reason: "missing".into(),
                diff: None,
                before: Before::Absent,
                desired: conf.clone(),
            }],
            steps: vec![Step {
                handler: Handler::Start("php8.2-fpm".into()),
                reason: "not running".into(),
            }],
            validators: vec![Validator {
                name: "php-lint".into(),
                command: "php -l {root}/x".into(),
                stage: vec!["/etc/php/8.2/fpm".into()],
            }],
            checks: vec![],
        };
        (plan, vec![conf])
    }

    #[test]
    fn the_apply_and_rollback_scripts_are_valid_sh() {
        let (p, stage) = plan();
        for script in [apply_script(&p, &stage, "1-2"), rollback_script(&p, "1-2")] {
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}\n{script}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn file_contents_travel_as_base64_and_are_left_out_of_the_display() {
        let (p, stage) = plan();
        let script = apply_script(&p, &stage, "1-2");
        assert!(!script.contains("hunter2"));
        assert!(script.contains(&base64_encode(b"'password' => 'hunter2'")));
        let shown = for_display(&script);
        assert!(!shown.contains(&base64_encode(b"'password' => 'hunter2'")));
        assert!(shown.contains("[file content left out]"));
    }

    #[test]
    fn the_script_checks_the_planned_state_before_installing_and_validates_before_swapping() {
        let (p, stage) = plan();
        let s = apply_script(&p, &stage, "1-2");
        let at = |needle: &str| {
            s.find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
        };
        assert!(at("stale plan") < at("apt-get install"));
        assert!(at("apt-get update") < at("apt-get install"));
        assert!(at("say phase validate") < at("say phase swap"));
        assert!(at("say phase swap") < at("service php8.2-fpm start"));
        assert!(s.contains("install -m 0640 -o root -g www-data"));
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"hello\n"), "aGVsbG8K");
    }
}
