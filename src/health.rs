//! Health checks run from the machine provision runs on: the site's page over HTTP or HTTPS with
//! the right Host header, and DNS answers. Small real clients, so no tool needs to be installed.
//! What only a host can see (a web host reaching the database, a replica's threads, a balancer's
//! view of its backends) is asked over SSH through a `Remote`.

use crate::desired::HealthCheck;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

mod dns;
pub use dns::{dns_query, parse_answers};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailed(pub String);

impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckFailed {}

/// How long and how strictly a check is tried.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// The check counts as failed when it has not passed within this time.
    pub total: Duration,
    /// Passes needed in a row: right after a reload, old workers may still answer with the old
    /// configuration, so one success proves little.
    pub streak: u32,
    /// Time between tries.
    pub gap: Duration,
}

impl Patience {
    /// After a change: several passes in a row within a bounded settle time.
    pub fn after_change(total: Duration) -> Patience {
        Patience {
            total,
            streak: 3,
            gap: Duration::from_millis(100),
        }
    }

    /// A check of a site nobody just changed (`provision check`).
    pub fn once(total: Duration) -> Patience {
        Patience {
            total,
            streak: 1,
            gap: Duration::from_millis(250),
        }
    }
}

/// What runs the checks that need a host (`HealthCheck::Remote`): their command there, over SSH,
/// and the reading of the answer by the component that asked for it.
pub trait Remote: Sync {
    /// One try of `check`: what passed, or why it did not (without the check's description).
    fn check(&self, check: &HealthCheck) -> Result<String, CheckFailed>;
}

/// Runs a check until it has passed `streak` times in a row, or `total` is over.
pub fn run(check: &HealthCheck, p: Patience, remote: &dyn Remote) -> Result<String, CheckFailed> {
    let start = Instant::now();
    let mut passed = 0;
    loop {
        match once(check, remote) {
            Ok(ok) => {
                passed += 1;
                if passed >= p.streak {
                    return Ok(ok);
                }
            }
            Err(e) if start.elapsed() >= p.total => return Err(e),
            Err(_) => passed = 0,
        }
        if start.elapsed() >= p.total && passed > 0 {
            return Err(CheckFailed(format!(
                "{}: passed only {passed} time(s) in a row within {:?}",
                describe(check),
                p.total
            )));
        }
        std::thread::sleep(p.gap);
    }
}

/// Runs every check at once, each as `run` does: the results in the checks' order, or the first
/// failure in that order.
pub fn run_all(
    checks: &[HealthCheck],
    p: Patience,
    remote: &dyn Remote,
) -> Result<Vec<String>, CheckFailed> {
    std::thread::scope(|s| {
        let running: Vec<_> = checks
            .iter()
            .map(|c| s.spawn(move || run(c, p, remote)))
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CheckFailed("a health check panicked".into())))
            })
            .collect()
    })
}

pub fn describe(check: &HealthCheck) -> String {
    match check {
        HealthCheck::Http {
            address,
            port,
            host_header,
            path,
            tls,
            ..
        } => {
            let scheme = if *tls { "https" } else { "http" };
            format!("HTTP GET {scheme}://{host_header}{path} via {address}:{port}")
        }
        HealthCheck::Dns {
            server,
            name,
            expect,
        } => format!("DNS {} {name} @{server}", query_type(expect)),
        HealthCheck::Remote { what, .. } => what.clone(),
    }
}

fn resolve(address: &str, port: u16) -> Result<SocketAddr, CheckFailed> {
    (address, port)
        .to_socket_addrs()
        .map_err(|e| CheckFailed(format!("cannot resolve {address}: {e}")))?
        .next()
        .ok_or_else(|| CheckFailed(format!("no address for {address}")))
}

pub fn once(check: &HealthCheck, remote: &dyn Remote) -> Result<String, CheckFailed> {
    match check {
        HealthCheck::Remote { .. } => match remote.check(check) {
            Ok(ok) => Ok(format!("{}: {ok}", describe(check))),
            Err(e) => Err(CheckFailed(format!("{}: {e}", describe(check)))),
        },
        HealthCheck::Http {
            address,
            port,
            host_header,
            path,
            status: want_status,
            expect,
            tls,
            location,
        } => {
            let got = get(resolve(address, *port)?, host_header, path, *tls)?;
            let (status, body) = (got.status, got.body);
            if status != *want_status {
                return Err(CheckFailed(format!(
                    "{}: status {status}, expected {want_status}",
                    describe(check)
                )));
            }
            if let Some(want) = location {
                if got.location.as_deref() != Some(want.as_str()) {
                    return Err(CheckFailed(format!(
                        "{}: Location {}, expected {want}",
                        describe(check),
                        got.location.as_deref().unwrap_or("(none)")
                    )));
                }
            }
            if let Some(want) = expect {
                if !body.contains(want.as_str()) {
                    return Err(CheckFailed(format!(
                        "{}: the page does not contain {want:?}",
                        describe(check)
                    )));
                }
            }
            if let Some(why) = not_a_page(&body, status, expect.is_some()) {
                return Err(CheckFailed(format!("{}: {why}", describe(check))));
            }
            Ok(format!("{}: {status}", describe(check)))
        }
        HealthCheck::Dns {
            server,
            name,
            expect,
        } => {
            // An A query for the IPv4 answers, an AAAA query for the IPv6 ones.
            let addr = resolve(server, 53)?;
            let has_v6 = expect.iter().any(|a| a.contains(':'));
            let has_v4 = expect.iter().any(|a| !a.contains(':'));
            let mut got = Vec::new();
            if has_v4 || !has_v6 {
                got.extend(dns_query(addr, name, false)?);
            }
            if has_v6 {
                got.extend(dns_query(addr, name, true)?);
            }
            got.sort();
            let mut want = expect.clone();
            want.sort();
            if got == want {
                Ok(format!("{}: {}", describe(check), got.join(", ")))
            } else {
                Err(CheckFailed(format!(
                    "{}: answered [{}], expected [{}]",
                    describe(check),
                    got.join(", "),
                    want.join(", ")
                )))
            }
        }
    }
}

/// Why an answer with the expected status (and text) is still not a page of the site: PHP's source
/// sent as text, whatever `expect` says (the web server did not hand the file to PHP: every
/// visitor reads the code, and any secret in it; the source may well contain the expected text);
/// and, with no `expect`, an empty 200 (a blank page is a broken application, not a page).
fn not_a_page(body: &str, status: u16, expect_given: bool) -> Option<&'static str> {
    // Raw in HTML a browser hides it: a page that shows PHP code escapes it (`&lt;?php`).
    if body.contains("<?php") || body.contains("<?=") {
        return Some("the answer is PHP source sent as text (PHP did not run it)");
    }
    if status == 200 && !expect_given && body.trim().is_empty() {
        return Some("the page is empty");
    }
    None
}

/// What a GET got back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    pub body: String,
}

/// A plain HTTP GET: the status and the body.
pub fn http_get(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), CheckFailed> {
    get(addr, host, path, false).map(|a| (a.status, a.body))
}

/// A GET of `path` with the Host header `host`, over TLS when `tls` says so. Over TLS the host is
/// sent as SNI and the certificate must name it; its chain is not checked against a CA store (a
/// self-signed certificate is made on the host and never seen here; a given one was checked when
/// the inventory was read), so the check proves the server presents the site's certificate.
pub fn get(addr: SocketAddr, host: &str, path: &str, tls: bool) -> Result<Answer, CheckFailed> {
    let scheme = if tls { "HTTPS" } else { "HTTP" };
    let err = |e: &dyn std::fmt::Display| CheckFailed(format!("{scheme} {addr}: {e}"));
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| err(&e))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| err(&e))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| err(&e))?;
    if !tls {
        return exchange(s, host, path).map_err(|e| err(&e));
    }
    let mut ssl =
        openssl::ssl::Ssl::new(tls_context().map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    ssl.set_hostname(host).map_err(|e| err(&e))?;
    let stream = ssl.connect(s).map_err(|e| err(&e))?;
    let names = stream
        .ssl()
        .peer_certificate()
        .map(|c| crate::spec::dns_names(&c))
        .unwrap_or_default();
    if !names.iter().any(|n| crate::spec::covers(n, host)) {
        return Err(err(&format!(
            "the certificate does not cover {host} (it has {})",
            if names.is_empty() {
                "no DNS names".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    exchange(stream, host, path).map_err(|e| err(&e))
}

/// One client context for every check (it is made once: a health check runs many times a second
/// under the streak, and load tests reuse it); no CA store is loaded, as no chain is verified.
fn tls_context() -> Result<&'static openssl::ssl::SslContext, openssl::error::ErrorStack> {
    static CONTEXT: std::sync::OnceLock<openssl::ssl::SslContext> = std::sync::OnceLock::new();
    if let Some(c) = CONTEXT.get() {
        return Ok(c);
    }
    let mut b = openssl::ssl::SslContext::builder(openssl::ssl::SslMethod::tls_client())?;
    b.set_verify(openssl::ssl::SslVerifyMode::NONE);
    Ok(CONTEXT.get_or_init(|| b.build()))
}

fn exchange(mut s: impl Read + Write, host: &str, path: &str) -> std::io::Result<Answer> {
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: provision-check\r\nConnection: close\r\n\r\n")?;
    s.flush()?;
    let mut raw = Vec::new();
    // A TLS peer that closes without close_notify is an error to OpenSSL; what came is the answer.
    if let Err(e) = s.take(4 << 20).read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(e);
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let location = head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    });
    Ok(Answer {
        status,
        location,
        body: body.to_string(),
    })
}

/// The record types asked for: `A` for IPv4 answers, `AAAA` for IPv6 ones.
fn query_type(expect: &[String]) -> &'static str {
    match (
        expect.iter().any(|a| !a.contains(':')),
        expect.iter().any(|a| a.contains(':')),
    ) {
        (true, true) => "A+AAAA",
        (false, true) => "AAAA",
        _ => "A",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_expectation_asks_for_aaaa() {
        assert_eq!(query_type(&["2001:db8::1".to_string()]), "AAAA");
        assert_eq!(query_type(&["198.18.0.10".to_string()]), "A");
        assert_eq!(
            query_type(&["198.18.0.10".to_string(), "2001:db8::1".to_string()]),
            "A+AAAA"
        );
    }

    /// A check of `/` against a real HTTP server on loopback that answers `answer` once.
    fn check_against(answer: &'static str, expect: Option<&str>) -> Result<String, CheckFailed> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The whole request is read before the answer: a socket closed with unread data
            // resets the connection, and the client would see that instead of the answer.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            s.write_all(answer.as_bytes()).unwrap();
        });
        let check = HealthCheck::Http {
            address: "127.0.0.1".into(),
            port,
            host_header: "www.foobar.com".into(),
            path: "/".into(),
            status: 200,
            expect: expect.map(str::to_string),
            tls: false,
            location: None,
        };
        let got = once(&check, &NoHosts);
        server.join().unwrap();
        got
    }

    /// These checks reach no host over SSH.
    struct NoHosts;

    impl Remote for NoHosts {
        fn check(&self, _: &HealthCheck) -> Result<String, CheckFailed> {
            Err(CheckFailed("no host to run it on".into()))
        }
    }

    #[test]
    fn php_source_sent_as_text_fails_the_check_even_with_the_expected_text() {
        let source = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n<?php\n// WordPress\n$db = 'secret';\n";
        for expect in [None, Some("WordPress")] {
            let e = check_against(source, expect).unwrap_err();
            assert!(e.0.contains("PHP source sent as text"), "{e}");
        }
        let short = "HTTP/1.1 200 OK\r\n\r\n<html><?= $title ?></html>";
        assert!(check_against(short, None).is_err());
    }

    #[test]
    fn an_empty_page_fails_a_check_without_expect() {
        let e = check_against("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", None).unwrap_err();
        assert!(e.0.contains("the page is empty"), "{e}");
        let page = "HTTP/1.1 200 OK\r\n\r\n<html><p>&lt;?php echo 1; ?&gt; prints 1</p></html>";
        assert!(check_against(page, None).is_ok());
    }
}
