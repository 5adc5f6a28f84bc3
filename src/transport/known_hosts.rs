//! known_hosts files: the name a host has in them, which key types they hold for it (plain and
//! hashed `|1|salt|hash` entries), and appending a new key under a lock. The check itself is
//! libssh2's, which reads both kinds of entries.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

type HmacSha1 = Hmac<sha1::Sha1>;

/// The name a host has in known_hosts: `addr`, or `[addr]:port` off port 22.
pub fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

/// Whether one host field entry (`name`, or OpenSSH's hashed `|1|salt|hash`) stands for `name`.
fn entry_is(entry: &str, name: &str) -> bool {
    let Some(rest) = entry.strip_prefix("|1|") else {
        return entry == name;
    };
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = HmacSha1::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `|1|salt|hash` for `name`, with a fresh random salt, as `ssh-keygen -H` writes it.
pub fn hashed_name(name: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 20];
    // SAFETY: a valid buffer of the length passed.
    let n = unsafe { libc::getrandom(salt.as_mut_ptr().cast(), salt.len(), 0) };
    if n != salt.len() as isize {
        return Err(std::io::Error::other(
            "no random bytes for the known_hosts salt",
        ));
    }
    let mut mac = HmacSha1::new_from_slice(&salt).map_err(std::io::Error::other)?;
    mac.update(name.as_bytes());
    Ok(format!(
        "|1|{}|{}",
        B64.encode(salt),
        B64.encode(mac.finalize().into_bytes())
    ))
}

/// Key types (`ssh-ed25519`, ...) recorded for `name` in known_hosts files, plain or hashed, in
/// file order; `@cert-authority` and `@revoked` lines do not count.
pub fn key_types_for(paths: &[impl AsRef<Path>], name: &str) -> Vec<String> {
    let mut types = Vec::new();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim_start();
            if line.starts_with('#') || line.starts_with('@') {
                continue;
            }
            let mut f = line.split_whitespace();
            let (Some(hosts), Some(kind)) = (f.next(), f.next()) else {
                continue;
            };
            if hosts.split(',').any(|h| entry_is(h, name)) && !types.iter().any(|t| t == kind) {
                types.push(kind.to_string());
            }
        }
    }
    types
}

pub fn key_type_name(kind: ssh2::HostKeyType) -> Option<&'static str> {
    Some(match kind {
        ssh2::HostKeyType::Rsa => "ssh-rsa",
        ssh2::HostKeyType::Dss => "ssh-dss",
        ssh2::HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        ssh2::HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        ssh2::HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        ssh2::HostKeyType::Ed25519 => "ssh-ed25519",
        ssh2::HostKeyType::Unknown => return None,
    })
}

/// Appends `name TYPE KEY` to a known_hosts file (`name` hashed when `hash`). Many hosts may be
/// trusted at once (threads of this run, or other runs): the line is appended under an exclusive
/// lock, never by rewriting the file from a copy read earlier, so no writer loses another's line.
pub fn record_key(
    path: &Path,
    name: &str,
    kind: ssh2::HostKeyType,
    key: &[u8],
    hash: bool,
) -> std::io::Result<()> {
    let kind = key_type_name(kind).ok_or_else(|| {
        std::io::Error::other("the server's host key has a type provision does not know")
    })?;
    let key = B64.encode(key);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    // SAFETY: a valid descriptor for the life of `f`; the lock goes with it.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Another writer may have recorded this very key meanwhile.
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let known = text.lines().any(|l| {
        let mut w = l.split_whitespace();
        matches!((w.next(), w.next(), w.next()), (Some(h), Some(k), Some(b))
            if k == kind && b == key && h.split(',').any(|h| entry_is(h, name)))
    });
    if !known {
        let shown = if hash {
            hashed_name(name)?
        } else {
            name.to_string()
        };
        f.write_all(format!("{shown} {kind} {key}\n").as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_hosts_trusted_at_once_are_all_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "old.example ssh-ed25519 AAAA\n").unwrap();
        std::thread::scope(|s| {
            for i in 0..32 {
                let path = &path;
                s.spawn(move || {
                    let name = format!("198.18.0.{i}");
                    let kind = ssh2::HostKeyType::Ed25519;
                    record_key(path, &name, kind, &[i as u8; 32], false).unwrap();
                    // The same key again is not written twice.
                    record_key(path, &name, kind, &[i as u8; 32], false).unwrap();
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 33, "{text}");
        assert!(text.starts_with("old.example ssh-ed25519 AAAA\n"));
        assert!(text.contains("198.18.0.31 ssh-ed25519 "));
    }

    #[test]
    fn key_types_are_found_for_hashed_entries_as_ssh_keygen_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            "198.18.0.60 ssh-ed25519 AAAA\n[198.18.0.60]:2222 ssh-rsa BBBB\n\
             other,198.18.0.130 ecdsa-sha2-nistp256 CCCC\n",
        )
        .unwrap();
        let keygen = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("ssh-keygen (openssh-client) is installed");
        assert!(keygen.status.success(), "{keygen:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("198.18.0"), "hashed: {text}");
        assert_eq!(key_types_for(&[&path], "198.18.0.60"), ["ssh-ed25519"]);
        assert_eq!(key_types_for(&[&path], "[198.18.0.60]:2222"), ["ssh-rsa"]);
        assert_eq!(
            key_types_for(&[&path], "198.18.0.130"),
            ["ecdsa-sha2-nistp256"]
        );
        assert!(key_types_for(&[&path], "198.18.0.61").is_empty());
    }

    #[test]
    fn a_hashed_record_is_found_again_and_ssh_keygen_finds_it_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let kind = ssh2::HostKeyType::Ed25519;
        record_key(&path, "[198.18.0.60]:2222", kind, &[7; 32], true).unwrap();
        record_key(&path, "[198.18.0.60]:2222", kind, &[7; 32], true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.starts_with("|1|") && !text.contains("198.18"),
            "{text}"
        );
        assert_eq!(
            key_types_for(&[&path], "[198.18.0.60]:2222"),
            ["ssh-ed25519"]
        );
        let found = std::process::Command::new("ssh-keygen")
            .args(["-F", "[198.18.0.60]:2222", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(found.status.success(), "ssh-keygen -F: {found:?}");
    }

    #[test]
    fn markers_and_comments_give_no_key_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            "# 198.18.0.60 ssh-rsa X\n@revoked 198.18.0.60 ssh-rsa Y\n@cert-authority * ssh-ed25519 Z\n",
        )
        .unwrap();
        assert!(key_types_for(&[&path], "198.18.0.60").is_empty());
    }
}
