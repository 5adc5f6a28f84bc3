//! OpenSSH's multiplexing protocol (PROTOCOL.mux in OpenSSH's source), the client's side of a
//! "passenger" session: a command run over a control master's connection without starting an
//! `ssh` client for it. Starting the client alone (its libraries, OpenSSL) was a noticeable share
//! of a kept `plan` on a lab host, and buys nothing: the master does the same work either way.
//!
//! The exchange: both sides say hello (protocol 4); the client asks for a session (no tty, no
//! forwarding, no escape character) and passes its stdin, stdout and stderr over the socket
//! (SCM_RIGHTS); the master runs the command on its connection, writes to those descriptors, and
//! ends with the command's exit status.

use super::Reader;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

const HELLO: u32 = 0x0000_0001;
const NEW_SESSION: u32 = 0x1000_0002;
const OK: u32 = 0x8000_0001;
const PERMISSION_DENIED: u32 = 0x8000_0002;
const FAILURE: u32 = 0x8000_0003;
const EXIT_MESSAGE: u32 = 0x8000_0004;
const SESSION_OPENED: u32 = 0x8000_0006;
const TTY_ALLOC_FAIL: u32 = 0x8000_0008;
const VERSION: u32 = 4;

/// Why a session could not be run through the master.
#[derive(Debug)]
pub enum MuxError {
    /// No master answers on the socket (none, a stale socket, another protocol version): nothing
    /// was asked of the host, so the caller may start `ssh` instead.
    NoMaster,
    /// The master took the request and failed it, or went away during it.
    Session(String),
}

/// Runs `command` through the master listening on `socket`, feeding it `stdin`; its stdout and
/// stderr, merged, go to `on_output` as they arrive. Returns the exit status.
pub fn run(
    socket: &Path,
    command: &str,
    stdin: &[u8],
    on_output: &mut dyn FnMut(&mut dyn Read) -> io::Result<()>,
) -> Result<u32, MuxError> {
    let mut s = UnixStream::connect(socket).map_err(|_| MuxError::NoMaster)?;
    let hello = [HELLO.to_be_bytes(), VERSION.to_be_bytes()].concat();
    send(&mut s, &hello).map_err(|_| MuxError::NoMaster)?;
    let theirs = receive(&mut s).map_err(|_| MuxError::NoMaster)?;
    let mut r = Reader(&theirs);
    if r.u32() != Some(HELLO) || r.u32() != Some(VERSION) {
        return Err(MuxError::NoMaster);
    }
    let lost = |e: io::Error| MuxError::Session(format!("the control master: {e}"));
    let mut m = Vec::new();
    for v in [NEW_SESSION, 0] {
        m.extend(v.to_be_bytes());
    }
    put_string(&mut m, b""); // reserved
    for flag in [0u32; 4] {
        m.extend(flag.to_be_bytes()); // tty, X11, agent, subsystem
    }
    m.extend(u32::MAX.to_be_bytes()); // no escape character
    put_string(&mut m, b""); // terminal type
    put_string(&mut m, command.as_bytes());
    send(&mut s, &m).map_err(lost)?;
    let (input_r, input_w) = pipe().map_err(lost)?;
    let (output_r, output_w) = pipe().map_err(lost)?;
    // stderr is stdout: merged, as the ssh2 transport merges them.
    for fd in [&input_r, &output_w, &output_w] {
        send_fd(s.as_raw_fd(), fd.as_raw_fd()).map_err(lost)?;
    }
    // The master holds its own copies now: the output ends when it closes them.
    drop((input_r, output_w));
    let mut output_r = std::fs::File::from(output_r);
    let read = std::thread::scope(|scope| {
        let data = stdin;
        let mut input_w = std::fs::File::from(input_w);
        scope.spawn(move || {
            // A command that does not read its input closes the pipe early: not an error.
            let _ = input_w.write_all(data);
        });
        on_output(&mut output_r)
    });
    read.map_err(lost)?;
    loop {
        let reply = receive(&mut s).map_err(|e| {
            MuxError::Session(format!(
                "the control master ended without the command's exit status ({e})"
            ))
        })?;
        let mut r = Reader(&reply);
        match r.u32() {
            Some(EXIT_MESSAGE) => {
                let _session = r.u32();
                return r
                    .u32()
                    .ok_or_else(|| MuxError::Session("a short exit message".into()));
            }
            Some(PERMISSION_DENIED | FAILURE) => {
                let _request = r.u32();
                let why = r.string().unwrap_or_default();
                return Err(MuxError::Session(format!(
                    "the control master refused the session: {}",
                    String::from_utf8_lossy(why)
                )));
            }
            Some(OK | SESSION_OPENED | TTY_ALLOC_FAIL) => {}
            other => {
                return Err(MuxError::Session(format!(
                    "the control master sent an unknown message {other:?}"
                )))
            }
        }
    }
}

/// A pipe, (read end, write end), closed on exec (std's `io::pipe` is newer than the MSRV).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned here alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One packet: its length, then its body (which starts with its type).
fn send(s: &mut UnixStream, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(io::Error::other)?;
    s.write_all(&[&len.to_be_bytes()[..], body].concat())
}

fn receive(s: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    // The master's replies are a few words; a bound keeps a confused peer from asking for more.
    if len > 256 * 1024 {
        return Err(io::Error::other(format!("a packet of {len} bytes")));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn put_string(m: &mut Vec<u8>, s: &[u8]) {
    m.extend((s.len() as u32).to_be_bytes());
    m.extend(s);
}

/// Passes `fd` over the socket as OpenSSH's mm_send_fd does: one byte of data, the descriptor in
/// an SCM_RIGHTS control message.
fn send_fd(sock: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let size = std::mem::size_of::<RawFd>() as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size) } as usize;
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: an all-zero msghdr is valid; its pointers are set below to live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: the control buffer holds CMSG_SPACE(size) bytes, room for one header and one fd.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: msg points at the buffers above, alive for the call.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        match n {
            1 => return Ok(()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            _ => return Err(io::Error::other("sending a descriptor: a short write")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_and_strings_read_back_and_short_ones_are_refused() {
        let mut m = Vec::new();
        m.extend(FAILURE.to_be_bytes());
        m.extend(7u32.to_be_bytes());
        put_string(&mut m, b"no");
        let mut r = Reader(&m);
        assert_eq!(
            (r.u32(), r.u32(), r.string()),
            (Some(FAILURE), Some(7), Some(&b"no"[..]))
        );
        assert_eq!(r.u32(), None);
        let mut short = Reader(&[0, 0, 0, 9, b'x']);
        assert_eq!(short.string(), None);
    }

    #[test]
    fn no_master_on_the_socket_is_told_apart() {
        let d = tempfile::tempdir().unwrap();
        let e = run(&d.path().join("none"), "true", b"", &mut |_| Ok(())).unwrap_err();
        assert!(matches!(e, MuxError::NoMaster), "{e:?}");
    }
}
