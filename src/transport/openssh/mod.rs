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

    /// A master is up: the command goes through its socket, with no ssh client started, and as
    /// the ssh2 transport runs it (the login shell's `-c`, stderr and stdout merged: the master
    /// writes both to one pipe). `None`: no master is up.
    fn through_master(
        &self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Option<Result<Output>> {
        let socket = self.socket.as_ref()?;
        let mut output = Vec::new();
        let status = mux::run(socket, command, stdin, &mut |r| {
            output = read_lines(r, on_line)?;
            Ok(())
        });
        match status {
            Ok(status) => Some(Ok(Output {
                status: status as i32,
                output,
            })),
            Err(MuxError::Session(e)) => Some(Err(TransportError(format!("{}: {e}", self.target)))),
            Err(MuxError::NoMaster) => None,
        }
    }

    /// The command through an `ssh` client of its own, which stays up as the master when
    /// connection reuse is on.
    fn through_ssh(
        &self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        let fail =
            |what: &str, e: std::io::Error| TransportError(format!("{}: {what}: {e}", self.target));
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
        let (lines, said) = exchange(&mut child, stdin, on_line);
        let output = lines.map_err(|e| fail("reading the output", e))?;
        let status = child.wait().map_err(|e| fail("waiting for ssh", e))?;
        match status.code() {
            // 255 is ssh's own failure (no connection, a refused key): what it and the jump
            // hosts' ssh said is the error.
            Some(255) if !said.is_empty() => Err(self.ssh_failed(&said)),
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

    /// What ssh and the jump hosts' ssh said, as the error of the connection.
    fn ssh_failed(&self, said: &[u8]) -> TransportError {
        let mut text = String::new();
        if let Some(f) = &self.proxy_errors {
            text = std::fs::read_to_string(f).unwrap_or_default();
        }
        text.push_str(&String::from_utf8_lossy(said));
        TransportError(format!("{}: {}", self.target, text.trim()))
    }
}

/// Feeds `stdin` to the child and reads its output line by line, both at once so neither pipe
/// fills up: the lines read, and what the child said on stderr.
fn exchange(
    child: &mut std::process::Child,
    stdin: &[u8],
    on_line: &mut dyn FnMut(&str),
) -> (std::io::Result<Vec<u8>>, Vec<u8>) {
    let mut input = child.stdin.take().expect("stdin is piped");
    let mut errors = child.stderr.take().expect("stderr is piped");
    let mut out = child.stdout.take().expect("stdout is piped");
    let data = stdin.to_vec();
    std::thread::scope(|s| {
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
    })
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
        match self.through_master(command, stdin, on_line) {
            Some(done) => done,
            // None (yet): ssh connects, and stays as the master.
            None => self.through_ssh(command, stdin, on_line),
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
mod tests;
