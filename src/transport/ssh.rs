//! The SSH transport: the `ssh2` crate, one session per host per run, reached directly or through
//! ProxyJump hosts (`jump`), the way the user's ssh_config says (`route`); every hop's host key
//! verified against known_hosts (`connect`). The host's session is non-blocking and its one wait
//! loop sends keepalives and never gives up on silence: a dead peer is cut off by the kernel
//! through TCP_USER_TIMEOUT, or, behind a jump host, when its keepalives go unanswered.

use super::connect::{self, ConnectError};
use super::jump::{Bridge, RxClock};
use super::route;
use super::{HostKeyPolicy, LineSplitter, Output, Result, Stats, Transport, TransportError};
use crate::spec::Ssh;
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How often an idle session sends an SSH keepalive, in seconds.
pub const KEEPALIVE_SECS: u32 = 10;
/// How long sent data (keepalives included) may stay unacknowledged before the connection counts
/// as dead. With keepalives every 10 s, a vanished host is reported within about 50 s.
pub const DEAD_PEER_SECS: u32 = 40;

pub struct SshTransport {
    session: ssh2::Session,
    /// The session's socket (TCP, or the last jump bridge's socketpair), for `poll`.
    fd: OwnedFd,
    stats: Stats,
    target: String,
    /// Behind a jump host: when bytes last came from the host (the last bridge's clock), and
    /// since when a keepalive of ours waits for an answer with none come.
    rx: Option<RxClock>,
    unanswered: Cell<Option<Instant>>,
    /// The jump hosts' bridges, outermost first. Declared after `session` and `fd`, so they are
    /// dropped after the session's socket is closed, which is what ends their pumps.
    bridges: Vec<Bridge>,
}

impl SshTransport {
    pub fn connect(ssh: &Ssh, policy: HostKeyPolicy) -> Result<SshTransport> {
        let plain = format!("{}@{}:{}", ssh.user, ssh.address, ssh.port);
        let config = route::config_for(ssh).map_err(|e| TransportError(format!("{plain}: {e}")))?;
        let hops = route::route(ssh, config.as_ref())
            .map_err(|e| TransportError(format!("{plain}: {e}")))?;
        let last = hops.len() - 1;
        let mut target = hops[last].describe();
        if last > 0 {
            let via: Vec<String> = hops[..last].iter().map(|h| h.describe()).collect();
            target = format!("{target} via {}", via.join(", "));
        }
        let mut bridges = Vec::new();
        let mut link = None;
        for (i, hop) in hops.iter().enumerate() {
            let jump = |e: ConnectError| {
                if i == last {
                    TransportError(format!("{target}: {e}"))
                } else {
                    TransportError(format!("{target}: jump host {}: {e}", hop.describe()))
                }
            };
            let opened = connect::open(hop, link.take(), policy).map_err(jump)?;
            if i == last {
                let session = opened.session;
                // From here on the session is non-blocking and `wait` is the only place that
                // sleeps. libssh2's own blocking wait gives up with "Timed out waiting on socket"
                // whenever nothing arrives within one keepalive interval, so a remote command that
                // is silent for longer (apt on a slow mirror, a maintainer script) would fail.
                // Keepalives are sent by `wait` instead; a peer that stops acknowledging them is
                // cut off by the kernel (TCP_USER_TIMEOUT, set at connect) or by the jump bridge.
                session.set_keepalive(true, KEEPALIVE_SECS);
                session.set_timeout(0);
                session.set_blocking(false);
                return Ok(SshTransport {
                    session,
                    fd: opened.fd,
                    stats: Stats {
                        connections: hops.len() as u32,
                        channels: 0,
                        bytes_sent: 0,
                    },
                    target,
                    rx: bridges.last().map(Bridge::rx),
                    unanswered: Cell::new(None),
                    bridges,
                });
            }
            let next = &hops[i + 1];
            let (bridge, sock) = Bridge::open(
                opened.session,
                opened.fd,
                &hop.describe(),
                &next.hostname,
                next.port,
            )
            .map_err(|e| TransportError(format!("{target}: {e}")))?;
            bridges.push(bridge);
            link = Some(sock);
        }
        unreachable!("a route ends with the host itself")
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
        socket_error(&self.fd).is_none() && self.bridges.iter().all(|b| b.reason().is_none())
    }

    /// An I/O failure on an open session: the peer is gone (or the network between us).
    fn lost(&self, what: &str, e: &dyn std::fmt::Display) -> TransportError {
        let why: String = self
            .bridges
            .iter()
            .filter_map(|b| b.reason())
            .map(|r| format!("; {r}"))
            .collect();
        TransportError(format!(
            "{}: connection lost while {what} ({e}{why}): the host stopped answering or the network to it failed; \
             what ran on the host may have finished or not, run plan to see its state",
            self.target
        ))
    }

    fn error(&self, what: &str, e: &dyn std::fmt::Display) -> TransportError {
        TransportError(format!("{}: {what}: {e}", self.target))
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, sending keepalives
    /// while it waits. Never gives up on silence: only a dead connection ends the wait.
    ///
    /// Behind a jump host no socket of ours times out when the host dies (the bridge's socketpair
    /// is local), so the rule is applied here: a keepalive wants a reply, and when neither that
    /// reply nor any other byte comes from the host within `DEAD_PEER_SECS`, the host is gone. Only
    /// a session that waits sends keepalives, so an idle one (between commands, while other hosts
    /// work) is never judged, and a silent command is kept alive by the replies.
    fn wait(&self) -> Result<()> {
        let next = self
            .session
            .keepalive_send()
            .map_err(|e| self.lost("sending a keepalive", &e))?;
        if let Some(rx) = &self.rx {
            match self.unanswered.get() {
                Some(t) if rx.since(t) => self.unanswered.set(None),
                Some(t) if t.elapsed() >= Duration::from_secs(u64::from(DEAD_PEER_SECS)) => {
                    return Err(self.lost(
                        "waiting",
                        &format!("no answer to keepalives for {DEAD_PEER_SECS} s"),
                    ));
                }
                _ => {}
            }
            // keepalive_send reports a full interval to the next one when it has just sent one.
            if next >= KEEPALIVE_SECS && self.unanswered.get().is_none() {
                self.unanswered.set(Some(Instant::now()));
            }
        }
        let (events, timeout_ms) = poll_timeout(&self.session, next);
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms as libc::c_int) };
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

/// Sets TCP_USER_TIMEOUT: data unacknowledged for longer than this fails the connection.
pub(super) fn set_user_timeout(s: &TcpStream, secs: u32) -> std::io::Result<()> {
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

/// What `poll` waits for on a non-blocking session's socket, and for how long at most (ms): the
/// direction libssh2 is blocked on until the next keepalive is due; when it is not blocked on the
/// socket (e.g. waiting for the peer's window), a short look again.
pub(super) fn poll_timeout(session: &ssh2::Session, next_keepalive: u32) -> (libc::c_short, u32) {
    let keepalive_ms = next_keepalive.clamp(1, KEEPALIVE_SECS) * 1000;
    match session.block_directions() {
        ssh2::BlockDirections::Inbound => (libc::POLLIN, keepalive_ms),
        ssh2::BlockDirections::Outbound => (libc::POLLOUT, keepalive_ms),
        ssh2::BlockDirections::Both => (libc::POLLIN | libc::POLLOUT, keepalive_ms),
        ssh2::BlockDirections::None => (libc::POLLIN, keepalive_ms.min(50)),
    }
}

/// The socket's pending error (SO_ERROR), such as ETIMEDOUT once TCP_USER_TIMEOUT gave up.
fn socket_error(fd: &OwnedFd) -> Option<std::io::Error> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, and an int of the size passed.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    match (rc, err) {
        (0, 0) => None,
        (0, e) => Some(std::io::Error::from_raw_os_error(e)),
        _ => Some(std::io::Error::last_os_error()),
    }
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
