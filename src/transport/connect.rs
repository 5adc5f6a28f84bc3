//! Opening one SSH session to one hop: the TCP connection (or the socket a jump bridge gives),
//! the handshake with the host key checked against known_hosts, and authentication. Blocking,
//! bounded by the hop's connect timeout; `SshTransport` switches the last hop's session to
//! non-blocking afterwards.

use super::auth::{self, AuthError};
use super::known_hosts::{key_types_for, record_key};
use super::route::Hop;
use super::ssh::{set_user_timeout, DEAD_PEER_SECS};
use super::HostKeyPolicy;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// After the types known_hosts holds for the host: every type libssh2 can check.
const HOST_KEY_TYPES: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,\
    ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

/// Why one hop's session could not be opened: the sentence after `host: `.
#[derive(Debug)]
pub enum ConnectError {
    Session(ssh2::Error),
    Socket(std::io::Error),
    UserTimeout(std::io::Error),
    Resolve(std::io::Error),
    /// No address answered: the last one's error, if there was an address at all.
    Connect(Option<std::io::Error>),
    KnownHosts(ssh2::Error),
    ReadKnownHosts {
        path: PathBuf,
        error: ssh2::Error,
    },
    Handshake(ssh2::Error),
    NoHostKey,
    /// The server's key differs from the one known for `name` in `files` (a list for messages).
    HostKeyChanged {
        name: String,
        files: String,
    },
    UnknownHostKey {
        name: String,
        files: String,
    },
    RecordKey {
        path: PathBuf,
        error: std::io::Error,
    },
    Auth(AuthError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Session(e) => write!(f, "ssh session: {e}"),
            ConnectError::Socket(e) => write!(f, "cannot use the socket: {e}"),
            ConnectError::UserTimeout(e) => write!(f, "TCP_USER_TIMEOUT: {e}"),
            ConnectError::Resolve(e) => write!(f, "cannot resolve the address: {e}"),
            ConnectError::Connect(Some(e)) => write!(f, "cannot connect: {e}"),
            ConnectError::Connect(None) => write!(f, "cannot connect: no address"),
            ConnectError::KnownHosts(e) => write!(f, "known_hosts: {e}"),
            ConnectError::ReadKnownHosts { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ConnectError::Handshake(e) => write!(f, "SSH handshake: {e}"),
            ConnectError::NoHostKey => write!(f, "the server sent no host key"),
            ConnectError::HostKeyChanged { name, files } => write!(
                f,
                "HOST KEY CHANGED: the key the server sent does not match {files} for {name}. \
                 This can be a man-in-the-middle attack, or the host was reinstalled; if you are sure, \
                 remove its line from that file and connect again. Refusing to connect."
            ),
            ConnectError::UnknownHostKey { name, files } => write!(
                f,
                "unknown host key: {name} is not in {files}. Refusing to connect; verify the key and add it, \
                 or pass --trust-new-hosts to record it on first use."
            ),
            ConnectError::RecordKey { path, error } => {
                write!(f, "recording the host key in {}: {error}", path.display())
            }
            ConnectError::Auth(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// A session that is set up, and its socket for `poll`.
pub struct Opened {
    pub session: ssh2::Session,
    pub fd: OwnedFd,
}

/// Opens the hop's session over `link` (a jump bridge's socket), else over TCP to the hop.
/// Errors are the sentence after `host: `.
pub fn open(
    hop: &Hop,
    link: Option<UnixStream>,
    policy: HostKeyPolicy,
) -> Result<Opened, ConnectError> {
    let mut session = ssh2::Session::new().map_err(ConnectError::Session)?;
    let fd: OwnedFd = match link {
        Some(sock) => {
            let fd = sock.try_clone().map_err(ConnectError::Socket)?;
            session.set_tcp_stream(sock);
            fd.into()
        }
        None => {
            let tcp = tcp_connect(hop)?;
            tcp.set_nodelay(true).ok();
            // From the first byte on: a peer that stops acknowledging is dead within a minute.
            set_user_timeout(&tcp, DEAD_PEER_SECS).map_err(ConnectError::UserTimeout)?;
            let fd = tcp.try_clone().map_err(ConnectError::Socket)?;
            session.set_tcp_stream(tcp);
            fd.into()
        }
    };
    session.set_timeout(hop.connect_timeout.as_millis() as u32);
    check_host_key(&mut session, hop, policy)?;
    auth::authenticate(&session, hop).map_err(ConnectError::Auth)?;
    Ok(Opened { session, fd })
}

fn tcp_connect(hop: &Hop) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (hop.hostname.as_str(), hop.port)
        .to_socket_addrs()
        .map_err(ConnectError::Resolve)?
        .collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, hop.connect_timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Connect(last))
}

/// The handshake, and the server's key checked against the hop's known_hosts files under the
/// hop's key name. A changed key is always refused; an unknown one is recorded when the hop
/// accepts new keys (`Hop::accepts_new_key`).
fn check_host_key(
    session: &mut ssh2::Session,
    hop: &Hop,
    policy: HostKeyPolicy,
) -> Result<(), ConnectError> {
    let name = hop.key_name();
    let mut known = session.known_hosts().map_err(ConnectError::KnownHosts)?;
    for path in hop.known_hosts.iter().filter(|p| p.exists()) {
        known
            .read_file(path, ssh2::KnownHostFileKind::OpenSSH)
            .map_err(|error| ConnectError::ReadKnownHosts {
                path: path.clone(),
                error,
            })?;
    }
    // Offer first the key types known_hosts has for this host, so the server presents a key we
    // can check (libssh2 would call another type's key a mismatch).
    let types = key_types_for(&hop.known_hosts, &name);
    if !types.is_empty() {
        let pref = format!("{},{HOST_KEY_TYPES}", types.join(","));
        session.method_pref(ssh2::MethodType::HostKey, &pref).ok();
    }
    session.handshake().map_err(ConnectError::Handshake)?;
    let (key, key_type) = session.host_key().ok_or(ConnectError::NoHostKey)?;
    let files = hop
        .known_hosts
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match known.check_port(&hop.key_host, hop.key_port, key) {
        ssh2::CheckResult::Match => Ok(()),
        ssh2::CheckResult::Mismatch => Err(ConnectError::HostKeyChanged { name, files }),
        ssh2::CheckResult::NotFound | ssh2::CheckResult::Failure => {
            if !hop.accepts_new_key(policy) {
                return Err(ConnectError::UnknownHostKey { name, files });
            }
            let path = &hop.known_hosts[0];
            record_key(path, &name, key_type, key, hop.hash_known_hosts).map_err(|error| {
                ConnectError::RecordKey {
                    path: path.clone(),
                    error,
                }
            })
        }
    }
}
