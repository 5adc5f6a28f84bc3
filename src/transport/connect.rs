//! Opening one SSH session to one hop: the TCP connection (or the socket a jump bridge gives),
//! the handshake with the host key checked against known_hosts, and authentication. Blocking,
//! bounded by the hop's connect timeout; `SshTransport` switches the last hop's session to
//! non-blocking afterwards.

use super::auth;
use super::known_hosts::{key_types_for, record_key};
use super::route::Hop;
use super::ssh::{set_user_timeout, DEAD_PEER_SECS};
use super::ssh_config::Strict;
use super::HostKeyPolicy;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

/// After the types known_hosts holds for the host: every type libssh2 can check.
const HOST_KEY_TYPES: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
    ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// A session that is set up, and its socket for `poll`.
pub struct Opened {
    pub session: ssh2::Session,
    pub fd: OwnedFd,
}

/// Opens the hop's session over `link` (a jump bridge's socket), else over TCP to the hop.
/// Errors are the sentence after `host: `.
pub fn open(hop: &Hop, link: Option<UnixStream>, policy: HostKeyPolicy) -> Result<Opened, String> {
    let mut session = ssh2::Session::new().map_err(|e| format!("ssh session: {e}"))?;
    let fd: OwnedFd = match link {
        Some(sock) => {
            let fd = sock
                .try_clone()
                .map_err(|e| format!("cannot use the socket: {e}"))?;
            session.set_tcp_stream(sock);
            fd.into()
        }
        None => {
            let tcp = tcp_connect(hop)?;
            tcp.set_nodelay(true).ok();
            // From the first byte on: a peer that stops acknowledging is dead within a minute.
            set_user_timeout(&tcp, DEAD_PEER_SECS).map_err(|e| format!("TCP_USER_TIMEOUT: {e}"))?;
            let fd = tcp
                .try_clone()
                .map_err(|e| format!("cannot use the socket: {e}"))?;
            session.set_tcp_stream(tcp);
            fd.into()
        }
    };
    session.set_timeout(hop.connect_timeout.as_millis() as u32);
    check_host_key(&mut session, hop, policy)?;
    auth::authenticate(&session, hop)?;
    Ok(Opened { session, fd })
}

fn tcp_connect(hop: &Hop) -> Result<TcpStream, String> {
    let addrs: Vec<_> = (hop.hostname.as_str(), hop.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the address: {e}"))?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, hop.connect_timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "cannot connect: {}",
        last.map(|e| e.to_string())
            .unwrap_or_else(|| "no address".into())
    ))
}

/// The handshake, and the server's key checked against the hop's known_hosts files under the
/// hop's key name. A changed key is always refused; an unknown one is recorded when the run
/// (`--trust-new-hosts`) or the hop's StrictHostKeyChecking accepts new keys.
fn check_host_key(
    session: &mut ssh2::Session,
    hop: &Hop,
    policy: HostKeyPolicy,
) -> Result<(), String> {
    let name = hop.key_name();
    let mut known = session
        .known_hosts()
        .map_err(|e| format!("known_hosts: {e}"))?;
    for path in hop.known_hosts.iter().filter(|p| p.exists()) {
        known
            .read_file(path, ssh2::KnownHostFileKind::OpenSSH)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    // Offer first the key types known_hosts has for this host, so the server presents a key we
    // can check (libssh2 would call another type's key a mismatch).
    let types = key_types_for(&hop.known_hosts, &name);
    if !types.is_empty() {
        let pref = format!("{},{HOST_KEY_TYPES}", types.join(","));
        session.method_pref(ssh2::MethodType::HostKey, &pref).ok();
    }
    session
        .handshake()
        .map_err(|e| format!("SSH handshake: {e}"))?;
    let (key, key_type) = session
        .host_key()
        .ok_or_else(|| "the server sent no host key".to_string())?;
    let files = hop
        .known_hosts
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match known.check_port(&hop.key_host, hop.key_port, key) {
        ssh2::CheckResult::Match => Ok(()),
        ssh2::CheckResult::Mismatch => Err(format!(
            "HOST KEY CHANGED: the key the server sent does not match {files} for {name}. \
             This can be a man-in-the-middle attack, or the host was reinstalled; if you are sure, \
             remove its line from that file and connect again. Refusing to connect."
        )),
        ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => {
            let accept =
                policy == HostKeyPolicy::AcceptNew || hop.strict == Some(Strict::AcceptNew);
            if !accept {
                return Err(format!(
                    "unknown host key: {name} is not in {files}. Refusing to connect; verify the key and add it, \
                     or pass --trust-new-hosts to record it on first use."
                ));
            }
            let path = &hop.known_hosts[0];
            record_key(path, &name, key_type, key, hop.hash_known_hosts)
                .map_err(|e| format!("recording the host key in {}: {e}", path.display()))
        }
    }
}
