//! The DNS check's client: one query over UDP, and a pure reading of the answer.

use super::CheckFailed;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// One `A` (or `AAAA`) query over UDP; returns the addresses in the answer section.
pub fn dns_query(server: SocketAddr, name: &str, aaaa: bool) -> Result<Vec<String>, CheckFailed> {
    let err = |e: std::io::Error| CheckFailed(format!("DNS {server}: {e}"));
    let bind = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(bind).map_err(err)?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(err)?;
    let id: u16 = (std::process::id() as u16) ^ 0x5a5a;
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    let qtype: u8 = if aaaa { 28 } else { 1 };
    q.extend_from_slice(&[0, 0, qtype, 0, 1]); // root, type A or AAAA, class IN
    sock.send_to(&q, server).map_err(err)?;
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).map_err(err)?;
    parse_answers(&buf[..n], id)
        .ok_or_else(|| CheckFailed(format!("DNS {server}: malformed or failed answer")))
}

fn skip_name(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let len = *b.get(i)? as usize;
        if len == 0 {
            return Some(i + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(i + 2);
        }
        i += len + 1;
    }
}

/// The A and AAAA addresses in a DNS response's answer section.
pub fn parse_answers(b: &[u8], id: u16) -> Option<Vec<String>> {
    if b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id {
        return None;
    }
    let rcode = b[3] & 0x0f;
    if rcode != 0 {
        return None;
    }
    let qd = u16::from_be_bytes([b[4], b[5]]) as usize;
    let an = u16::from_be_bytes([b[6], b[7]]) as usize;
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(b, i)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(b, i)?;
        let kind = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]);
        let len = u16::from_be_bytes([*b.get(i + 8)?, *b.get(i + 9)?]) as usize;
        i += 10;
        if kind == 1 && len == 4 {
            let d = b.get(i..i + 4)?;
            out.push(format!("{}.{}.{}.{}", d[0], d[1], d[2], d[3]));
        } else if kind == 28 && len == 16 {
            let d: [u8; 16] = b.get(i..i + 16)?.try_into().ok()?;
            out.push(std::net::Ipv6Addr::from(d).to_string());
        }
        i += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_a_answer_with_name_compression() {
        // Header (id 0x1234, response, 1 question, 1 answer), question www.x.y A IN, answer ptr to 12.
        let mut b = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[3, b'w', b'w', b'w', 1, b'x', 1, b'y', 0, 0, 1, 0, 1]);
        b.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 18, 0, 10]);
        assert_eq!(parse_answers(&b, 0x1234).unwrap(), vec!["198.18.0.10"]);
        assert!(parse_answers(&b, 0x9999).is_none());
    }

    #[test]
    fn parses_an_aaaa_answer() {
        let mut b = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[1, b'x', 0, 0, 28, 0, 1]);
        b.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        b.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(parse_answers(&b, 0x1234).unwrap(), vec!["2001:db8::1"]);
    }

    #[test]
    fn an_error_rcode_is_a_failure() {
        let b = vec![0x12, 0x34, 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(parse_answers(&b, 0x1234).is_none());
    }
}
