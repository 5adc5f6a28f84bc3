//! The SSH transport: the `ssh2` crate, one session per host per run, host keys verified against
//! known_hosts, a non-blocking session whose one wait loop sends keepalives and never gives up on
//! silence (a dead peer is cut off by the kernel through TCP_USER_TIMEOUT).

use super::{HostKeyPolicy, LineSplitter, Output, Result, Stats, Transport, TransportError};
use crate::spec::Ssh;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often an idle session sends an SSH keepalive, in seconds.
const KEEPALIVE_SECS: u32 = 10;
/// How long sent data (keepalives included) may stay unacknowledged before the connection counts
/// as dead. With keepalives every 10 s, a vanished host is reported within about 50 s.
const DEAD_PEER_SECS: u32 = 40;

pub struct SshTransport {
    session: ssh2::Session,
    /// The session's socket, for `poll` and the dead-peer timeout.
    fd: TcpStream,
    stats: Stats,
    target: String,
}

fn expand_home(p: &Path) -> PathBuf {
    match (p.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// The name a host has in known_hosts: `addr`, or `[addr]:port` off port 22.
fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

impl SshTransport {
    pub fn connect(ssh: &Ssh, policy: HostKeyPolicy) -> Result<SshTransport> {
        let target = format!("{}@{}:{}", ssh.user, ssh.address, ssh.port);
        let err = |what: &str, e: &dyn std::fmt::Display| {
            TransportError(format!("{target}: {what}: {e}"))
        };
        let timeout = Duration::from_secs(u64::from(ssh.connect_timeout_secs));
        let addrs: Vec<_> = (ssh.address.as_str(), ssh.port)
            .to_socket_addrs()
            .map_err(|e| err("cannot resolve the address", &e))?
            .collect();
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            err(
                "cannot connect",
                &last
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "no address".into()),
            )
        })?;
        tcp.set_nodelay(true).ok();
        let tcp_fd = tcp
            .try_clone()
            .map_err(|e| err("cannot use the socket", &e))?;
        let mut session = ssh2::Session::new().map_err(|e| err("ssh session", &e))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(timeout.as_millis() as u32);

        let known_path = expand_home(
            ssh.known_hosts
                .as_deref()
                .unwrap_or(Path::new("~/.ssh/known_hosts")),
        );
        let mut known = session.known_hosts().map_err(|e| err("known_hosts", &e))?;
        if known_path.exists() {
            known
                .read_file(&known_path, ssh2::KnownHostFileKind::OpenSSH)
                .map_err(|e| err(&format!("cannot read {}", known_path.display()), &e))?;
        }
        let name = known_hosts_name(&ssh.address, ssh.port);
        // Offer first the key types known_hosts has for this host, so the server presents a key we can check.
        let types = key_types_for(&known_path, &name);
        if !types.is_empty() {
            let mut pref = types.join(",");
            pref.push_str(",ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa");
            session.method_pref(ssh2::MethodType::HostKey, &pref).ok();
        }
        session.handshake().map_err(|e| err("SSH handshake", &e))?;
        let (key, key_type) = session
            .host_key()
            .ok_or_else(|| TransportError(format!("{target}: the server sent no host key")))?;
        match known.check_port(&ssh.address, ssh.port, key) {
            ssh2::CheckResult::Match => {}
            ssh2::CheckResult::Mismatch => {
                return Err(TransportError(format!(
                    "{target}: HOST KEY CHANGED: the key the server sent does not match {} for {name}. \
                     This can be a man-in-the-middle attack, or the host was reinstalled; if you are sure, \
                     remove its line from that file and connect again. Refusing to connect.",
                    known_path.display()
                )))
            }
            ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => {
                if policy == HostKeyPolicy::Strict {
                    return Err(TransportError(format!(
                        "{target}: unknown host key: {name} is not in {}. Refusing to connect; verify the key and add it, \
                         or pass --trust-new-hosts to record it on first use.",
                        known_path.display()
                    )));
                }
                record_key(&known_path, &name, key_type, key)
                    .map_err(|e| err(&format!("recording the host key in {}", known_path.display()), &e))?;
            }
        }

        match &ssh.identity_file {
            Some(id) => {
                let id = expand_home(id);
                session
                    .userauth_pubkey_file(&ssh.user, None, &id, None)
                    .map_err(|e| {
                        err(
                            &format!("public key authentication with {}", id.display()),
                            &e,
                        )
                    })?;
            }
            None => {
                let agent = session.userauth_agent(&ssh.user);
                if agent.is_err() {
                    let mut done = false;
                    for f in ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"] {
                        let p = expand_home(Path::new(f));
                        if p.exists()
                            && session
                                .userauth_pubkey_file(&ssh.user, None, &p, None)
                                .is_ok()
                        {
                            done = true;
                            break;
                        }
                    }
                    if !done {
                        return Err(TransportError(format!(
                            "{target}: authentication failed: no ssh-agent key and no usable ~/.ssh/id_* key was accepted; set hosts.ssh.identity_file"
                        )));
                    }
                }
            }
        }
        // From here on the session is non-blocking and `wait` is the only place that sleeps. libssh2's
        // own blocking wait gives up with "Timed out waiting on socket" whenever nothing arrives
        // within one keepalive interval, so a remote command that is silent for longer (apt on a slow
        // mirror, a maintainer script) would fail. Keepalives are sent by `wait` instead, and a peer
        // that stops acknowledging them is cut off by the kernel (TCP_USER_TIMEOUT).
        session.set_keepalive(true, KEEPALIVE_SECS);
        set_user_timeout(&tcp_fd, DEAD_PEER_SECS).map_err(|e| err("TCP_USER_TIMEOUT", &e))?;
        session.set_timeout(0);
        session.set_blocking(false);
        Ok(SshTransport {
            session,
            fd: tcp_fd,
            stats: Stats {
                connections: 1,
                channels: 0,
                bytes_sent: 0,
            },
            target,
        })
    }

    fn channel(&mut self, command: &str) -> Result<ssh2::Channel> {
        let mut ch = match self.nb("opening a channel", |s| s.channel_session()) {
            Ok(ch) => ch,
            // The socket is gone (the peer vanished while we were not reading): say so plainly.
            Err(e) if !self.alive() => return Err(self.lost("opening a channel", &e)),
            Err(e) => return Err(e),
        };
        self.stats.channels += 1;
        ch.handle_extended_data(ssh2::ExtendedData::Merge)
            .map_err(|e| self.error("channel", &e))?;
        self.nb("exec", |_| ch.exec(command))?;
        Ok(ch)
    }

    /// Whether the connection's socket still works (a pending error such as ETIMEDOUT says no).
    fn alive(&self) -> bool {
        matches!(self.fd.take_error(), Ok(None))
    }

    /// An I/O failure on an open session: the peer is gone (or the network between us).
    fn lost(&self, what: &str, e: &dyn std::fmt::Display) -> TransportError {
        TransportError(format!(
            "{}: connection lost while {what} ({e}): the host stopped answering or the network to it failed; \
             what ran on the host may have finished or not, run plan to see its state",
            self.target
        ))
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> TransportError {
        TransportError(format!("{}: {what}: {e}", self.target))
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, sending keepalives
    /// while it waits. Never gives up on silence: only a dead connection ends the wait.
    fn wait(&self) -> Result<()> {
        let next = self
            .session
            .keepalive_send()
            .map_err(|e| self.lost("sending a keepalive", &e))?;
        let (events, cap_ms) = match self.session.block_directions() {
            ssh2::BlockDirections::Inbound => (libc::POLLIN, u32::MAX),
            ssh2::BlockDirections::Outbound => (libc::POLLOUT, u32::MAX),
            ssh2::BlockDirections::Both => (libc::POLLIN | libc::POLLOUT, u32::MAX),
            // Not blocked on the socket (e.g. waiting for the peer's window): look again soon.
            ssh2::BlockDirections::None => (libc::POLLIN, 50),
        };
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let timeout_ms = (next.clamp(1, KEEPALIVE_SECS) * 1000).min(cap_ms) as libc::c_int;
        // SAFETY: one valid pollfd that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(self.error("waiting on the connection", &e));
            }
        }
        Ok(())
    }

    /// Runs a libssh2 call until it no longer says "would block".
    fn nb<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&ssh2::Session) -> std::result::Result<T, ssh2::Error>,
    ) -> Result<T> {
        loop {
            match f(&self.session) {
                Err(e)
                    if e.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) =>
                {
                    self.wait()?
                }
                Err(e) => return Err(self.error(what, &e)),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Feeds `stdin` to the channel while reading its output, so a command that prints before it has
    /// read all its input never deadlocks against us; returns at the channel's end of output.
    fn pump(
        &mut self,
        ch: &mut ssh2::Channel,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Vec<u8>> {
        let mut lines = LineSplitter::default();
        let mut sent = 0;
        let mut eof_sent = false;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let mut progress = false;
            if sent < stdin.len() {
                match ch.write(&stdin[sent..]) {
                    Ok(n) => {
                        sent += n;
                        progress = n > 0;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(self.lost("sending input", &e)),
                }
            } else if !eof_sent {
                match ch.send_eof() {
                    Ok(()) => {
                        eof_sent = true;
                        progress = true;
                    }
                    Err(e)
                        if e.code()
                            == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN) => {}
                    Err(e) => return Err(self.error("closing input", &e)),
                }
            }
            match ch.read(&mut buf) {
                Ok(0) if ch.eof() => {
                    self.stats.bytes_sent += sent as u64;
                    return Ok(lines.finish());
                }
                Ok(0) => {}
                Ok(n) => {
                    lines.push(&buf[..n], on_line);
                    progress = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.lost("reading output", &e)),
            }
            if !progress {
                self.wait()?;
            }
        }
    }
}

/// Appends `name TYPE KEY` to a known_hosts file. Many hosts may be trusted at once (threads of
/// this run, or other runs): the line is appended under an exclusive lock, never by rewriting the
/// file from a copy read earlier, so no writer loses another's line.
fn record_key(path: &Path, name: &str, kind: ssh2::HostKeyType, key: &[u8]) -> std::io::Result<()> {
    use base64::Engine;
    let kind = match kind {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => {
            return Err(std::io::Error::other(
                "the server's host key has a type provision does not know",
            ))
        }
    };
    let line = format!(
        "{name} {kind} {}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    // SAFETY: a valid descriptor for the life of `f`; the lock goes with it.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Another writer may have recorded this very key meanwhile.
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    if !text.lines().any(|l| l == line.trim_end()) {
        f.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Sets TCP_USER_TIMEOUT: data unacknowledged for longer than this fails the connection.
fn set_user_timeout(s: &TcpStream, secs: u32) -> std::io::Result<()> {
    let ms: libc::c_uint = secs * 1000;
    // SAFETY: a valid socket and a pointer to a c_uint of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            &ms as *const libc::c_uint as *const libc::c_void,
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Key types (`ssh-ed25519`, ...) recorded for `name` in a plain (unhashed) known_hosts file.
fn key_types_for(path: &Path, name: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let hosts = f.next()?;
            let kind = f.next()?;
            hosts
                .split(',')
                .any(|h| h == name)
                .then(|| kind.to_string())
        })
        .collect()
}

impl Transport for SshTransport {
    fn exec_lines(
        &mut self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        let mut ch = self.channel(command)?;
        let output = self.pump(&mut ch, stdin, on_line)?;
        self.nb("closing the channel", |_| ch.wait_close())?;
        let status = ch
            .exit_status()
            .map_err(|e| self.error("exit status", &e))?;
        Ok(Output { status, output })
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn describe(&self) -> String {
        self.target.clone()
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        self.nb("disconnecting", |s| {
            s.disconnect(None, "provision done", None)
        })
        .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_hosts_trusted_at_once_are_all_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "old.example ssh-ed25519 AAAA\n").unwrap();
        std::thread::scope(|s| {
            for i in 0..32 {
                let path = &path;
                s.spawn(move || {
                    record_key(
                        path,
                        &format!("198.18.0.{i}"),
                        ssh2::HostKeyType::Ed25519,
                        &[i as u8; 32],
                    )
                    .unwrap();
                    // The same key again is not written twice.
                    record_key(
                        path,
                        &format!("198.18.0.{i}"),
                        ssh2::HostKeyType::Ed25519,
                        &[i as u8; 32],
                    )
                    .unwrap();
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 33, "{text}");
        assert!(text.starts_with("old.example ssh-ed25519 AAAA\n"));
        assert!(text.contains("198.18.0.31 ssh-ed25519 "));
    }
}
