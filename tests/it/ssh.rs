//! End to end: the user's SSH setup as OpenSSH users have it. A lab host on the inner network
//! (198.18.0.130, which this machine cannot reach on port 22) is planned and applied through a
//! bastion (198.18.0.60) named in an ssh_config, with host keys checked on both hops (plain and
//! hashed known_hosts), keys from the agent or unlocked with a passphrase typed on a terminal,
//! and a host that vanishes behind a live bastion reported within a minute.

use crate::lab::{lab, KEY, KNOWN};
use crate::util::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const JUMP: &str = "198.18.0.60";
const INNER: &str = "198.18.0.130";
const PASSPHRASE: &str = "correct horse battery staple";

/// The tests of this file share the two lab hosts: one at a time.
static HOSTS: Mutex<()> = Mutex::new(());

/// The lab inventory of the two hosts (the bastion also stands in for the site's web and
/// database host, which these tests never select), and an ssh_config for them: `lab-bastion`
/// is an alias, `inner` an alias reached with ProxyJump.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(fresh: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup { dir };
        let lab_inv = s.path("lab.toml");
        std::fs::write(&lab_inv, s.inventory(&format!("\"{INNER}\""), "")).unwrap();
        if fresh {
            lab(&["down", &lab_inv.to_string_lossy()]);
        }
        lab(&["up", &lab_inv.to_string_lossy()]);
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A DNS-only inner host (it installs in seconds) at `inner_address`, `extra` added to its
    /// `[hosts.ssh]` table.
    fn inventory(&self, inner_address: &str, extra: &str) -> String {
        let secret = root().join("inventories/secrets/lab_db_password");
        format!(
            "[site]\ndomain = \"foobar.com\"\nstack = \"lemp\"\n\
             [database]\nname = \"foobar\"\nuser = \"foobar\"\npassword_file = \"{}\"\n\
             [dns]\nttl = 300\nsoa_contact = \"hostmaster@foobar.com\"\n\
             [[hosts]]\nname = \"jump\"\npublic_address = \"{JUMP}\"\nroles = [\"web\", \"app\", \"db\"]\n\
             ssh = {{ address = \"{JUMP}\", identity_file = \"{KEY}\", known_hosts = \"{KNOWN}\" }}\n\
             lab = {{ flavour = \"plain\", network = \"bastion\" }}\n\
             [[hosts]]\nname = \"inner\"\npublic_address = \"{INNER}\"\nroles = [\"dns\"]\n\
             ssh = {{ address = {inner_address}{extra} }}\n\
             lab = {{ flavour = \"plain\", network = \"inner\", address = \"{INNER}\" }}\n",
            secret.display()
        )
    }

    /// An inventory whose inner host is `inner_address` with `extra` ssh keys, written to `name`.
    fn write(&self, name: &str, inner_address: &str, extra: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, self.inventory(inner_address, extra)).unwrap();
        p
    }

    /// An inventory reaching the inner host through an ssh_config whose known_hosts has another
    /// key for `victim` (the lab key's own public key, which no host has).
    fn with_a_wrong_key_for(&self, victim: &str) -> PathBuf {
        let known = std::fs::read_to_string(KNOWN).unwrap();
        let other_key = std::fs::read_to_string(format!("{KEY}.pub")).unwrap();
        let other_key = other_key.split_whitespace().nth(1).unwrap();
        let mut lines: Vec<String> = known
            .lines()
            .filter(|l| l.split_whitespace().next() != Some(victim))
            .map(str::to_string)
            .collect();
        lines.push(format!("{victim} ssh-ed25519 {other_key}"));
        let bad = self.path("bad_known_hosts");
        std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
        let config = self.ssh_config("bad_config", Path::new(KEY), &bad);
        self.write(
            "bad.toml",
            "\"inner\"",
            &format!(", config = \"{}\"", config.display()),
        )
    }

    /// An ssh_config with the two aliases, the given key and known_hosts for every host.
    fn ssh_config(&self, name: &str, key: &Path, known: &Path) -> PathBuf {
        let p = self.path(name);
        std::fs::write(
            &p,
            format!(
                "# what an operator has in ~/.ssh/config\n\
                 Host lab-bastion\n  HostName {JUMP}\n  User root\n\
                 Host inner\n  HostName {INNER}\n  ProxyJump lab-bastion\n\
                 Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n\
                 ServerAliveInterval 15\n",
                key.display(),
                known.display()
            ),
        )
        .unwrap();
        p
    }
}

fn plan(inv: &Path) -> Run {
    Run::new(&["plan", "--host", "inner", "-i"]).arg(inv)
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn an_inner_host_is_applied_through_a_bastion_from_the_users_ssh_config() {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(true);
    // The operator's own ~/.ssh/config: the inventory names only the alias.
    let home = s.path("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let config = s.ssh_config("home/.ssh/config", Path::new(KEY), Path::new(KNOWN));
    assert!(config.starts_with(&home));
    let inv = s.write("site.toml", "\"inner\"", "");
    let home = home.to_string_lossy().to_string();
    // The lab's own proof, on the fresh hosts: routes, who reaches whom, this machine kept off
    // the inner host's sshd but not its port 80.
    let selftest = Command::new(root().join("tests/lab/selftest"))
        .arg(s.path("lab.toml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&selftest.stdout);
    assert!(selftest.status.success(), "{report}");
    assert!(
        report.contains("inner: this machine cannot connect to its sshd"),
        "{report}"
    );

    // This machine cannot reach the inner host's sshd itself.
    let direct = s.write(
        "direct.toml",
        &format!("\"{INNER}\""),
        &format!(", identity_file = \"{KEY}\", known_hosts = \"{KNOWN}\", connect_timeout = 3"),
    );
    let done = plan(&direct).env("HOME", &home).output().status(3);
    assert!(
        done.stderr().contains("cannot connect"),
        "{}",
        done.stderr()
    );

    let done = plan(&inv).env("HOME", &home).output().status(2);
    assert!(
        done.stdout().contains("create /etc/bind/db.foobar.com"),
        "{}",
        done.stdout()
    );
    let done = Run::new(&["apply", "--host", "inner", "-i"])
        .arg(&inv)
        .env("HOME", &home)
        .output()
        .status(0);
    assert!(
        done.stdout().contains(&format!("@{INNER}: {JUMP}")),
        "the DNS check: {}",
        done.stdout()
    );
    plan(&inv).env("HOME", &home).output().status(0);
    // A chain of jump hosts: the bastion twice (it reaches its own sshd too), the second time
    // as `bastion-again`, whose known_hosts file has a wrong key for it: refused at that hop,
    // which proves the chain reached it; with the right file, the chain goes through.
    let other_key = std::fs::read_to_string(format!("{KEY}.pub")).unwrap();
    let wrong = s.path("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "{JUMP} ssh-ed25519 {}\n",
            other_key.split_whitespace().nth(1).unwrap()
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let again = |known: &str| {
        format!("Host bastion-again\n  HostName {JUMP}\n  UserKnownHostsFile {known}\n{text}")
    };
    std::fs::write(&config, again(&wrong.to_string_lossy())).unwrap();
    let chain = s.write(
        "chain.toml",
        "\"inner\"",
        ", proxy_jump = \"lab-bastion,bastion-again\"",
    );
    let done = plan(&chain).env("HOME", &home).output().status(3);
    let via =
        format!("via root@{JUMP}:22, root@{JUMP}:22: jump host root@{JUMP}:22: HOST KEY CHANGED");
    assert!(done.stderr().contains(&via), "{}", done.stderr());
    std::fs::write(&config, again(KNOWN)).unwrap();
    plan(&chain).env("HOME", &home).output().status(0);
    // The inventory's own proxy_jump = "none" wins over the ssh_config's ProxyJump.
    let none = s.write(
        "none.toml",
        "\"inner\"",
        ", proxy_jump = \"none\", connect_timeout = 3",
    );
    plan(&none).env("HOME", &home).output().status(3);
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_wrong_host_key_for_the_bastion_or_the_inner_host_is_refused() {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    for (victim, hop) in [
        (JUMP, "jump host root@198.18.0.60:22"),
        (INNER, "root@198.18.0.130:22 via"),
    ] {
        let inv = s.with_a_wrong_key_for(victim);
        // --trust-new-hosts never accepts a changed key, on any hop.
        let done = plan(&inv).arg("--trust-new-hosts").output().status(3);
        assert!(
            done.stderr().contains("HOST KEY CHANGED"),
            "{victim}: {}",
            done.stderr()
        );
        assert!(done.stderr().contains(hop), "{victim}: {}", done.stderr());
        assert!(
            done.stderr().contains(&format!("for {victim}.")),
            "{}",
            done.stderr()
        );
    }
    // An unknown bastion is refused too, unless new keys are trusted (then it is recorded).
    let known = std::fs::read_to_string(KNOWN).unwrap();
    let lines: Vec<&str> = known
        .lines()
        .filter(|l| !l.starts_with(&format!("{JUMP} ")))
        .collect();
    let partial = s.path("partial_known_hosts");
    std::fs::write(&partial, lines.join("\n") + "\n").unwrap();
    let config = s.ssh_config("partial_config", Path::new(KEY), &partial);
    let inv = s.write(
        "partial.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );
    let done = plan(&inv).output().status(3);
    assert!(
        done.stderr()
            .contains("jump host root@198.18.0.60:22: unknown host key"),
        "{}",
        done.stderr()
    );
    plan(&inv).arg("--trust-new-hosts").output();
    assert!(std::fs::read_to_string(&partial)
        .unwrap()
        .contains(&format!("{JUMP} ssh-ed25519 ")));
    plan(&inv).output();
}

/// `--ssh-reuse`: the inner host, behind the bastion, is planned through OpenSSH control masters
/// that outlive the run. The plan is the one the ssh2 transport makes; the second run connects
/// nothing (its stats); a changed host key is refused on either hop, also while a master opened
/// with the right known_hosts is up.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn reused_connections_go_through_the_bastion_and_host_keys_are_checked_when_they_open() {
    use std::os::unix::fs::PermissionsExt;
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    let config = s.ssh_config("config", Path::new(KEY), Path::new(KNOWN));
    let inv = s.write(
        "reuse.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );
    let runtime = s.path("run");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sockets = runtime.join("provision-ssh");
    let json = |d: &Done| -> serde_json::Value {
        serde_json::from_str(&d.stdout()).unwrap_or_else(|e| panic!("{e}: {}", d.stdout()))
    };
    let reused = |inv: &Path| {
        plan(inv)
            .args(&["--json", "--ssh-reuse", "60"])
            .env("XDG_RUNTIME_DIR", &runtime.to_string_lossy())
            .output()
    };
    let plain = plan(&inv).arg("--json").output();
    assert!([0, 2].contains(&plain.code()), "{}", plain.stderr());
    let first = reused(&inv);
    let second = reused(&inv);
    // The sockets' masters are this test's: they are told to end, whatever the asserts say.
    let end_masters = || {
        for e in std::fs::read_dir(&sockets).into_iter().flatten().flatten() {
            let _ = Command::new("ssh")
                .args(["-F", "none", "-S"])
                .arg(e.path())
                .args(["-O", "exit", "inner"])
                .output();
        }
    };
    let checks = || {
        for run in [&first, &second] {
            assert_eq!(run.code(), plain.code(), "{}", run.stderr());
            assert_eq!(json(run)["plan"], json(&plain)["plan"]);
        }
        let stats = |d: &Done| json(d)["stats"]["inner"].clone();
        // Two hops when the master connects (the bastion, then the host), none when reused.
        assert_eq!(stats(&first)["connections"], 2, "{}", first.stdout());
        assert_eq!(stats(&second)["connections"], 0, "{}", second.stdout());
        assert_eq!(stats(&second)["channels"], 1, "{}", second.stdout());
        let mode = std::fs::metadata(&sockets).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A changed key, for the bastion, then for the inner host, in another known_hosts file:
        // refused, though a master to the same host is up (one opened with other options is
        // never reused).
        for victim in [JUMP, INNER] {
            let inv = s.with_a_wrong_key_for(victim);
            let done = plan(&inv)
                .args(&["--ssh-reuse", "60"])
                .env("XDG_RUNTIME_DIR", &runtime.to_string_lossy())
                .output()
                .status(3);
            assert!(
                done.stderr().contains("Host key verification failed"),
                "{victim}: {}",
                done.stderr()
            );
        }
        assert_eq!(reused(&inv).code(), plain.code());
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks));
    end_masters();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn hashed_known_hosts_entries_are_checked_on_every_hop() {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    let hashed = s.path("hashed_known_hosts");
    std::fs::copy(KNOWN, &hashed).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&hashed).unwrap();
    assert!(
        !text.contains(JUMP) && !text.contains(INNER) && text.contains("|1|"),
        "{text}"
    );
    let config = s.ssh_config("hashed_config", Path::new(KEY), &hashed);
    let inv = s.write(
        "hashed.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );
    let done = plan(&inv).output();
    assert!(matches!(done.code(), 0 | 2), "{}", done.stderr());
}

/// A key the hosts do not hold is refused and named, whichever way it is read: an unencrypted
/// ed25519 key (read once by provision, signed through libssh2's callback) or an RSA key (read by
/// libssh2). No agent, so only the file is offered.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_key_the_host_does_not_hold_is_refused_and_named() {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    for (name, kind) in [("stranger_ed25519", "ed25519"), ("stranger_rsa", "rsa")] {
        let key = s.path(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let config = s.ssh_config(&format!("{name}_config"), &key, Path::new(KNOWN));
        let inv = s.write(
            &format!("{name}.toml"),
            "\"inner\"",
            &format!(", config = \"{}\"", config.display()),
        );
        let done = plan(&inv).env("SSH_AUTH_SOCK", "").output().status(3);
        let err = done.stderr();
        assert!(
            err.contains("authentication failed")
                && err.contains(&format!("{}: refused", key.display())),
            "{kind}: {err}"
        );
    }
}

/// A key file protected by a passphrase, authorised on both hosts.
fn locked_key(s: &Setup) -> PathBuf {
    let key = s.path("locked_ed25519");
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-C",
            "provision-locked",
            "-N",
            PASSPHRASE,
            "-f",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(format!("{}.pub", key.display())).unwrap();
    for host in [JUMP, INNER] {
        let out = Command::new(root().join("tests/lab/lab"))
            .args(["ssh", if host == JUMP { "jump" } else { "inner" }])
            .arg(format!(
                "echo '{}' >> /root/.ssh/authorized_keys",
                public.trim()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    key
}

struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn a_passphrase_protected_key_comes_from_the_agent_or_from_the_terminal() {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    let key = locked_key(&s);
    let config = s.ssh_config("locked_config", &key, Path::new(KNOWN));
    let inv = s.write(
        "locked.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );

    // No agent, no terminal: refused, saying what to do.
    let done = plan(&inv).env("SSH_AUTH_SOCK", "").output().status(3);
    assert!(
        done.stderr().contains("protected by a passphrase") && done.stderr().contains("ssh-add"),
        "{}",
        done.stderr()
    );

    // The agent holds the key: no passphrase needed.
    let sock = s.path("agent.sock");
    let agent = Agent(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let askpass = s.path("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{PASSPHRASE}'\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let done = plan(&inv)
        .env("SSH_AUTH_SOCK", &sock.to_string_lossy())
        .output();
    assert!(matches!(done.code(), 0 | 2), "{}", done.stderr());
    drop(agent);

    // A terminal: asked once for both hops, without echo; a wrong passphrase is asked again.
    let typed = [format!("wrong {PASSPHRASE}"), PASSPHRASE.to_string()];
    let (code, screen) = on_a_terminal(&inv, &typed);
    assert!(matches!(code, 0 | 2), "exit {code}: {screen}");
    assert_eq!(
        screen.matches("Enter passphrase for key").count(),
        2,
        "{screen}"
    );
    assert!(screen.contains("Wrong passphrase"), "{screen}");
    assert!(
        !screen.contains(PASSPHRASE),
        "the passphrase was shown: {screen}"
    );
}

/// Runs `provision plan` on a pseudo-terminal (`script`), typing each of `answers` when a
/// passphrase prompt appears. Returns the exit status and what the terminal showed.
fn on_a_terminal(inv: &Path, answers: &[String]) -> (i32, String) {
    let cmd = format!(
        "env SSH_AUTH_SOCK= {} plan --host inner -i {}",
        env!("CARGO_BIN_EXE_provision"),
        inv.display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (bsdutils) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Ok(chunk) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        screen.extend_from_slice(&chunk);
        let prompts = String::from_utf8_lossy(&screen)
            .matches("passphrase for key")
            .count();
        if prompts > answered && answered < answers.len() {
            stdin
                .write_all(format!("{}\n", answers[answered]).as_bytes())
                .unwrap();
            answered += 1;
        }
    }
    let status = child.wait().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&screen).into_owned(),
    )
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn through_a_bastion_silent_commands_and_idle_sessions_last_and_a_vanished_host_is_reported_within_a_minute(
) {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new(false);
    let config = s.ssh_config("config", Path::new(KEY), Path::new(KNOWN));
    let inv = s.write(
        "site.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );
    let spec = provision::spec::load(&inv, &provision::spec::SystemSources).unwrap();
    let host = spec.host("inner").unwrap();
    assert_eq!(
        (host.ssh.address.as_str(), host.ssh.alias.as_deref()),
        (INNER, Some("inner"))
    );
    let mut t = provision::transport::SshTransport::connect(
        &host.ssh,
        provision::transport::HostKeyPolicy::Strict,
    )
    .unwrap();
    use provision::transport::Transport;
    // Silent for longer than the dead-peer bound: the keepalives' answers keep it up.
    let t0 = Instant::now();
    let out = t.exec("sleep 45; echo still here", b"").unwrap();
    assert_eq!((out.status, out.text().trim()), (0, "still here"));
    assert!(t0.elapsed() >= Duration::from_secs(45));
    // Idle for as long (as while other hosts' tiers are worked on): nothing is judged.
    std::thread::sleep(Duration::from_secs(45));
    let out = t.exec("echo back", b"").unwrap();
    assert_eq!((out.status, out.text().trim()), (0, "back"));
    // The host vanishes behind the live bastion during a silent command.
    let cut = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(3));
        lab(&["cut", "inner"]);
    });
    let t0 = Instant::now();
    let err = t.exec("sleep 600", b"").unwrap_err().to_string();
    let took = t0.elapsed();
    cut.join().unwrap();
    lab(&["heal", "inner"]);
    eprintln!("vanished host behind the bastion reported after {took:?}: {err}");
    assert!(took < Duration::from_secs(75), "{took:?}: {err}");
    assert!(
        err.contains("connection lost") && err.contains("no answer to keepalives"),
        "{err}"
    );
}

/// No lab needed: the ssh_config is read with the inventory, so a bad value in it is an
/// inventory error (exit 4) naming its file and line, for every command.
#[test]
fn a_bad_value_in_the_ssh_config_is_an_inventory_error_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = Setup { dir };
    let config = s.path("config");
    std::fs::write(
        &config,
        "Host inner\n  HostName 198.18.0.130\n  Port twenty-two\n",
    )
    .unwrap();
    let inv = s.write(
        "inv.toml",
        "\"inner\"",
        &format!(", config = \"{}\"", config.display()),
    );
    let done = Run::new(&["validate", "-i"]).arg(&inv).output().status(4);
    let want = format!(
        "{}:3:1: Port: found \"twenty-two\"; allowed: a port number",
        config.display()
    );
    assert!(done.stderr().contains(&want), "{}", done.stderr());
    std::fs::write(
        &config,
        "Host inner\n  HostName 198.18.0.130\n  Port 2222\n",
    )
    .unwrap();
    Run::new(&["validate", "-i"]).arg(&inv).output().status(0);
    let missing = s.write(
        "missing.toml",
        "\"inner\"",
        ", config = \"/nonexistent/ssh_config\"",
    );
    let done = Run::new(&["validate", "-i"])
        .arg(&missing)
        .output()
        .status(4);
    assert!(
        done.stderr().contains("/nonexistent/ssh_config"),
        "{}",
        done.stderr()
    );
}
