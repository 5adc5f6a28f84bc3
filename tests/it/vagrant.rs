//! The Vagrant VMs of `vagrant/` (issue 25), through the real `vagrant` and the real Vagrantfiles.
//! The end-to-end test boots the VM for real: `vagrant up --provider=libvirt` from `vagrant/`
//! (libvirt driving QEMU's software emulation, set up by `tests/vagrant/vagrant-lab`), then
//! `provision apply` of `inventories/vagrant.toml` against it, and `vagrant destroy -f` leaving
//! nothing behind. It needs root and `tests/vagrant/install-deps`; `tests/run` runs it with the
//! other end-to-end tests. Its addresses: the VM's network 198.18.2.0/24 (the VM .10, this
//! machine .1) and vagrant-libvirt's management network 198.18.3.0/24.

use crate::lab::{assert_no_secret, dig, page, secret};
use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const NET: &str = "198.18.2.0/24";
const MGMT: &str = "198.18.3.0/24";
const ADDR: &str = "198.18.2.10";
const VAGRANT_LAB: &str = "tests/vagrant/vagrant-lab";

/// A user of the Vagrantfiles: a home of their own (with an SSH key pair unless `keyless`), and
/// Vagrant's state kept out of the repository (`VAGRANT_DOTFILE_PATH`, `VAGRANT_HOME`).
struct User {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl User {
    fn new(keyless: bool) -> User {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("home/.ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        if !keyless {
            let key = ssh.join("id_ed25519");
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        let env = vec![
            ("VAGRANT_HOME".into(), path(&dir.path().join("vagrant.d"))),
            ("VAGRANT_CHECKPOINT_DISABLE".into(), "1".into()),
        ];
        User { dir, env }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Vagrant's state directory of a project (`.vagrant`, as `VAGRANT_DOTFILE_PATH`).
    fn dot(&self, project: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("dot-{}", project.replace('/', "-")))
    }

    fn with(mut self, env: &[(String, String)]) -> User {
        self.env.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        self.env.extend_from_slice(env);
        self
    }

    /// `vagrant ARGS` in `project` (a directory of the repository).
    fn vagrant(&self, project: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("vagrant");
        cmd.args(args)
            .current_dir(root().join(project))
            .env("HOME", self.home())
            .env("VAGRANT_DOTFILE_PATH", self.dot(project))
            .env_remove("PROVISION_VAGRANT_PUBKEY")
            .env_remove("VAGRANT_DEFAULT_PROVIDER");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().expect("vagrant runs")
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Vagrant's output without its progress bars (one line per percent, erased with ESC [K).
fn readable(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout) + "\n" + String::from_utf8_lossy(&out.stderr);
    text.replace("\x1b[K", "\n")
        .lines()
        .filter(|l| !l.starts_with("Progress:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn succeeded(out: Output, what: &str) -> String {
    let text = readable(&out);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// `vagrant ARGS` fails with exactly one clear message that contains `message`: Vagrant's own
/// error text, no Ruby backtrace.
fn refused(out: Output, message: &str) {
    let text = readable(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(message), "expected {message:?}:\n{text}");
    assert!(
        !err.contains(".rb:") && !err.contains("Backtrace") && !err.contains("(NoMethodError)"),
        "a Ruby backtrace:\n{text}"
    );
}

#[test]
fn both_vagrantfiles_validate() {
    let user = User::new(false);
    for project in ["vagrant", "vagrant/lb"] {
        let text = succeeded(user.vagrant(project, &["validate"], &[]), project);
        assert!(
            text.contains("Vagrantfile validated successfully"),
            "{text}"
        );
    }
}

#[test]
fn a_bad_network_is_named_by_the_vagrantfile() {
    let user = User::new(false);
    for project in ["vagrant", "vagrant/lb"] {
        for bad in ["192.168.300.0/24", "192.168.56.0/28", "fd00::/64"] {
            let out = user.vagrant(
                project,
                &["validate"],
                &[("PROVISION_VAGRANT_NETWORK", bad)],
            );
            refused(
                out,
                &format!("PROVISION_VAGRANT_NETWORK=\"{bad}\": not an IPv4 network"),
            );
        }
    }
}

#[test]
fn up_with_a_provider_missing_says_what_to_install() {
    let user = User::new(false);
    // vagrant-libvirt not loaded (as on a machine without it): refused before anything starts.
    let out = user.vagrant(
        "vagrant",
        &["up", "--provider=libvirt"],
        &[("VAGRANT_NO_PLUGINS", "1")],
    );
    refused(
        out,
        "vagrant/Vagrantfile: --provider=libvirt, but Vagrant's libvirt provider (the \
         vagrant-libvirt plugin) is not installed. Install VirtualBox",
    );
    let out = user.vagrant("vagrant/lb", &["up", "--provider", "docker"], &[]);
    refused(
        out,
        "vagrant/lb/Vagrantfile: provider \"docker\" is not one this Vagrantfile sets up",
    );
}

#[test]
fn the_vagrant_lb_inventory_renders_and_checks() {
    let out = tempfile::tempdir().unwrap();
    let done = Run::new(&[
        "render",
        "--check",
        "-i",
        "inventories/vagrant-lb.toml",
        "--out",
    ])
    .arg(out.path())
    .env("PROVISION_DB_PASSWORD", "vagrant's $ecret")
    .env("PROVISION_REPLICATION_PASSWORD", "replicant's \"secret\"")
    .output()
    .status(0);
    assert!(
        done.stdout().contains("keepalived: ok"),
        "{}",
        done.stdout()
    );
    // The addresses are the Vagrantfile's (vagrant/lb: lb-01 .21 ... db-02 .26, floating .20).
    let vagrantfile = std::fs::read_to_string(root().join("vagrant/lb/Vagrantfile")).unwrap();
    let inventory = std::fs::read_to_string(inventory("vagrant-lb.toml")).unwrap();
    for (name, host) in [
        ("lb-01", 21),
        ("lb-02", 22),
        ("web-01", 23),
        ("web-02", 24),
        ("db-01", 25),
        ("db-02", 26),
    ] {
        assert!(vagrantfile.contains(&format!("\"{name}\" => [{host},")));
        assert!(inventory.contains(&format!(
            "name = \"{name}\"\npublic_address = \"192.168.56.{host}\""
        )));
    }
    assert!(inventory.contains("floating_address = \"192.168.56.20/24\""));
}

/// This machine's libvirt, apt proxy and box for the VM test (`vagrant-lab up`), taken down when
/// the test ends, failed or not.
struct VagrantLab {
    env: Vec<(String, String)>,
}

impl VagrantLab {
    fn up() -> VagrantLab {
        let run = |args: &[&str]| {
            let out = Command::new(root().join(VAGRANT_LAB))
                .args(args)
                .output()
                .expect("vagrant-lab runs");
            assert!(out.status.success(), "vagrant-lab {args:?}: {out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // Made first: whatever `up` started is taken down if it fails half-way.
        let mut lab = VagrantLab { env: Vec::new() };
        timed("vagrant-lab up", || {
            run(&["up", "--net", NET, "--mgmt", MGMT])
        });
        lab.env = run(&["env"])
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        lab
    }

    fn leftovers(&self) -> String {
        let out = Command::new(root().join(VAGRANT_LAB))
            .arg("leftovers")
            .output()
            .expect("vagrant-lab runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for VagrantLab {
    fn drop(&mut self) {
        let _ = Command::new(root().join(VAGRANT_LAB)).arg("down").status();
    }
}

/// The machine of `vagrant/`, destroyed when the test ends (also when it failed).
struct Machine<'a> {
    user: &'a User,
    destroyed: bool,
}

impl Machine<'_> {
    fn destroy(&mut self) -> String {
        self.destroyed = true;
        succeeded(
            self.user.vagrant("vagrant", &["destroy", "-f"], &[]),
            "vagrant destroy",
        )
    }
}

impl Drop for Machine<'_> {
    fn drop(&mut self) {
        if !self.destroyed {
            let _ = self.user.vagrant("vagrant", &["destroy", "-f"], &[]);
        }
    }
}

/// inventories/vagrant.toml for the addresses the test chose (the Vagrantfile's, from
/// PROVISION_VAGRANT_NETWORK) and the known_hosts file of the test's `.vagrant`.
fn test_inventory(user: &User) -> PathBuf {
    let known = user.dot("vagrant").join("known_hosts");
    let text = std::fs::read_to_string(inventory("vagrant.toml")).unwrap();
    let replaced = text
        .replace("192.168.56.", "198.18.2.")
        .replace("192.168.121.", "198.18.3.")
        .replace("\"../vagrant/.vagrant/known_hosts\"", &format!("{known:?}"));
    for expected in [
        "admin_sources = [\"198.18.2.0/24\", \"10.0.2.2\", \"198.18.3.0/24\"]",
        &format!("address = \"{ADDR}\""),
        &format!("public_address = \"{ADDR}\""),
        &format!("known_hosts = {known:?}"),
    ] {
        assert!(replaced.contains(expected), "{expected} in:\n{replaced}");
    }
    let p = user.dir.path().join("vagrant.toml");
    std::fs::write(&p, replaced).unwrap();
    p
}

fn domains() -> String {
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
        .expect("virsh runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn vm_ssh(user: &User, cmd: &str) -> String {
    let out = Command::new("ssh")
        .arg("-i")
        .arg(user.home().join(".ssh/id_ed25519"))
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            path(&user.dot("vagrant").join("known_hosts"))
        ))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg(format!("root@{ADDR}"))
        .arg(cmd)
        .output()
        .expect("ssh runs");
    assert!(out.status.success(), "ssh {cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Bad input refused by the Vagrantfile before a VM exists: no public key, and no provider.
fn refused_before_any_vm(lab: &VagrantLab) {
    let keyless = User::new(true).with(&lab.env);
    let out = keyless.vagrant("vagrant", &["up", "--provider=libvirt"], &[]);
    refused(
        out,
        "vagrant/Vagrantfile: no public key to let root log in with: none of \
         ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub exists",
    );
    let user = User::new(false).with(&lab.env);
    let vbox = Command::new("sh")
        .args(["-c", "command -v VBoxManage"])
        .output()
        .unwrap();
    assert!(
        !vbox.status.success(),
        "this test needs a machine without VirtualBox (it would start a VM there)"
    );
    let out = user.vagrant("vagrant", &["up", "--provider=virtualbox"], &[]);
    refused(
        out,
        "--provider=virtualbox, but VirtualBox (VBoxManage is not on the PATH) is not installed",
    );
    let out = user.vagrant("vagrant", &["up"], &[("VAGRANT_NO_PLUGINS", "1")]);
    refused(out, "vagrant/Vagrantfile: no provider to run the VMs with");
    assert!(!domains().contains("provision-test-"), "{}", domains());
}

/// `provision ARGS -i INVENTORY` as the test's user (their key, the database password).
fn provision(user: &User, args: &[&str], inv: &Path) -> Run {
    Run::new(args)
        .arg("-i")
        .arg(inv)
        .env("HOME", &path(&user.home()))
        .env("PROVISION_DB_PASSWORD", &secret())
}

/// Runs `what` and says how long it took (the test's measurements).
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    eprintln!("{what}: {:.1} s", t0.elapsed().as_secs_f64());
    out
}

/// `vagrant up` from vagrant/, and what makes it a VM: its own kernel, systemd as PID 1, the
/// address on its own network device.
fn up(user: &User) {
    let up = timed("vagrant up", || {
        succeeded(
            user.vagrant("vagrant", &["up", "--provider=libvirt"], &[]),
            "vagrant up",
        )
    });
    assert!(
        up.contains(&format!("Debian VM `vagrant` at {ADDR}")),
        "{up}"
    );
    let facts = vm_ssh(
        user,
        "uname -r; cat /etc/debian_version; readlink /proc/1/exe; ip -br -4 addr show eth1",
    );
    assert!(
        facts.contains("-amd64\n13.")
            && facts.contains("/systemd\n")
            && facts.contains(&format!("{ADDR}/24")),
        "{facts}"
    );
}

/// Another project asking for the running VM's address is refused before it makes a VM.
fn refused_a_taken_address(lab: &VagrantLab) {
    let other = User::new(false).with(&lab.env);
    let out = other.vagrant("vagrant", &["up", "--provider=libvirt"], &[]);
    refused(
        out,
        &format!(
            "vagrant/Vagrantfile: vagrant's address {ADDR} is taken (a host answering on port 22)"
        ),
    );
    assert_eq!(
        domains().matches("provision-test-").count(),
        1,
        "{}",
        domains()
    );
}

/// The first apply, then the site as a visitor sees it: the page with its database row over
/// HTTPS, DNS; and the firewall on a real kernel: provision's table loaded, SSH still let in from
/// this machine and Vagrant's own way (the management network).
fn first_apply(user: &User, inv: &Path) {
    let done = timed("first apply", || {
        provision(user, &["apply"], inv).output().status(0)
    });
    assert_no_secret(&done);
    assert!(
        done.stdout()
            .contains("check ok: HTTP GET https://www.foobar.com/"),
        "{}",
        done.stdout()
    );
    let (status, body) = page(ADDR);
    assert!(
        status == 200 && body.contains("Hello from MariaDB: the database of foobar.com answers"),
        "{status} {body}"
    );
    assert_eq!(dig(ADDR), ADDR);
    assert!(vm_ssh(user, "nft list tables").contains("table inet provision"));
    let out = succeeded(
        user.vagrant("vagrant", &["ssh", "-c", "echo in as $(id -un)"], &[]),
        "vagrant ssh",
    );
    assert!(out.contains("in as vagrant"), "{out}");
}

/// Applies until none changes anything. On this 2 GB VM the first apply sized the site's PHP-FPM
/// pool from an estimate of a worker (none ran yet); now its workers run and are measured, and
/// that one value (`pm.max_children`, its reason beside it) may be the only change left, or none
/// when the measured size is within 20 % of the estimate. The lab's hosts see this machine's
/// 24 GB, where both sizes hit the ceiling and the change never shows.
fn converges(user: &User, inv: &Path) {
    let plan = provision(user, &["plan"], inv).output();
    let planned = plan.stdout();
    let changes: Vec<&str> = planned
        .lines()
        .filter(|l| ["  + ", "  ~ ", "  - "].iter().any(|p| l.starts_with(p)))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    match plan.code() {
        0 => assert!(changes.is_empty(), "{planned}"),
        2 => {
            assert_eq!(
                changes,
                ["  ~ update /etc/php/8.4/fpm/pool.d/foobar.com.conf"],
                "{planned}"
            );
            assert!(
                planned.contains("measured: the pool's workers now"),
                "{planned}"
            );
        }
        code => panic!("plan exited {code}:\n{planned}\n{}", plan.stderr()),
    }
    timed("second apply", || {
        provision(user, &["apply"], inv).output().status(0)
    });
    let done = timed("third apply", || {
        provision(user, &["apply"], inv).output().status(0)
    });
    assert!(
        done.stdout().contains("Apply: no changes."),
        "{}",
        done.stdout()
    );
}

#[test]
#[ignore = "needs root, libvirt and QEMU: run tests/run"]
fn the_vagrant_vm_boots_takes_an_apply_and_leaves_nothing_behind() {
    let lab = VagrantLab::up();
    refused_before_any_vm(&lab);
    let user = User::new(false).with(&lab.env);
    let mut machine = Machine {
        user: &user,
        destroyed: false,
    };
    up(&user);
    refused_a_taken_address(&lab);
    let inv = test_inventory(&user);
    first_apply(&user, &inv);
    converges(&user, &inv);
    timed("vagrant destroy", || machine.destroy());
    assert_eq!(lab.leftovers(), "", "left behind by vagrant destroy");
    let known = std::fs::read_to_string(user.dot("vagrant").join("known_hosts")).unwrap();
    assert!(!known.contains(ADDR), "{known}");
}
