//! Services on a host without systemd, run by the library against Debian's own init scripts.

use super::*;

/// keepalived with one VRRP instance, which takes a moment to stop (it gives its address up).
const KEEPALIVED_CONF: &str = "global_defs {\n  router_id provision-test\n}\n\
vrrp_instance test {\n  state BACKUP\n  interface pv-k0\n  virtual_router_id 51\n  priority 100\n\
  advert_int 1\n  virtual_ipaddress {\n    198.18.9.9/32\n  }\n}\n";

/// Debian 12's keepalived init script returns from `stop` while the daemon still stops, and its
/// `start` then finds it running, says "failed" and exits 0: a restart without systemd (as a
/// rollback makes) left none running. With the pid file, `svc` waits for each half, and
/// `svc_active` tells a running keepalived, whose script has no `status`. Run in namespaces of its
/// own (mount, network, PID: a tmpfs /run, its own /etc/keepalived, a veth pair), so nothing of
/// this machine changes and the daemons end with the namespace.
#[test]
fn a_restart_without_systemd_leaves_debians_keepalived_running() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let conf = d.join("keepalived");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("keepalived.conf"), KEEPALIVED_CONF).unwrap();
    let pid = "/run/keepalived.pid keepalived";
    // Whether the daemon the pid file names runs, read here rather than by the library.
    let runs = "p=$(cat /run/keepalived.pid 2> /dev/null); [ -n \"$p\" ] && [ \"$(cat /proc/$p/comm 2> /dev/null)\" = keepalived ]";
    let program = format!(
        "mount -t tmpfs tmpfs /run && mount --bind {conf} /etc/keepalived && ip link set lo up \
         && ip link add pv-k0 type veth peer name pv-k1 && ip link set pv-k0 up && ip link set pv-k1 up \
         || {{ echo 'cannot set the namespace up'; exit 1; }}\n\
         svc start keepalived '' {pid} > /dev/null 2>&1\n\
         if svc_active keepalived {pid}; then echo 'active after start: yes'; else echo 'active after start: no'; fi\n\
         sleep 2\n\
         svc restart keepalived '' {pid} > /dev/null 2>&1\n\
         sleep 2\n\
         if {runs}; then echo 'runs after restart: yes'; else echo 'runs after restart: no'; fi\n\
         svc stop keepalived '' {pid} > /dev/null 2>&1\n\
         if {runs}; then echo 'runs after stop: yes'; else echo 'runs after stop: no'; fi\n",
        conf = conf.display()
    );
    let f = library_program(d, &program);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let out = Command::new("unshare")
        .args(if root {
            &["-mnpf"][..]
        } else {
            &["-Urmnpf"][..]
        })
        .arg("--mount-proc")
        .arg("sh")
        .arg(&f)
        .arg(d.join("run-1"))
        .output()
        .unwrap();
    let (_, text) = outcome(&out);
    assert!(
        std::path::Path::new("/etc/init.d/keepalived").exists(),
        "Debian's keepalived package is needed (tests/install-deps installs it)"
    );
    for line in [
        "active after start: yes",
        "runs after restart: yes",
        "runs after stop: no",
    ] {
        assert!(text.contains(line), "expected {line:?}:\n{text}");
    }
}
