//! The local transport: the machine provision runs on, for `--local`.

use super::{read_lines, Output, Result, Stats, Transport, TransportError};
use std::io::Write;

/// Runs commands on this machine, for `--local` (provision applied to the machine it runs on).
pub struct LocalTransport {
    stats: Stats,
}

impl LocalTransport {
    pub fn new() -> LocalTransport {
        LocalTransport {
            stats: Stats::default(),
        }
    }
}

impl Default for LocalTransport {
    fn default() -> Self {
        Self::new()
    }
}

/// `sh -c COMMAND` with piped stdin and stdout.
fn spawn_sh(command: &str) -> Result<std::process::Child> {
    use std::process::{Command, Stdio};
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| TransportError(format!("local: {e}")))
}

impl Transport for LocalTransport {
    fn exec_lines(
        &mut self,
        command: &str,
        stdin: &[u8],
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Output> {
        self.stats.channels += 1;
        // stderr goes to the same pipe as stdout, like the SSH transport's merged streams.
        let wrapped = format!("exec 2>&1\n{command}");
        let mut child = spawn_sh(&wrapped)?;
        let mut input = child.stdin.take().expect("piped stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || input.write_all(&data));
        let mut stdout = child.stdout.take().expect("piped stdout");
        let output =
            read_lines(&mut stdout, on_line).map_err(|e| TransportError(format!("local: {e}")))?;
        let _ = writer.join();
        let status = child
            .wait()
            .map_err(|e| TransportError(format!("local: {e}")))?;
        self.stats.bytes_sent += stdin.len() as u64;
        Ok(Output {
            status: status.code().unwrap_or(128),
            output,
        })
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn describe(&self) -> String {
        "local".into()
    }
}
