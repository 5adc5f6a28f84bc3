//! A bounded load against a lab address, from this machine: N clients, each sending requests one
//! after the other (a new connection each, as browsers behind a NAT would look) for a fixed time,
//! checking every answer's status and body. Counts what failed and when.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub failed: u64,
    /// Seconds since the start, and why, of the first failures (at most 20 kept).
    pub failures: Vec<(f64, String)>,
    pub seconds: f64,
}

impl Tally {
    pub fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} requests in {:.1} s ({:.0}/s), {} failed{}",
            self.ok + self.failed,
            self.seconds,
            (self.ok + self.failed) as f64 / self.seconds.max(0.001),
            self.failed,
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(
                    ", first at {:.1} s, last at {:.1} s: {}",
                    self.failures[0].0,
                    self.failures.last().unwrap().0,
                    self.failures[0].1
                )
            }
        )
    }
}

/// A load that runs in the background until `stop` (or `max`) and then says what it saw.
pub struct Load {
    stop: std::sync::Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Tally>,
}

impl Load {
    /// `clients` at once against `addr` (port 80, or 443 when it redirects there) with the site's Host header; a response counts as good
    /// with status 200 and `expect` in its body.
    pub fn start(addr: &str, clients: usize, expect: &str, max: Duration) -> Load {
        Load::start_for(addr, "www.foobar.com", clients, expect, max)
    }

    /// `start`, for the site named `host` (the Host header and, over HTTPS, the name asked for).
    pub fn start_for(addr: &str, host: &str, clients: usize, expect: &str, max: Duration) -> Load {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (addr, host, expect) = (addr.to_string(), host.to_string(), expect.to_string());
        let flag = stop.clone();
        let handle = std::thread::spawn(move || run(&addr, &host, clients, &expect, max, &flag));
        Load { stop, handle }
    }

    pub fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the load threads end")
    }
}

fn run(
    addr: &str,
    host: &str,
    clients: usize,
    expect: &str,
    max: Duration,
    stop: &AtomicBool,
) -> Tally {
    let start = Instant::now();
    let ok = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    // Over HTTPS when the site redirects there (each request a new TLS connection, as a new
    // visitor's).
    let plain: std::net::SocketAddr = format!("{addr}:80").parse().expect("a lab address");
    let tls = provision::health::get(plain, host, "/", false).is_ok_and(|a| a.status == 301);
    let port = if tls { 443 } else { 80 };
    let target: std::net::SocketAddr = format!("{addr}:{port}").parse().expect("a lab address");
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) && start.elapsed() < max {
                    let res = provision::health::get(target, host, "/", tls);
                    let why = match res {
                        Ok(a) if a.status == 200 && a.body.contains(expect) => None,
                        Ok(a) => Some(format!("status {} or no row", a.status)),
                        Err(e) => Some(e.0),
                    };
                    match why {
                        None => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(w) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            if let Ok(mut f) = failures.lock() {
                                if f.len() < 20 {
                                    f.push((start.elapsed().as_secs_f64(), w));
                                }
                            }
                            // A refused connection returns at once: do not spin.
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            });
        }
    });
    Tally {
        ok: ok.load(Ordering::SeqCst),
        failed: failed.load(Ordering::SeqCst),
        failures: failures.into_inner().unwrap_or_default(),
        seconds: start.elapsed().as_secs_f64(),
    }
}
