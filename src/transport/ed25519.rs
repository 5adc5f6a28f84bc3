//! Authentication with an unencrypted OpenSSH ed25519 key file, the key read once per run.
//!
//! libssh2 reads the key file again for every connection and, before its own OpenSSH parser,
//! tries it as PEM through OpenSSL 3's decoder framework, which fails only after trying every
//! decoder under global locks: about a fifth of a no-op's controller CPU per host (measured with
//! perf on 10 and 50 lab hosts), spent on locks every parallel connection queues on. Here the file is parsed once, the key kept as an OpenSSL key,
//! and libssh2 is handed the public blob and a signing callback. Other key types and encrypted
//! files keep libssh2's own path.

use super::Reader;
use openssl::pkey::{Id, PKey, Private};
use std::ffi::{c_int, c_uchar, c_void, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A key ready to sign: the public blob the server is offered and the private key.
pub struct Key {
    blob: Vec<u8>,
    private: PKey<Private>,
}

/// Keys parsed in this run, by file.
static KEYS: Mutex<Vec<(PathBuf, Arc<Key>)>> = Mutex::new(Vec::new());

/// The key of `file` (its contents `text`), when it is an unencrypted OpenSSH ed25519 key.
pub fn key(file: &Path, text: &[u8]) -> Option<Arc<Key>> {
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, k)) = keys.iter().find(|(f, _)| f == file) {
        return Some(k.clone());
    }
    let key = Arc::new(parse(text)?);
    keys.push((file.to_path_buf(), key.clone()));
    Some(key)
}

/// The OpenSSH private key format (PROTOCOL.key): "openssh-key-v1\0", cipher, kdf, kdf options,
/// the number of keys, the public blob, then the private section: two check integers, the key
/// type, the public key and the 64-byte private key (seed, then the public key).
fn parse(text: &[u8]) -> Option<Key> {
    use base64::Engine;
    let text = std::str::from_utf8(text).ok()?;
    let body: String = text
        .lines()
        .skip_while(|l| l.trim() != "-----BEGIN OPENSSH PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    let mut r = Reader(raw.strip_prefix(b"openssh-key-v1\0")?);
    if r.string()? != b"none" || r.string()? != b"none" {
        return None; // encrypted: libssh2 asks for the passphrase
    }
    r.string()?; // kdf options, empty
    if r.u32()? != 1 {
        return None;
    }
    let blob = r.string()?.to_vec();
    let mut p = Reader(r.string()?);
    if p.u32()? != p.u32()? || p.string()? != b"ssh-ed25519" {
        return None;
    }
    let public = p.string()?;
    let secret = p.string()?;
    if public.len() != 32 || secret.len() != 64 || secret[32..] != *public {
        return None;
    }
    let mut pub_blob = Reader(&blob);
    if pub_blob.string()? != b"ssh-ed25519" || pub_blob.string()? != public {
        return None;
    }
    let private = PKey::private_key_from_raw_bytes(&secret[..32], Id::ED25519).ok()?;
    Some(Key { blob, private })
}

unsafe extern "C" {
    // In libssh2 (built and linked by libssh2-sys), not bound by it: public key authentication
    // with the caller's signing callback.
    fn libssh2_userauth_publickey(
        session: *mut libssh2_sys::LIBSSH2_SESSION,
        username: *const std::ffi::c_char,
        pubkeydata: *const c_uchar,
        pubkeydata_len: libc::size_t,
        sign_callback: Option<Sign>,
        abstract_: *mut *mut c_void,
    ) -> c_int;
}

type Sign = unsafe extern "C" fn(
    *mut libssh2_sys::LIBSSH2_SESSION,
    *mut *mut c_uchar,
    *mut libc::size_t,
    *const c_uchar,
    libc::size_t,
    *mut *mut c_void,
) -> c_int;

/// Signs `data` with the key `*abstract_` points at; the signature in memory libssh2 frees with
/// its allocator, which for sessions made by `ssh2::Session::new` is malloc's.
unsafe extern "C" fn sign(
    _session: *mut libssh2_sys::LIBSSH2_SESSION,
    sig: *mut *mut c_uchar,
    sig_len: *mut libc::size_t,
    data: *const c_uchar,
    data_len: libc::size_t,
    abstract_: *mut *mut c_void,
) -> c_int {
    // SAFETY: libssh2 passes back the pointer given to libssh2_userauth_publickey (a live Key,
    // borrowed for that call) and `data_len` bytes at `data`.
    let (key, data) = unsafe {
        (
            &*(*abstract_ as *const Key),
            std::slice::from_raw_parts(data, data_len),
        )
    };
    let Ok(signature) = openssl::sign::Signer::new_without_digest(&key.private)
        .and_then(|mut s| s.sign_oneshot_to_vec(data))
    else {
        return -1;
    };
    // SAFETY: a fresh allocation of the signature's length, filled before libssh2 reads it.
    unsafe {
        let out = libc::malloc(signature.len()) as *mut c_uchar;
        if out.is_null() {
            return -1;
        }
        std::ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        *sig = out;
        *sig_len = signature.len();
    }
    0
}

/// Public key authentication of `user` with `key`.
pub fn authenticate(session: &ssh2::Session, user: &str, key: &Key) -> Result<(), ssh2::Error> {
    let user = CString::new(user)
        .map_err(|_| ssh2::Error::new(ssh2::ErrorCode::Session(-1), "user name has a NUL byte"))?;
    let mut raw = session.raw();
    let raw: *mut libssh2_sys::LIBSSH2_SESSION = &mut *raw;
    let mut abstract_ = key as *const Key as *mut c_void;
    // SAFETY: the session is held (its lock) for the call; the key outlives it.
    let rc = unsafe {
        libssh2_userauth_publickey(
            raw,
            user.as_ptr(),
            key.blob.as_ptr(),
            key.blob.len(),
            Some(sign),
            &mut abstract_,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ssh2::Error::from_session_error_raw(raw, rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::transport::auth::tests::keygen;

    #[test]
    fn an_openssh_ed25519_key_is_read_and_signs_what_its_public_half_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let text = keygen(dir.path(), "key", &["-t", "ed25519", "-N", ""]);
        let key = parse(&text).expect("an ed25519 key");
        let public_line = std::fs::read_to_string(dir.path().join("key.pub")).unwrap();
        use base64::Engine;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(public_line.split_whitespace().nth(1).unwrap())
            .unwrap();
        assert_eq!(key.blob, blob, "the blob offered is the .pub file's");
        let signature = openssl::sign::Signer::new_without_digest(&key.private)
            .unwrap()
            .sign_oneshot_to_vec(b"session id and request")
            .unwrap();
        let public = PKey::public_key_from_raw_bytes(&blob[19..], Id::ED25519).unwrap();
        let mut verifier = openssl::sign::Verifier::new_without_digest(&public).unwrap();
        assert!(verifier
            .verify_oneshot(&signature, b"session id and request")
            .unwrap());
    }

    #[test]
    fn other_keys_are_left_to_libssh2() {
        let dir = tempfile::tempdir().unwrap();
        for (name, args) in [
            ("ecdsa", &["-t", "ecdsa", "-N", ""][..]),
            ("rsa", &["-t", "rsa", "-b", "1024", "-N", ""]),
        ] {
            assert!(parse(&keygen(dir.path(), name, args)).is_none(), "{args:?}");
        }
        // An ed25519 key in PKCS#8 PEM (what `openssl genpkey` writes): libssh2 reads those.
        let pem = PKey::generate_ed25519()
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(parse(&pem).is_none(), "PEM");
        let locked = keygen(dir.path(), "locked", &["-t", "ed25519", "-N", "secret"]);
        assert!(parse(&locked).is_none(), "encrypted");
        assert!(parse(b"not a key").is_none());
    }
}
