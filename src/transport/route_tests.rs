use super::*;
use crate::spec::SshUnset;

fn ssh(address: &str) -> Ssh {
    Ssh {
        address: address.into(),
        alias: None,
        port: 22,
        user: "root".into(),
        identity_file: None,
        known_hosts: None,
        connect_timeout_secs: 10,
        proxy_jump: None,
        config: SshConfigFile::User,
        unset: SshUnset {
            port: true,
            user: true,
            connect_timeout: true,
        },
    }
}

fn config(text: &str) -> SshConfig {
    SshConfig::parse(text, Path::new("config"), Path::new("/home/u")).unwrap()
}

const LAB: &str = "\
Host bastion
  HostName 198.18.0.60
  User ops
  IdentityFile /keys/bastion
  UserKnownHostsFile /kh/bastion
Host inner
  HostName 198.18.0.130
  ProxyJump bastion
  User deploy
  Port 2222
  IdentityFile /keys/%r-%h
  ConnectTimeout 4
";

#[test]
fn an_alias_with_proxy_jump_goes_through_the_bastion_with_its_own_settings() {
    let hops = route(&ssh("inner"), Some(&config(LAB))).unwrap();
    assert_eq!(hops.len(), 2);
    let (b, t) = (&hops[0], &hops[1]);
    assert_eq!(
        (b.hostname.as_str(), b.port, b.user.as_str()),
        ("198.18.0.60", 22, "ops")
    );
    assert_eq!(b.identity_files, [PathBuf::from("/keys/bastion")]);
    assert_eq!(b.known_hosts, [PathBuf::from("/kh/bastion")]);
    assert_eq!(
        (t.hostname.as_str(), t.port, t.user.as_str()),
        ("198.18.0.130", 2222, "deploy")
    );
    assert_eq!(
        t.identity_files,
        [PathBuf::from("/keys/deploy-198.18.0.130")]
    );
    assert_eq!(
        t.key_name(),
        "[198.18.0.130]:2222",
        "the key is looked up under HostName:port"
    );
    assert_eq!(t.connect_timeout, Duration::from_secs(4));
}

#[test]
fn the_inventory_wins_over_the_ssh_config_for_the_host_itself() {
    let mut s = ssh("inner");
    s.port = 22;
    s.user = "root".into();
    s.unset = SshUnset::default();
    s.identity_file = Some("/inv/key".into());
    s.known_hosts = Some("/inv/known_hosts".into());
    s.proxy_jump = Some("admin@198.18.0.61:2200".into());
    let hops = route(&s, Some(&config(LAB))).unwrap();
    let (j, t) = (&hops[0], &hops[1]);
    assert_eq!(
        (j.hostname.as_str(), j.port, j.user.as_str()),
        ("198.18.0.61", 2200, "admin")
    );
    assert_eq!((t.port, t.user.as_str()), (22, "root"));
    assert_eq!(t.identity_files[0], PathBuf::from("/inv/key"));
    assert!(t.identities_only, "the inventory's key is the one to use");
    assert_eq!(t.known_hosts, [PathBuf::from("/inv/known_hosts")]);
    // The jump host has no ssh_config entry: the inventory's key and known_hosts serve for it.
    assert_eq!(j.identity_files, [PathBuf::from("/inv/key")]);
    assert_eq!(j.known_hosts, [PathBuf::from("/inv/known_hosts")]);
}

#[test]
fn proxy_jump_none_in_the_inventory_goes_direct() {
    let mut s = ssh("inner");
    s.proxy_jump = Some("none".into());
    let hops = route(&s, Some(&config(LAB))).unwrap();
    assert_eq!(hops.len(), 1);
    assert_eq!(hops[0].hostname, "198.18.0.130");
}

#[test]
fn a_chain_follows_the_first_jump_hosts_own_proxy_jump_only() {
    let c = config(
        "Host a\n  ProxyJump outer\nHost b\n  ProxyJump ignored\nHost t\n  ProxyJump a,b:2022\n",
    );
    let hops = route(&ssh("t"), Some(&c)).unwrap();
    let names: Vec<_> = hops.iter().map(|h| (h.name.as_str(), h.port)).collect();
    assert_eq!(names, [("outer", 22), ("a", 22), ("b", 2022), ("t", 22)]);
}

#[test]
fn a_proxy_jump_loop_is_an_error() {
    let c = config("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n");
    let e = route(&ssh("a"), Some(&c)).unwrap_err();
    assert_eq!(e, RouteError::TooManyHops);
    assert!(e.to_string().contains("loop"), "{e}");
}

#[test]
fn host_key_alias_names_the_key_without_a_port() {
    let c = config("Host t\n  HostName 198.18.0.130\n  Port 2222\n  HostKeyAlias inner-key\n");
    let hops = route(&ssh("t"), Some(&c)).unwrap();
    assert_eq!(hops[0].key_name(), "inner-key");
}

#[test]
fn without_a_config_the_host_is_reached_directly_with_the_defaults() {
    let hops = route(&ssh("198.18.0.10"), None).unwrap();
    assert_eq!(hops.len(), 1);
    let h = &hops[0];
    assert_eq!(h.describe(), "root@198.18.0.10:22");
    assert!(h.identity_files.is_empty() && !h.identities_only);
    assert!(h.known_hosts[0].ends_with(".ssh/known_hosts"));
}

#[test]
fn load_fills_only_what_the_inventory_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config");
    std::fs::write(&file, LAB).unwrap();
    let mut a = ssh("inner");
    a.config = SshConfigFile::File(file.clone());
    let mut b = a.clone();
    b.user = "admin".into();
    b.unset.user = false;
    let mut hosts = [a, b];
    assert!(fill_from_ssh_config(hosts.iter_mut()).is_empty());
    assert_eq!((hosts[0].user.as_str(), hosts[0].port), ("deploy", 2222));
    // The health checks reach the host at its HostName; the alias stays for the ssh_config.
    assert_eq!(hosts[0].address, "198.18.0.130");
    assert_eq!(hosts[0].alias.as_deref(), Some("inner"));
    let again = route(&hosts[0], Some(&config(LAB))).unwrap();
    assert_eq!((again.len(), again[1].name.as_str()), (2, "inner"));
    assert_eq!(hosts[0].connect_timeout_secs, 4);
    assert_eq!((hosts[1].user.as_str(), hosts[1].port), ("admin", 2222));
    let mut missing = ssh("x");
    missing.config = SshConfigFile::File(dir.path().join("nope"));
    let errors = fill_from_ssh_config(std::iter::once(&mut missing));
    assert!(errors[0].message.contains("cannot read"), "{errors:?}");
}

#[test]
fn a_new_host_key_is_accepted_when_the_run_or_the_hops_own_setting_says_so() {
    let hops = route(
        &ssh("inner"),
        Some(&config(&format!(
            "{LAB}Host bastion\n  StrictHostKeyChecking accept-new\n"
        ))),
    )
    .unwrap();
    let (b, t) = (&hops[0], &hops[1]);
    assert!(b.accepts_new_key(HostKeyPolicy::Strict));
    assert!(!t.accepts_new_key(HostKeyPolicy::Strict));
    assert!(t.accepts_new_key(HostKeyPolicy::AcceptNew));
}
