//! ProxyJump: the next hop's SSH session runs over a `direct-tcpip` channel that the jump host
//! opens to it, as `ssh -J` does. libssh2 runs a session only over a socket, so the channel is
//! bridged to one end of a UNIX socketpair by a thread of its own, the pump, which owns the jump
//! host's session; the next hop's session gets the other end as its socket. A chain of jump
//! hosts is a chain of bridges, each pump carrying the next one's bytes.
//!
//! The pump sleeps in `poll` on both sides (the jump host's socket in the direction libssh2 is
//! blocked on, the socketpair when it has room or data to hand over), never in a busy loop. It
//! sends the jump host's keepalives every `KEEPALIVE_SECS`, so a dead jump host is cut off by the
//! kernel through TCP_USER_TIMEOUT on its real socket, as a direct connection is, and the bridge
//! then closes the next hop's socket.
//!
//! A dead host *behind* a live jump host leaves no socket of ours to time out (the jump host's
//! own TCP connection to it would take a quarter of an hour). The pump cannot tell an answer from
//! a message that wants none (it sees only ciphertext), so it only stamps the time each byte comes
//! from the host (`rx`); the host's session, which knows when it sent a keepalive that wants a
//! reply, is the one to give up when none comes (`SshTransport::wait`).

use super::ssh::{poll_timeout, KEEPALIVE_SECS};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The clock of the `rx` stamps: milliseconds since the first bridge of the process.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// When a byte last came from the far side of a bridge (ms after `epoch`, 0: never).
#[derive(Clone, Default)]
pub struct RxClock(Arc<AtomicU64>);

impl RxClock {
    fn stamp(&self) {
        let ms = epoch().elapsed().as_millis() as u64 + 1;
        self.0.store(ms, Ordering::Relaxed);
    }

    /// Whether a byte came at `t` or later.
    pub fn since(&self, t: Instant) -> bool {
        let last = self.0.load(Ordering::Relaxed);
        last > 0 && epoch() + Duration::from_millis(last - 1) >= t
    }
}

/// Why a jump bridge could not be set up, or why its pump stopped by itself.
#[derive(Debug)]
pub enum JumpError {
    /// The jump host `via` refused or failed the channel to `to` (`host:port`).
    Channel {
        via: String,
        to: String,
        error: ssh2::Error,
    },
    SocketPair(std::io::Error),
    Thread(std::io::Error),
    /// The jump host's session failed while the pump carried bytes.
    Lost {
        via: String,
        error: std::io::Error,
    },
    Keepalive {
        via: String,
        error: ssh2::Error,
    },
    Poll {
        via: String,
        error: std::io::Error,
    },
    /// The jump host closed the channel to `to`.
    Closed {
        via: String,
        to: String,
    },
}

impl std::fmt::Display for JumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JumpError::Channel { via, to, error } => {
                write!(f, "{via} cannot open a connection to {to} ({error})")
            }
            JumpError::SocketPair(e) => write!(f, "a socketpair for the jump: {e}"),
            JumpError::Thread(e) => write!(f, "a thread for the jump: {e}"),
            JumpError::Lost { via, error } => {
                write!(f, "the connection to {via} was lost ({error})")
            }
            JumpError::Keepalive { via, error } => {
                write!(f, "the connection to {via} was lost ({error})")
            }
            JumpError::Poll { via, error } => {
                write!(f, "waiting on the connection to {via}: {error}")
            }
            JumpError::Closed { via, to } => write!(f, "{via} closed the connection to {to}"),
        }
    }
}

impl std::error::Error for JumpError {}

/// How much the pump holds in each direction before it stops reading that side.
const BUFFER: usize = 256 * 1024;

pub struct Bridge {
    thread: Option<JoinHandle<()>>,
    /// Why the pump stopped by itself (the jump host is gone, it closed the connection).
    reason: Arc<Mutex<Option<JumpError>>>,
    rx: RxClock,
}

impl Bridge {
    /// Opens a channel from the jump host (`session`, over `fd`, blocking with its timeout set)
    /// to `host:port`, and starts the pump. Returns the socket for the next hop's session.
    pub fn open(
        session: ssh2::Session,
        fd: OwnedFd,
        via: &str,
        host: &str,
        port: u16,
    ) -> Result<(Bridge, UnixStream), JumpError> {
        let channel = session
            .channel_direct_tcpip(host, port, None)
            .map_err(|error| JumpError::Channel {
                via: via.to_string(),
                to: format!("{host}:{port}"),
                error,
            })?;
        session.set_keepalive(true, KEEPALIVE_SECS);
        session.set_timeout(0);
        session.set_blocking(false);
        let (mine, theirs) = UnixStream::pair().map_err(JumpError::SocketPair)?;
        mine.set_nonblocking(true).map_err(JumpError::SocketPair)?;
        let reason = Arc::new(Mutex::new(None));
        let rx = RxClock::default();
        let pump = Pump {
            rx: rx.clone(),
            session,
            channel,
            fd,
            sock: mine,
            via: via.to_string(),
            to: format!("{host}:{port}"),
        };
        let r = reason.clone();
        let thread = std::thread::Builder::new()
            .name(format!("jump {via}"))
            .spawn(move || {
                if let Some(why) = pump.run() {
                    *r.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                }
            })
            .map_err(JumpError::Thread)?;
        Ok((
            Bridge {
                thread: Some(thread),
                reason,
                rx,
            },
            theirs,
        ))
    }

    /// When bytes last came from the far side.
    pub fn rx(&self) -> RxClock {
        self.rx.clone()
    }

    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(JumpError::to_string)
    }
}

impl Drop for Bridge {
    /// The next hop's session is gone by now (its socket closed), so the pump ends by itself:
    /// it closes the channel, says goodbye to the jump host and returns.
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

#[derive(Clone, Copy)]
struct Want {
    channel_read: bool,
    channel_write: bool,
    sock_read: bool,
    sock_write: bool,
}

struct Pump {
    session: ssh2::Session,
    channel: ssh2::Channel,
    /// The jump host's socket (TCP, or the previous bridge's socketpair).
    fd: OwnedFd,
    sock: UnixStream,
    via: String,
    to: String,
    rx: RxClock,
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

impl Pump {
    /// Carries bytes both ways until one side ends. Returns why, when it is not the next hop's
    /// session closing (the normal end).
    fn run(mut self) -> Option<JumpError> {
        let mut up: Vec<u8> = Vec::new(); // from the next hop's session, toward the host
        let mut down: Vec<u8> = Vec::new(); // from the host, toward the next hop's session
        let mut buf = vec![0u8; 32 * 1024];
        let mut local_eof = false;
        let mut remote_eof = false;
        loop {
            let mut progress = false;
            if down.len() < BUFFER && !remote_eof {
                match self.channel.read(&mut buf) {
                    Ok(0) if self.channel.eof() => {
                        remote_eof = true;
                        progress = true;
                    }
                    Ok(0) => {}
                    Ok(n) => {
                        down.extend_from_slice(&buf[..n]);
                        self.rx.stamp();
                        progress = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(error) => return Some(self.lost(error)),
                }
            }
            if !down.is_empty() {
                match (&self.sock).write(&down) {
                    Ok(n) => {
                        down.drain(..n);
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => local_eof = true, // the next hop's session is gone
                }
            } else if remote_eof {
                self.finish();
                return Some(JumpError::Closed {
                    via: self.via.clone(),
                    to: self.to.clone(),
                });
            }
            if up.len() < BUFFER && !local_eof {
                match (&self.sock).read(&mut buf) {
                    Ok(0) => {
                        local_eof = true;
                        progress = true;
                    }
                    Ok(n) => {
                        up.extend_from_slice(&buf[..n]);
                        progress = true;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => local_eof = true,
                }
            }
            if !up.is_empty() {
                match self.channel.write(&up) {
                    Ok(n) => {
                        up.drain(..n);
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(error) => return Some(self.lost(error)),
                }
            } else if local_eof {
                self.finish();
                return None;
            }
            if !progress {
                let want = Want {
                    channel_read: down.len() < BUFFER && !remote_eof,
                    channel_write: !up.is_empty(),
                    sock_read: up.len() < BUFFER && !local_eof,
                    sock_write: !down.is_empty(),
                };
                if let Err(e) = self.wait(want) {
                    return Some(e);
                }
            }
        }
    }

    /// Sleeps until a side it wants can move or the next keepalive is due. The jump host's
    /// socket is watched only for what the pump wants of it, so a full buffer never turns
    /// readiness it will not use into a busy loop.
    fn wait(&self, want: Want) -> Result<(), JumpError> {
        let next = self
            .session
            .keepalive_send()
            .map_err(|error| JumpError::Keepalive {
                via: self.via.clone(),
                error,
            })?;
        let (blocked, cap) = poll_timeout(&self.session, next);
        let mut jump_events = 0;
        if want.channel_read {
            jump_events |= libc::POLLIN;
        }
        if want.channel_write {
            jump_events |= blocked;
        }
        let mut sock_events = 0;
        if want.sock_read {
            sock_events |= libc::POLLIN;
        }
        if want.sock_write {
            sock_events |= libc::POLLOUT;
        }
        let mut fds = [
            libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: jump_events,
                revents: 0,
            },
            libc::pollfd {
                fd: self.sock.as_raw_fd(),
                events: sock_events,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds that live across the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, cap as libc::c_int) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(JumpError::Poll {
                    via: self.via.clone(),
                    error: e,
                });
            }
        }
        Ok(())
    }

    fn lost(&self, error: std::io::Error) -> JumpError {
        JumpError::Lost {
            via: self.via.clone(),
            error,
        }
    }

    /// Closes the channel and the jump host's session, giving it two seconds at most.
    fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let again = |r: Result<(), ssh2::Error>| matches!(r, Err(e) if e.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_EAGAIN));
        let mut step = 0;
        while step < 3 && Instant::now() < deadline {
            let r = match step {
                0 => self.channel.send_eof(),
                1 => self.channel.close(),
                _ => self.session.disconnect(None, "provision done", None),
            };
            if again(r) {
                let mut pfd = libc::pollfd {
                    fd: self.fd.as_raw_fd(),
                    events: libc::POLLIN | libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd that lives across the call.
                unsafe { libc::poll(&mut pfd, 1, 100) };
            } else {
                step += 1;
            }
        }
    }
}
