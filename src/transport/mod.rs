//! How provision reaches a host: one trait, an SSH implementation (the `ssh2` crate, one session per
//! host per run, host keys verified, the user's ssh_config and ProxyJump honoured) and a local one
//! for the machine provision runs on.

mod auth;
mod connect;
mod ed25519;
mod jump;
mod known_hosts;
mod local;
mod mux;
mod openssh;
pub mod route;
mod ssh;
pub mod ssh_config;

pub use local::LocalTransport;
pub use openssh::OpenSshTransport;
pub use route::{fill_from_ssh_config, route, Hop};
pub use ssh::SshTransport;

use std::io::Read;

#[derive(Debug)]
pub struct TransportError(pub String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportError {}

type Result<T> = std::result::Result<T, TransportError>;

/// The result of a remote command: its exit status and its output, stderr merged into stdout in the
/// order it was written.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub output: Vec<u8>,
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

/// What one run cost on the wire, for the benchmark and `-v`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    pub connections: u32,
    pub channels: u32,
    pub bytes_sent: u64,
}

pub trait Transport: Send {
    /// Runs `command` with `sh -c` semantics, feeding it `stdin`.
    fn exec(&mut self, command: &str, stdin: &[u8]) -> Result<Output> {
        self.exec_lines(command, stdin, &mut |_| {})
    }
    /// Like `exec`, and calls `on_line` with each line of output as it arrives (progress).
    fn exec_lines(
        &mut self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output>;
    fn stats(&self) -> Stats;
    /// `user@address:port`, for messages.
    fn describe(&self) -> String;
}

/// Host key policy for SSH connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only keys already in known_hosts are accepted.
    Strict,
    /// An unknown host's key is accepted and recorded (trust on first use); a changed key is still refused.
    AcceptNew,
}

/// Cuts a byte stream into lines as it arrives, keeping every byte for the caller.
#[derive(Default)]
struct LineSplitter {
    all: Vec<u8>,
    line_start: usize,
}

impl LineSplitter {
    fn push(&mut self, data: &[u8], on_line: &mut dyn FnMut(&str)) {
        self.all.extend_from_slice(data);
        while let Some(pos) = self.all[self.line_start..].iter().position(|b| *b == b'\n') {
            on_line(&String::from_utf8_lossy(
                &self.all[self.line_start..self.line_start + pos],
            ));
            self.line_start += pos + 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.all
    }
}

/// Reads `r` to its end, handing each complete line to `on_line` as soon as it is there.
fn read_lines(r: &mut dyn Read, on_line: &mut dyn FnMut(&str)) -> std::io::Result<Vec<u8>> {
    let mut lines = LineSplitter::default();
    let mut buf = [0u8; 16384];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(lines.finish());
        }
        lines.push(&buf[..n], on_line);
    }
}

/// SSH's wire format (RFC 4251), read from the front: big-endian uint32s, and strings as a
/// uint32 length and that many bytes. A short read is `None`. (OpenSSH's key files and its
/// multiplexing protocol use it too.)
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (n, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*n))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(s)
    }
}
