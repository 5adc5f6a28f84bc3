//! Helpers of the end-to-end tests: the lab's hosts, SSH to them as root with strict host-key
//! checking, the site's page and DNS answers, and the secret that must never be printed.

use crate::util::*;
use std::path::Path;
use std::process::Command;

const LAB: &str = "tests/lab/lab";
pub const KEY: &str = "/var/tmp/provision-lab/ssh/id_ed25519";
pub const KNOWN: &str = "/var/tmp/provision-lab/ssh/known_hosts";

/// The hosts of inventories/lab-lb.toml, which several tests bring to a state of their own (a
/// converged site, a killed seed, a switchover): they take turns. A test that failed while holding
/// them leaves the lock poisoned; the next one takes it anyway, as its first step converges again.
static LB_HOSTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lb_hosts() -> std::sync::MutexGuard<'static, ()> {
    LB_HOSTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn lab(args: &[&str]) {
    let out = Command::new(root().join(LAB))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the lab script runs");
    assert!(
        out.status.success(),
        "lab {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ssh root@ADDR` with the lab's key and strict host-key checking.
pub fn ssh_to(addr: &str) -> Command {
    ssh_with(addr, &[])
}

/// `ssh_to` with more ssh options (`-o` pairs), given before the destination.
pub fn ssh_with(addr: &str, options: &[&str]) -> Command {
    let mut c = Command::new("ssh");
    c.args([
        "-i",
        KEY,
        "-o",
        &format!("UserKnownHostsFile={KNOWN}"),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
    ])
    .args(options)
    .arg(format!("root@{addr}"));
    c
}

/// Runs a command on a lab host as root, with strict host-key checking.
pub fn ssh(addr: &str, cmd: &str) -> String {
    let out = ssh_to(addr).arg(cmd).output().expect("ssh runs");
    assert!(
        out.status.success(),
        "ssh {addr} {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn page(addr: &str) -> (u16, String) {
    site_get(addr, "/").unwrap()
}

/// GET `path` of the site through `addr` as a browser would: over HTTP, and when that redirects
/// to the same URL over HTTPS (the lab inventories end TLS there), over HTTPS (SNI and the
/// certificate's names checked, see `health::get`).
pub fn site_get(addr: &str, path: &str) -> Result<(u16, String), provision::health::CheckFailed> {
    site_get_for(addr, "www.foobar.com", path)
}

/// `site_get` for the site named `host`.
pub fn site_get_for(
    addr: &str,
    host: &str,
    path: &str,
) -> Result<(u16, String), provision::health::CheckFailed> {
    let at = |port: u16| format!("{addr}:{port}").parse().unwrap();
    let plain = provision::health::get(at(80), host, path, false)?;
    if plain.status == 301
        && plain.location.as_deref() == Some(format!("https://{host}{path}").as_str())
    {
        let tls = provision::health::get(at(443), host, path, true)?;
        return Ok((tls.status, tls.body));
    }
    Ok((plain.status, plain.body))
}

/// curl against the site of a lab host only (www.foobar.com pinned to `addr` with `--resolve`):
/// its standard output; a transport failure fails the test. The site's certificate is
/// self-signed in the lab inventories, so it is not verified here (`curl_verified` does).
pub fn curl(addr: &str, args: &[&str]) -> String {
    let mut all = vec!["-k"];
    all.extend_from_slice(args);
    curl_verified(addr, &all)
}

/// `curl`, verifying the certificate as curl does by default (give `--cacert`).
pub fn curl_verified(addr: &str, args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve"])
        .arg(format!("www.foobar.com:80:{addr}"))
        .arg("--resolve")
        .arg(format!("www.foobar.com:443:{addr}"))
        .args(args)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn dig(addr: &str) -> String {
    let out = Command::new("dig")
        .args([
            "+short",
            "+time=2",
            "+tries=2",
            &format!("@{addr}"),
            "www.foobar.com",
            "A",
        ])
        .output()
        .expect("dig runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn secret() -> String {
    std::fs::read_to_string(root().join("inventories/secrets/lab_db_password"))
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

/// No run may print the database password, in any escaped form we know of.
pub fn assert_no_secret(done: &Done) {
    let s = secret();
    for stream in [done.stdout(), done.stderr()] {
        for form in [
            s.clone(),
            provision::quote::sql_string(&s),
            provision::quote::php_string(&s),
        ] {
            assert!(
                !stream.contains(&form),
                "the password was printed:\n{stream}"
            );
        }
        assert!(
            !stream.contains("pa\"ss"),
            "part of the password was printed:\n{stream}"
        );
        assert!(
            !stream.contains("PRIVATE KEY"),
            "a TLS key was printed:\n{stream}"
        );
    }
}

/// A one-host lemp lab inventory for a host of a test's own (name, address, flavour), with absolute
/// paths, written into `dir`; the host is started (fresh: stopped first, so it starts from scratch).
pub fn own_host(
    dir: &Path,
    name: &str,
    addr: &str,
    flavour: &str,
    fresh: bool,
) -> std::path::PathBuf {
    let text = std::fs::read_to_string(inventory("lab-lemp.toml"))
        .unwrap()
        .replace("198.18.0.11", addr)
        .replace("name = \"lemp\"", &format!("name = \"{name}\""))
        .replace("flavour = \"plain\"", &format!("flavour = \"{flavour}\""))
        .replace(
            "\"secrets/",
            &format!("\"{}/inventories/secrets/", root().display()),
        );
    assert!(
        text.contains(&format!("name = \"{name}\""))
            && text.contains(&format!("flavour = \"{flavour}\""))
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    if fresh {
        lab(&["down", &p.to_string_lossy()]);
    }
    lab(&["up", &p.to_string_lossy()]);
    p
}

/// A copy of the template `name` with `edit` applied, in a templates directory under `dir`.
pub fn template_override(dir: &Path, name: &str, edit: &dyn Fn(String) -> String) {
    let orig = std::fs::read_to_string(root().join("templates").join(name)).unwrap();
    let edited = edit(orig.clone());
    assert_ne!(orig, edited, "the edit of {name} changes nothing");
    let to = dir.join(name);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, edited).unwrap();
}
