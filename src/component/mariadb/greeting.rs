//! Whether the primary answers a web host: its first packet, read on the web host itself (over
//! SSH, so the connection comes from the address the web host really uses). MariaDB sends it before
//! any password: a greeting when an account's host matches the client's address, an error 1130 at
//! once when none does. So one read tells a firewall or a wrong bind address (no connection) from
//! an account for another address (1130) from a server that would take the site's login (greeting);
//! the page with the database row, checked through each web host, proves the password.

use crate::health::CheckFailed;
use crate::transport::Output;

/// How long the web host waits for the connection and the first packet.
const WAIT_SECS: u32 = 5;

/// A shell command, for the web host, that connects to `address:port` with bash's `/dev/tcp` and
/// prints the first packet's payload in hex (`od`): tools of every Debian host.
pub fn command(address: &str, port: u16) -> String {
    let read = format!(
        "exec 3<>/dev/tcp/{address}/{port} || exit 1; \
         set -- $(dd bs=1 count=4 <&3 2>/dev/null | od -An -tu1 -v); \
         [ $# = 4 ] || {{ echo 'the connection closed before any packet'; exit 1; }}; \
         n=$(( $1 + $2 * 256 + $3 * 65536 )); [ $n -le 4096 ] || n=4096; \
         dd bs=$n count=1 iflag=fullblock <&3 2>/dev/null | od -An -tx1 -v"
    );
    format!(
        "timeout {WAIT_SECS} bash -c {}",
        crate::quote::shell_word(&read)
    )
}

/// Reads what `command` printed: the server's greeting is a pass; anything else says why not.
pub fn read(answer: &Output) -> Result<String, CheckFailed> {
    let text = answer.text();
    let failed = |why: String| Err(CheckFailed(why));
    match answer.status {
        0 => {}
        124 => {
            return failed(format!(
                "no answer within {WAIT_SECS} s (a firewall that drops the connection, or an address nobody holds)"
            ))
        }
        _ if text.contains("Connection refused") => {
            return failed("connection refused: MariaDB does not listen on that address (bind-address), or a firewall refuses this web host's address".into())
        }
        _ => {
            let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
            return failed(format!("no connection: {}", last.trim()));
        }
    }
    let bytes: Option<Vec<u8>> = text
        .split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    match bytes.as_deref() {
        Some([0x0a, rest @ ..]) => {
            let version = rest.split(|b| *b == 0).next().unwrap_or_default();
            Ok(format!(
                "greets it (server {})",
                String::from_utf8_lossy(version)
            ))
        }
        Some([0xff, lo, hi, rest @ ..]) => {
            let code = u16::from_le_bytes([*lo, *hi]);
            // After the code, a `#` and a SQL state when the server has one to give.
            let message = match rest {
                [b'#', state @ ..] if state.len() >= 5 => &state[5..],
                _ => rest,
            };
            let message = String::from_utf8_lossy(message);
            let hint = if code == 1130 {
                ": no account of the site's user for the address this web host connects from"
            } else {
                ""
            };
            failed(format!("refused at connect: ERROR {code}: {message}{hint}"))
        }
        _ => failed(format!(
            "not a MariaDB greeting: {}",
            text.trim().chars().take(120).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: i32, text: &str) -> Output {
        Output {
            status,
            output: text.as_bytes().to_vec(),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!(" {b:02x}")).collect()
    }

    #[test]
    fn a_greeting_passes_and_names_the_server() {
        let mut packet = vec![0x0a];
        packet.extend_from_slice(b"11.8.3-MariaDB-0+deb13u1\0");
        packet.extend_from_slice(&[0x2a, 0, 0, 0, 0x41, 0x42]);
        assert_eq!(
            read(&answer(0, &hex(&packet))).unwrap(),
            "greets it (server 11.8.3-MariaDB-0+deb13u1)"
        );
    }

    #[test]
    fn a_host_with_no_account_is_told_apart_from_no_connection() {
        let mut packet = vec![0xff, 0x6a, 0x04];
        packet.extend_from_slice(
            b"Host '198.18.0.21' is not allowed to connect to this MariaDB server",
        );
        let e = read(&answer(0, &hex(&packet))).unwrap_err().0;
        assert!(e.starts_with("refused at connect: ERROR 1130: Host '198.18.0.21' is not allowed"));
        assert!(e.ends_with(
            "no account of the site's user for the address this web host connects from"
        ));
        // An error with a SQL state: the state is left out of the message.
        let mut packet = vec![0xff, 0x10, 0x04, b'#'];
        packet.extend_from_slice(b"08004Too many connections");
        assert_eq!(
            read(&answer(0, &hex(&packet))).unwrap_err().0,
            "refused at connect: ERROR 1040: Too many connections"
        );
        let refused = "bash: connect: Connection refused\nbash: line 1: /dev/tcp/198.18.0.23/3306: Connection refused\n";
        assert!(read(&answer(1, refused))
            .unwrap_err()
            .0
            .contains("bind-address"));
        assert!(read(&answer(124, "")).unwrap_err().0.contains("drops"));
        assert!(
            read(&answer(1, "the connection closed before any packet\n"))
                .unwrap_err()
                .0
                .ends_with("the connection closed before any packet")
        );
    }

    /// The command itself, with this machine's bash and coreutils, against a listener that sends
    /// what MariaDB sends a host it has no account for.
    #[test]
    fn the_command_reads_the_first_packet_from_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut payload = vec![0xff, 0x6a, 0x04];
        payload.extend_from_slice(b"Host '127.0.0.1' is not allowed to connect");
        let serve = payload.clone();
        let server = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            let len = serve.len() as u32;
            let mut packet = len.to_le_bytes()[..3].to_vec();
            packet.push(0);
            packet.extend_from_slice(&serve);
            s.write_all(&packet).unwrap();
        });
        let out = std::process::Command::new("sh")
            .args(["-c", &command("127.0.0.1", port)])
            .output()
            .unwrap();
        server.join().unwrap();
        let got = read(&Output {
            status: out.status.code().unwrap_or(-1),
            output: [out.stdout, out.stderr].concat(),
        });
        assert!(
            got.as_ref()
                .unwrap_err()
                .0
                .contains("ERROR 1130: Host '127.0.0.1'"),
            "{got:?}"
        );
        // Nobody listening: refused, not a greeting.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let out = std::process::Command::new("sh")
            .args(["-c", &command("127.0.0.1", port)])
            .output()
            .unwrap();
        let got = read(&Output {
            status: out.status.code().unwrap_or(-1),
            output: [out.stdout, out.stderr].concat(),
        });
        assert!(got.unwrap_err().0.contains("connection refused"));
    }
}
