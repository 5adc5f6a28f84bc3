//! Public key authentication as ssh does it: the agent's keys first (only those of the hop's
//! identity files when IdentitiesOnly, or when the inventory names the key), then the identity files
//! themselves (or ssh's default `~/.ssh/id_*`). A passphrase-protected file whose key the agent
//! does not hold is unlocked with a passphrase asked on the terminal (no echo, once per file for
//! all hosts of the run), or, with no terminal, refused with a message that says to use ssh-agent.
//! Passphrases are kept in memory for the run and never printed. An unencrypted OpenSSH ed25519
//! file is read once per run and signs through a callback (`ed25519`); other files are libssh2's.

use super::route::Hop;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// ssh's default identities, when the hop names none.
const DEFAULT_KEYS: [&str; 3] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"];
/// How often a wrong passphrase may be typed (ssh's NumberOfPasswordPrompts).
const PROMPTS: usize = 3;

/// Passphrases typed during this run, by key file. The lock is held while asking, so hosts
/// connecting in parallel ask once, one at a time.
static PASSPHRASES: Mutex<Vec<(PathBuf, String)>> = Mutex::new(Vec::new());

/// Why no key got the hop's user in: every way that was tried, and why it failed.
#[derive(Debug)]
pub struct AuthError(pub Vec<Attempt>);

/// One way of authenticating that failed.
#[derive(Debug)]
pub enum Attempt {
    /// The agent offered this many keys and the server refused them all.
    AgentRefused(usize),
    Agent(ssh2::Error),
    /// An identity file the hop names that cannot be read.
    Unreadable(PathBuf),
    Key {
        file: PathBuf,
        error: KeyError,
    },
    /// Neither an agent nor a key file to try.
    Nothing,
}

/// Why one identity file did not authenticate.
#[derive(Debug)]
pub enum KeyError {
    /// The server (or libssh2, reading the file) refused it.
    Refused(ssh2::Error),
    WrongPassphrase,
    NoTerminal {
        file: PathBuf,
    },
    Terminal(std::io::Error),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authentication failed: ")?;
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::AgentRefused(n) => write!(f, "{n} ssh-agent key(s) refused"),
            Attempt::Agent(e) => write!(f, "ssh-agent: {e}"),
            Attempt::Unreadable(file) => write!(f, "{}: cannot read it", file.display()),
            Attempt::Key { file, error } => write!(f, "{}: {error}", file.display()),
            Attempt::Nothing => f.write_str(
                "no ssh-agent (SSH_AUTH_SOCK) and no key file (~/.ssh/id_*; set hosts.ssh.identity_file or IdentityFile)",
            ),
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Refused(e) => write!(f, "refused ({})", e.message()),
            KeyError::WrongPassphrase => write!(f, "wrong passphrase, {PROMPTS} times"),
            KeyError::NoTerminal { file } => write!(
                f,
                "the key is protected by a passphrase and there is no terminal to ask for it: \
                 add it to ssh-agent (ssh-add {}) and run again with SSH_AUTH_SOCK set",
                file.display()
            ),
            KeyError::Terminal(e) => {
                write!(f, "cannot read the passphrase from the terminal: {e}")
            }
        }
    }
}

impl std::error::Error for AuthError {}

pub fn authenticate(session: &ssh2::Session, hop: &Hop) -> Result<(), AuthError> {
    let home = super::route::home();
    let files: Vec<PathBuf> = if hop.identity_files.is_empty() {
        DEFAULT_KEYS
            .iter()
            .map(|f| super::route::expand_home(Path::new(f), &home))
            .filter(|p| p.exists())
            .collect()
    } else {
        hop.identity_files.clone()
    };
    let blobs: Vec<Option<Vec<u8>>> = files.iter().map(|f| public_blob(f)).collect();
    let mut tried = Vec::new();
    let mut offered: Vec<Vec<u8>> = Vec::new();

    if std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty()) {
        match agent_auth(session, hop, &blobs, &mut offered) {
            Ok(true) => return Ok(()),
            Ok(false) if offered.is_empty() => {}
            Ok(false) => tried.push(Attempt::AgentRefused(offered.len())),
            Err(e) => tried.push(Attempt::Agent(e)),
        }
    }
    for (file, blob) in files.iter().zip(&blobs) {
        if blob.as_ref().is_some_and(|b| offered.contains(b)) {
            continue; // the agent offered this very key already
        }
        let Ok(text) = std::fs::read(file) else {
            if !hop.identity_files.is_empty() {
                tried.push(Attempt::Unreadable(file.clone()));
            }
            continue;
        };
        match file_auth(session, hop, file, &text) {
            Ok(()) => return Ok(()),
            Err(error) => tried.push(Attempt::Key {
                file: file.clone(),
                error,
            }),
        }
    }
    if tried.is_empty() {
        tried.push(Attempt::Nothing);
    }
    Err(AuthError(tried))
}

/// Offers the agent's keys (only the hop's own when IdentitiesOnly); true when one was accepted.
fn agent_auth(
    session: &ssh2::Session,
    hop: &Hop,
    blobs: &[Option<Vec<u8>>],
    offered: &mut Vec<Vec<u8>>,
) -> Result<bool, ssh2::Error> {
    let mut agent = session.agent()?;
    agent.connect()?;
    agent.list_identities()?;
    for id in agent.identities()? {
        let blob = id.blob().to_vec();
        if hop.identities_only && !blobs.iter().flatten().any(|b| *b == blob) {
            continue;
        }
        offered.push(blob);
        if agent.userauth(&hop.user, &id).is_ok() && session.authenticated() {
            agent.disconnect().ok();
            return Ok(true);
        }
    }
    agent.disconnect().ok();
    Ok(false)
}

fn file_auth(session: &ssh2::Session, hop: &Hop, file: &Path, text: &[u8]) -> Result<(), KeyError> {
    if let Some(key) = super::ed25519::key(file, text) {
        return super::ed25519::authenticate(session, &hop.user, &key).map_err(KeyError::Refused);
    }
    if !is_encrypted(text) {
        return session
            .userauth_pubkey_file(&hop.user, None, file, None)
            .map_err(KeyError::Refused);
    }
    for attempt in 0..PROMPTS {
        let pass = passphrase(file, attempt > 0)?;
        match session.userauth_pubkey_file(&hop.user, None, file, Some(&pass)) {
            Ok(()) => return Ok(()),
            // libssh2 could not decrypt the file: the passphrase was wrong; ask again.
            Err(e) if e.code() == ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_FILE) => {
                forget(file);
            }
            Err(e) => return Err(KeyError::Refused(e)),
        }
    }
    Err(KeyError::WrongPassphrase)
}

/// The passphrase for `file`: typed earlier in this run, else asked on the terminal.
fn passphrase(file: &Path, again: bool) -> Result<String, KeyError> {
    let mut known = PASSPHRASES.lock().unwrap_or_else(|e| e.into_inner());
    if !again {
        if let Some((_, p)) = known.iter().find(|(f, _)| f == file) {
            return Ok(p.clone());
        }
    }
    // SAFETY: isatty only looks at the descriptor.
    if unsafe { libc::isatty(libc::STDIN_FILENO) } != 1 {
        return Err(KeyError::NoTerminal {
            file: file.to_path_buf(),
        });
    }
    let prompt = if again {
        format!(
            "Wrong passphrase. Enter passphrase for key '{}': ",
            file.display()
        )
    } else {
        format!("Enter passphrase for key '{}': ", file.display())
    };
    let p = ask_without_echo(&prompt).map_err(KeyError::Terminal)?;
    known.retain(|(f, _)| f != file);
    known.push((file.to_path_buf(), p.clone()));
    Ok(p)
}

/// Asks on the controlling terminal: echo goes off *before* the prompt is shown (as ssh's
/// readpassphrase does), so an answer typed as soon as the prompt appears is never echoed.
fn ask_without_echo(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: a valid descriptor and termios.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let answer = (|| {
        (&tty).write_all(prompt.as_bytes())?;
        (&tty).flush()?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    })();
    // SAFETY: as above; the terminal gets its echo back whatever the read did.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    answer
}

fn forget(file: &Path) {
    let mut known = PASSPHRASES.lock().unwrap_or_else(|e| e.into_inner());
    known.retain(|(f, _)| f != file);
}

/// The key blob of `file.pub`, to recognise the agent's copy of the same key.
fn public_blob(file: &Path) -> Option<Vec<u8>> {
    let mut pub_path = file.as_os_str().to_owned();
    pub_path.push(".pub");
    let text = std::fs::read_to_string(pub_path).ok()?;
    let b64 = text.split_whitespace().nth(1)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Whether a private key file needs a passphrase: OpenSSH's format names its cipher ("none" when
/// not encrypted); PEM files say ENCRYPTED in their header.
pub fn is_encrypted(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    if let Some(start) = text.find(BEGIN) {
        let body: String = text[start + BEGIN.len()..]
            .lines()
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
            return false;
        };
        let Some(rest) = raw.strip_prefix(b"openssh-key-v1\0") else {
            return false;
        };
        let Some(len) = rest.get(..4) else {
            return false;
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        return rest.get(4..4 + len).is_some_and(|cipher| cipher != b"none");
    }
    text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A key made by ssh-keygen as `dir/name` (`args`: type, passphrase); its private file.
    pub(in crate::transport) fn keygen(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
        let path = dir.join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-C", "test", "-f"])
            .arg(&path)
            .args(args)
            .output()
            .expect("ssh-keygen (openssh-client) is installed");
        assert!(out.status.success(), "{out:?}");
        std::fs::read(path).unwrap()
    }

    #[test]
    fn passphrase_protected_keys_are_told_from_plain_ones_in_every_format() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        assert!(!is_encrypted(&keygen(
            p,
            "plain",
            &["-t", "ed25519", "-N", ""]
        )));
        assert!(is_encrypted(&keygen(
            p,
            "locked",
            &["-t", "ed25519", "-N", "s3cret"]
        )));
        let pem = ["-t", "ecdsa", "-m", "PEM"];
        assert!(!is_encrypted(&keygen(
            p,
            "pem",
            &[&pem[..], &["-N", ""]].concat()
        )));
        assert!(is_encrypted(&keygen(
            p,
            "pem-locked",
            &[&pem[..], &["-N", "s3cret"]].concat()
        )));
        let pkcs8 = ["-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "s3cret"];
        assert!(is_encrypted(&keygen(p, "pkcs8-locked", &pkcs8)));
    }

    #[test]
    fn the_public_half_is_read_from_the_pub_file() {
        let d = tempfile::tempdir().unwrap();
        keygen(d.path(), "k", &["-t", "ed25519", "-N", ""]);
        let blob = public_blob(&d.path().join("k")).unwrap();
        assert_eq!(&blob[4..15], b"ssh-ed25519");
        assert!(public_blob(&d.path().join("missing")).is_none());
    }
}
