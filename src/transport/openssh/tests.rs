use super::*;
use std::time::Duration;

fn hop(name: &str, port: u16, key: &str) -> Hop {
    Hop {
        name: name.into(),
        hostname: name.into(),
        port,
        user: "ops".into(),
        identity_files: vec![PathBuf::from(key)],
        identities_only: true,
        known_hosts: vec![PathBuf::from("/k/known hosts")],
        key_host: name.into(),
        key_port: port,
        strict: None,
        hash_known_hosts: false,
        connect_timeout: Duration::from_secs(10),
    }
}

fn value<'a>(args: &'a [String], option: &str) -> Vec<&'a str> {
    args.iter()
        .filter_map(|a| a.strip_prefix(&format!("{option}=")))
        .collect()
}

#[test]
fn every_hop_has_its_own_keys_and_the_jump_hosts_nest_in_proxy_commands() {
    let hops = [
        hop("outer", 22, "/k/outer"),
        hop("middle", 2222, "/k/100%"),
        hop("10.0.0.9", 22, "/k/inner"),
    ];
    let log = PathBuf::from("/run/p/proxy-1-0.err");
    let args = hop_args(&hops, 2, HostKeyPolicy::Strict, Some(&log));
    assert_eq!(&args[..6], ["-F", "none", "-p", "22", "-l", "ops"]);
    assert_eq!(args[6..8], ["-i", "/k/inner"]);
    assert_eq!(value(&args, "StrictHostKeyChecking"), ["yes"]);
    assert_eq!(value(&args, "UserKnownHostsFile"), ["\"/k/known hosts\""]);
    let proxy = value(&args, "ProxyCommand");
    assert_eq!(proxy.len(), 1);
    // The middle hop carries the stream to the host, with its own key (its `%` doubled, as
    // ssh expands the ProxyCommand once); its own ProxyCommand, to the outer hop, is nested
    // inside; the chain's stderr goes to the log.
    let p = proxy[0];
    assert!(
        p.starts_with("ssh -F none -p 2222 -l ops -i '/k/100%%' "),
        "{p}"
    );
    assert!(
        p.ends_with(" -W '10.0.0.9:22' middle 2>/run/p/proxy-1-0.err"),
        "{p}"
    );
    assert_eq!(
        p.matches("ProxyCommand=ssh -F none -p 22 -l ops -i /k/outer ")
            .count(),
        1,
        "{p}"
    );
    assert!(p.contains(r#" -W '\''middle:2222'\'' outer'"#), "{p}");
    // Trust on first use is per hop, as for the ssh2 transport.
    let new = hop_args(&hops[..1], 0, HostKeyPolicy::AcceptNew, None);
    assert_eq!(value(&new, "StrictHostKeyChecking"), ["accept-new"]);
    assert!(value(&new, "ProxyCommand").is_empty());
}

#[test]
fn every_host_and_every_way_of_reaching_it_has_its_own_master() {
    let args = hop_args(&[hop("web", 22, "/k/id")], 0, HostKeyPolicy::Strict, None);
    let other = hop_args(
        &[hop("web", 22, "/k/other")],
        0,
        HostKeyPolicy::Strict,
        None,
    );
    let new = hop_args(
        &[hop("web", 22, "/k/id")],
        0,
        HostKeyPolicy::AcceptNew,
        None,
    );
    let names = [
        socket_name(&args, "10.0.0.1"),
        socket_name(&args, "10.0.0.2"),
        socket_name(&other, "10.0.0.1"),
        socket_name(&new, "10.0.0.1"),
    ];
    for (i, a) in names.iter().enumerate() {
        assert_eq!(a.len(), 32);
        assert!(names[i + 1..].iter().all(|b| a != b), "{names:?}");
    }
    assert_eq!(names[0], socket_name(&args, "10.0.0.1"));
}

#[test]
fn a_port_off_22_is_looked_up_under_its_known_hosts_name_only_with_an_alias() {
    let mut h = hop("web", 2222, "/k/id");
    assert!(value(
        &hop_args(&[h.clone()], 0, HostKeyPolicy::Strict, None),
        "HostKeyAlias"
    )
    .is_empty());
    h.key_host = "alias".into();
    h.key_port = 22;
    assert_eq!(
        value(
            &hop_args(&[h], 0, HostKeyPolicy::Strict, None),
            "HostKeyAlias"
        ),
        ["alias"]
    );
    assert_eq!(bracket("fd00::1"), "[fd00::1]");
}
