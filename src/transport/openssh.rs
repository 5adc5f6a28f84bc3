//! Connection reuse, opt-in (`--ssh-reuse SECS`): commands run over an OpenSSH control master that
//! stays up SECS seconds after its last use (ControlMaster/ControlPersist, as Ansible runs it by
//! default). Where none is up, `ssh` runs the command and stays as the master; where one is, the
//! command goes through its socket directly (`mux`), with no `ssh` client started. A later run
//! within that time skips the TCP connect, the key exchange and the authentication, and on the
//! host sshd's per-connection work (its re-exec, PAM, the motd scripts), which are most of what a
//! new connection costs; going through the master's socket directly also saves starting an `ssh`
//! client, a large share of what is left. The price, said in `--help`: the host key is checked
//! when the master connects, not again while it lives, and the control socket (in a directory only
//! this user can open) is as good as a logged-in session.
//!
//! The way to the host is `route`'s, as for the ssh2 transport: ssh runs with `-F none` and every
//! hop's values given on its command line, jump hosts through nested ProxyCommands, so both
//! transports reach the same hosts with the same keys and known_hosts.

use super::mux::{self, MuxError};
use super::route::{self, Hop};
use super::{read_lines, HostKeyPolicy, Output, Result, Stats, Transport, TransportError};
use crate::quote::shell_word;
use crate::spec::Ssh;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct OpenSshTransport {
    /// `ssh` and its options, up to (not including) the host and the command.
    args: Vec<String>,
    host: String,
    target: String,
    /// Where the jump hosts' ssh writes what it says (see `connect`).
    proxy_errors: Option<PathBuf>,
    /// The master's control socket: commands go through it directly while a master is up. None
    /// for a connection that must be new (`connect_new`).
    socket: Option<PathBuf>,
    stats: Stats,
}

impl OpenSshTransport {
    pub fn connect(ssh: &Ssh, policy: HostKeyPolicy, persist_secs: u32) -> Result<Self> {
        Self::open(ssh, policy, Some(persist_secs))
    }

    /// The same way to the host, but every command over a new connection of its own: no master is
    /// used or left behind. What proves that a new login still gets through.
    pub fn connect_new(ssh: &Ssh, policy: HostKeyPolicy) -> Result<Self> {
        Self::open(ssh, policy, None)
    }

    fn open(ssh: &Ssh, policy: HostKeyPolicy, persist_secs: Option<u32>) -> Result<Self> {
        let plain = format!("{}@{}:{}", ssh.user, ssh.address, ssh.port);
        let err = |e: &dyn std::fmt::Display| TransportError(format!("{plain}: {e}"));
        let config = route::config_for(ssh).map_err(|e| err(&e))?;
        let hops = route::route(ssh, config.as_ref()).map_err(|e| err(&e))?;
        let dir = control_dir().map_err(|e| err(&e))?;
        let last = hops.len() - 1;
        // ssh sends a ProxyCommand's stderr to /dev/null when ControlPersist is on: a jump host's
        // refusal (its host key) would go unsaid. It goes to a file of this run instead.
        let proxy_errors = (last > 0).then(|| {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            dir.join(format!("proxy-{}-{n}.err", std::process::id()))
        });
        let host = hops[last].hostname.clone();
        let mut args = hop_args(&hops, last, policy, None);
        let socket = dir.join(socket_name(&args, &host));
        if proxy_errors.is_some() {
            args = hop_args(&hops, last, policy, proxy_errors.as_deref());
        }
        let control = match persist_secs {
            Some(secs) => vec![
                "ControlMaster=auto".to_string(),
                // ssh expands `%` here, and splits the value at blanks outside quotes.
                format!(
                    "ControlPath=\"{}\"",
                    socket.display().to_string().replace('%', "%%")
                ),
                format!("ControlPersist={secs}s"),
            ],
            None => vec![
                "ControlMaster=no".to_string(),
                "ControlPath=none".to_string(),
            ],
        };
        args.extend(control.into_iter().flat_map(|o| ["-o".to_string(), o]));
        let mut target = format!(
            "{} ({})",
            hops[last].describe(),
            if persist_secs.is_some() {
                "--ssh-reuse"
            } else {
                "--ssh-reuse, a new connection"
            }
        );
        if last > 0 {
            let via: Vec<String> = hops[..last].iter().map(Hop::describe).collect();
            target = format!("{target} via {}", via.join(", "));
        }
        // Whether a master is up already (its socket is there; a stale one, of a master that was
        // killed, is replaced by ssh): only then is nothing connected for this run.
        let live = persist_secs.is_some()
            && std::fs::symlink_metadata(&socket)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
        Ok(OpenSshTransport {
            args,
            host,
            target,
            proxy_errors,
            socket: persist_secs.map(|_| socket),
            stats: Stats {
                connections: if live { 0 } else { hops.len() as u32 },
                channels: 0,
                bytes_sent: 0,
            },
        })
    }
}

/// The control socket's name for a host reached with `args`: one master per host and way of
/// reaching it, a digest of both (not ssh's %C, which is only the host, port and user), so a run
/// with other keys, another known_hosts or another policy never rides on a master another run
/// opened, and no host's commands ever go to another's master.
fn socket_name(args: &[String], host: &str) -> String {
    let mut h = Sha256::new();
    for a in args.iter().map(String::as_str).chain([host]) {
        h.update(a.as_bytes());
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// ssh's options for hop `i` of `hops`: where, as whom, which keys and known_hosts, and the way
/// through the hops before it (whose stderr goes to `proxy_errors`, when given).
fn hop_args(
    hops: &[Hop],
    i: usize,
    policy: HostKeyPolicy,
    proxy_errors: Option<&std::path::Path>,
) -> Vec<String> {
    let hop = &hops[i];
    let mut o = vec![
        "BatchMode=yes".to_string(),
        format!(
            "StrictHostKeyChecking={}",
            if hop.accepts_new_key(policy) {
                "accept-new"
            } else {
                "yes"
            }
        ),
        format!("ConnectTimeout={}", hop.connect_timeout.as_secs().max(1)),
        // A dead peer is given up on after about 40 s of silence, as with the ssh2 transport.
        "ServerAliveInterval=10".to_string(),
        "ServerAliveCountMax=4".to_string(),
        format!(
            "HashKnownHosts={}",
            if hop.hash_known_hosts { "yes" } else { "no" }
        ),
    ];
    if hop.identities_only {
        o.push("IdentitiesOnly=yes".into());
    }
    if !hop.known_hosts.is_empty() {
        let files: Vec<String> = hop
            .known_hosts
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        o.push(format!("UserKnownHostsFile={}", files.join(" ")));
    }
    if hop.key_host != hop.hostname || hop.key_port != hop.port {
        o.push(format!(
            "HostKeyAlias={}",
            super::known_hosts::known_hosts_name(&hop.key_host, hop.key_port)
        ));
    }
    if i > 0 {
        // The hop before, carrying a stream to this one (`-W`). ssh expands `%` in a
        // ProxyCommand once, so what is nested in one has its own `%` doubled.
        let mut inner = vec!["ssh".to_string()];
        inner.extend(hop_args(hops, i - 1, policy, None));
        inner.push("-W".into());
        inner.push(format!("{}:{}", bracket(&hop.hostname), hop.port));
        inner.push(hops[i - 1].hostname.clone());
        let mut line: Vec<String> = inner.iter().map(|a| shell_word(a)).collect();
        if let Some(file) = proxy_errors {
            line.push(format!("2>{}", shell_word(&file.to_string_lossy())));
        }
        o.push(format!(
            "ProxyCommand={}",
            line.join(" ").replace('%', "%%")
        ));
    }
    let mut args = vec![
        "-F".to_string(),
        "none".to_string(),
        "-p".to_string(),
        hop.port.to_string(),
        "-l".to_string(),
        hop.user.clone(),
    ];
    for id in &hop.identity_files {
        args.push("-i".into());
        args.push(id.display().to_string());
    }
    for opt in o {
        args.push("-o".into());
        args.push(opt);
    }
    args
}

/// An IPv6 address in brackets, for `-W host:port`.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Why the control sockets' directory cannot be used.
#[derive(Debug)]
enum ControlDirError {
    Create {
        dir: PathBuf,
        error: std::io::Error,
    },
    Read {
        dir: PathBuf,
        error: std::io::Error,
    },
    /// Not a directory, or another's, or others may open it.
    Unsafe {
        dir: PathBuf,
    },
}

impl std::fmt::Display for ControlDirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlDirError::Create { dir, error } => {
                write!(f, "creating {}: {error}", dir.display())
            }
            ControlDirError::Read { dir, error } => write!(f, "reading {}: {error}", dir.display()),
            ControlDirError::Unsafe { dir } => write!(
                f,
                "{} must be a directory of yours that only you can open (mode 0700) to hold reused SSH connections",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for ControlDirError {}

/// Where the control sockets live: a directory of this user's, which nobody else may open
/// (`$XDG_RUNTIME_DIR/provision-ssh`, else `~/.cache/provision-ssh`). One that exists with other
/// rights or another owner is refused, not used.
fn control_dir() -> std::result::Result<PathBuf, ControlDirError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| route::home().join(".cache"));
    let dir = base.join("provision-ssh");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|error| ControlDirError::Create {
            dir: dir.clone(),
            error,
        })?;
    let meta = std::fs::symlink_metadata(&dir).map_err(|error| ControlDirError::Read {
        dir: dir.clone(),
        error,
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(ControlDirError::Unsafe { dir });
    }
    Ok(dir)
}

impl Transport for OpenSshTransport {
    fn exec_lines(
        &mut self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        self.stats.channels += 1;
        self.stats.bytes_sent += stdin.len() as u64;
        let fail =
            |what: &str, e: std::io::Error| TransportError(format!("{}: {what}: {e}", self.target));
        // A master is up: the command goes through its socket, with no ssh client started, and
        // as the ssh2 transport runs it (the login shell's `-c`, stderr and stdout merged: the
        // master writes both to one pipe).
        let mut output = Vec::new();
        let through_master = match &self.socket {
            Some(socket) => mux::run(socket, command, stdin, &mut |r| {
                output = read_lines(r, on_line)?;
                Ok(())
            }),
            None => Err(MuxError::NoMaster),
        };
        match through_master {
            Ok(status) => {
                return Ok(Output {
                    status: status as i32,
                    output,
                })
            }
            Err(MuxError::Session(e)) => {
                return Err(TransportError(format!("{}: {e}", self.target)))
            }
            // None (yet): ssh connects, and stays as the master.
            Err(MuxError::NoMaster) => {}
        }
        // The command's stderr joins its stdout on the host, as the ssh2 transport merges them;
        // ssh's own stderr then holds only ssh's complaints. Through `sh -c`, whatever the
        // user's login shell is.
        let remote = format!("sh -c {}", shell_word(&format!("exec 2>&1; {command}")));
        let mut child = Command::new("ssh")
            .args(&self.args)
            .arg("--")
            .arg(&self.host)
            .arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail("running ssh", e))?;
        let mut input = child.stdin.take().expect("stdin is piped");
        let mut errors = child.stderr.take().expect("stderr is piped");
        let mut out = child.stdout.take().expect("stdout is piped");
        let data = stdin.to_vec();
        let (lines, said) = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                // A command that does not read its input closes the pipe early: not an error.
                let _ = input.write_all(&data);
            });
            let reader = s.spawn(move || {
                let mut said = Vec::new();
                let _ = errors.read_to_end(&mut said);
                said
            });
            let read = read_lines(&mut out, on_line);
            let _ = writer.join();
            let said = reader.join().unwrap_or_default();
            (read, said)
        });
        let output = lines.map_err(|e| fail("reading the output", e))?;
        let status = child.wait().map_err(|e| fail("waiting for ssh", e))?;
        match status.code() {
            // 255 is ssh's own failure (no connection, a refused key): what it and the jump
            // hosts' ssh said is the error.
            Some(255) if !said.is_empty() => {
                let mut text = String::new();
                if let Some(f) = &self.proxy_errors {
                    text = std::fs::read_to_string(f).unwrap_or_default();
                }
                text.push_str(&String::from_utf8_lossy(&said));
                Err(TransportError(format!("{}: {}", self.target, text.trim())))
            }
            Some(code) => Ok(Output {
                status: code,
                output,
            }),
            None => Err(TransportError(format!(
                "{}: ssh was killed by a signal",
                self.target
            ))),
        }
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}

impl Drop for OpenSshTransport {
    fn drop(&mut self) {
        if let Some(f) = &self.proxy_errors {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hop(name: &str, port: u16, key: &str) -> Hop {
        Hop {
            name: name.into(),
            hostname: name.into(),
            port,
            user: "ops".into(),
            identity_files: vec![PathBuf::from(key)],
            identities_only: true,
            known_hosts: vec![PathBuf::from("/k/known hosts")],
            key_host: name.into(),
            key_port: port,
            strict: None,
            hash_known_hosts: false,
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn value<'a>(args: &'a [String], option: &str) -> Vec<&'a str> {
        args.iter()
            .filter_map(|a| a.strip_prefix(&format!("{option}=")))
            .collect()
    }

    #[test]
    fn every_hop_has_its_own_keys_and_the_jump_hosts_nest_in_proxy_commands() {
        let hops = [
            hop("outer", 22, "/k/outer"),
            hop("middle", 2222, "/k/100%"),
            hop("10.0.0.9", 22, "/k/inner"),
        ];
        let log = PathBuf::from("/run/p/proxy-1-0.err");
        let args = hop_args(&hops, 2, HostKeyPolicy::Strict, Some(&log));
        assert_eq!(&args[..6], ["-F", "none", "-p", "22", "-l", "ops"]);
        assert_eq!(args[6..8], ["-i", "/k/inner"]);
        assert_eq!(value(&args, "StrictHostKeyChecking"), ["yes"]);
        assert_eq!(value(&args, "UserKnownHostsFile"), ["\"/k/known hosts\""]);
        let proxy = value(&args, "ProxyCommand");
        assert_eq!(proxy.len(), 1);
        // The middle hop carries the stream to the host, with its own key (its `%` doubled, as
        // ssh expands the ProxyCommand once); its own ProxyCommand, to the outer hop, is nested
        // inside; the chain's stderr goes to the log.
        let p = proxy[0];
        assert!(
            p.starts_with("ssh -F none -p 2222 -l ops -i '/k/100%%' "),
            "{p}"
        );
        assert!(
            p.ends_with(" -W '10.0.0.9:22' middle 2>/run/p/proxy-1-0.err"),
            "{p}"
        );
        assert_eq!(
            p.matches("ProxyCommand=ssh -F none -p 22 -l ops -i /k/outer ")
                .count(),
            1,
            "{p}"
        );
        assert!(p.contains(r#" -W '\''middle:2222'\'' outer'"#), "{p}");
        // Trust on first use is per hop, as for the ssh2 transport.
        let new = hop_args(&hops[..1], 0, HostKeyPolicy::AcceptNew, None);
        assert_eq!(value(&new, "StrictHostKeyChecking"), ["accept-new"]);
        assert!(value(&new, "ProxyCommand").is_empty());
    }

    #[test]
    fn every_host_and_every_way_of_reaching_it_has_its_own_master() {
        let args = hop_args(&[hop("web", 22, "/k/id")], 0, HostKeyPolicy::Strict, None);
        let other = hop_args(
            &[hop("web", 22, "/k/other")],
            0,
            HostKeyPolicy::Strict,
            None,
        );
        let new = hop_args(
            &[hop("web", 22, "/k/id")],
            0,
            HostKeyPolicy::AcceptNew,
            None,
        );
        let names = [
            socket_name(&args, "10.0.0.1"),
            socket_name(&args, "10.0.0.2"),
            socket_name(&other, "10.0.0.1"),
            socket_name(&new, "10.0.0.1"),
        ];
        for (i, a) in names.iter().enumerate() {
            assert_eq!(a.len(), 32);
            assert!(names[i + 1..].iter().all(|b| a != b), "{names:?}");
        }
        assert_eq!(names[0], socket_name(&args, "10.0.0.1"));
    }

    #[test]
    fn a_port_off_22_is_looked_up_under_its_known_hosts_name_only_with_an_alias() {
        let mut h = hop("web", 2222, "/k/id");
        assert!(value(
            &hop_args(&[h.clone()], 0, HostKeyPolicy::Strict, None),
            "HostKeyAlias"
        )
        .is_empty());
        h.key_host = "alias".into();
        h.key_port = 22;
        assert_eq!(
            value(
                &hop_args(&[h], 0, HostKeyPolicy::Strict, None),
                "HostKeyAlias"
            ),
            ["alias"]
        );
        assert_eq!(bracket("fd00::1"), "[fd00::1]");
    }
}
