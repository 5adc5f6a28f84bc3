use super::*;

fn config(text: &str) -> SshConfig {
    SshConfig::parse(text, Path::new("config"), Path::new("/home/u")).unwrap()
}

#[test]
fn the_first_value_for_a_host_wins_as_in_openssh() {
    let c = config(
        "Host web1\n  HostName 198.18.0.21\n  User deploy\n\
         Host web*\n  HostName ignored.example\n  Port 2222\n  User other\n\
         Host *\n  User fallback\n  Port 22\n",
    );
    let h = c.lookup("web1");
    assert_eq!(h.hostname.as_deref(), Some("198.18.0.21"));
    assert_eq!(h.user.as_deref(), Some("deploy"));
    assert_eq!(h.port, Some(2222));
    let other = c.lookup("db1");
    assert_eq!(
        (other.user.as_deref(), other.port),
        (Some("fallback"), Some(22))
    );
    assert_eq!(other.hostname, None);
}

#[test]
fn host_patterns_take_wildcards_negations_and_lists() {
    let c =
        config("Host *.lab !bad.lab\n  User a\nHost db? , x\n  User b\nHost other,y*\n  User c\n");
    assert_eq!(c.lookup("web.lab").user.as_deref(), Some("a"));
    assert_eq!(c.lookup("bad.lab").user, None, "a negated pattern excludes");
    assert_eq!(c.lookup("db1").user.as_deref(), Some("b"));
    assert_eq!(c.lookup("db12").user, None, "? is exactly one character");
    assert_eq!(c.lookup("x").user.as_deref(), Some("b"));
    assert_eq!(c.lookup("yes").user.as_deref(), Some("c"));
    assert_eq!(
        c.lookup("WEB.LAB").user.as_deref(),
        Some("a"),
        "host names ignore case"
    );
}

#[test]
fn identity_files_add_up_and_other_keywords_are_ignored() {
    let c = config(
        "Host a\n  IdentityFile ~/.ssh/one\n  ServerAliveInterval 5\n  ControlMaster auto\n\
         Host *\n  IdentityFile=\"~/my keys/two\"  # a comment\n  IdentitiesOnly yes\n",
    );
    let h = c.lookup("a");
    assert_eq!(h.identity_files, ["~/.ssh/one", "~/my keys/two"]);
    assert_eq!(h.identities_only, Some(true));
}

#[test]
fn match_host_all_and_unevaluated_criteria() {
    let c = config(
        "Host bastion\n  HostName 198.18.0.60\n\
         Match host 198.18.0.*\n  User viaip\n\
         Match exec \"true\"\n  Port 1\n\
         Match originalhost bast*\n  Port 2200\n\
         Match all\n  ConnectTimeout 7\n",
    );
    let h = c.lookup("bastion");
    assert_eq!(h.user.as_deref(), Some("viaip"), "Match host sees HostName");
    assert_eq!(h.port, Some(2200), "Match exec applies to no host");
    assert_eq!(h.connect_timeout, Some(7));
}

#[test]
fn strict_host_key_checking_never_means_accepting_changed_keys() {
    let c = config("Host a\n StrictHostKeyChecking no\nHost b\n StrictHostKeyChecking ask\n");
    assert_eq!(c.lookup("a").strict, Some(Strict::AcceptNew));
    assert_eq!(c.lookup("b").strict, Some(Strict::Yes));
}

#[test]
fn a_bad_value_names_the_file_and_line() {
    let e = SshConfig::parse(
        "Host a\n  Port abc\n",
        Path::new("/x/config"),
        Path::new("/h"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/x/config:2: Port: found \"abc\"; allowed: a port number from 1 to 65535"
    );
    let e = SshConfig::parse("ProxyJump a@@b\n", Path::new("c"), Path::new("/h")).unwrap_err();
    assert_eq!((e.line, e.keyword.as_str()), (1, "ProxyJump"));
    let e = SshConfig::parse("User \"open\n", Path::new("c"), Path::new("/h")).unwrap_err();
    assert!(e.message.contains("unterminated quote"), "{e}");
}

#[test]
fn include_reads_globs_under_dot_ssh_where_the_include_line_applies() {
    let home = tempfile::tempdir().unwrap();
    let d = home.path().join(".ssh/config.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("10-lab"), "Host inner\n  User fromlab\n").unwrap();
    std::fs::write(d.join("20-all"), "Port 2022\n").unwrap();
    std::fs::write(d.join(".hidden"), "User hidden\n").unwrap();
    let main = home.path().join(".ssh/config");
    // An Include inside a Host section (indentation means nothing to ssh) applies there only.
    std::fs::write(
        &main,
        "Include config.d/1*\nHost web\n  Include ~/.ssh/config.d/20-*\nHost *\n  User last\n",
    )
    .unwrap();
    let c = SshConfig::load(&main, home.path()).unwrap();
    assert_eq!(c.lookup("inner").user.as_deref(), Some("fromlab"));
    assert_eq!(c.lookup("web").port, Some(2022));
    assert_eq!(c.lookup("other").port, None);
    assert_eq!(c.lookup("other").user.as_deref(), Some("last"));
}

#[test]
fn an_include_loop_is_an_error_not_a_hang() {
    let home = tempfile::tempdir().unwrap();
    let main = home.path().join("loop");
    std::fs::write(&main, format!("Include {}\n", main.display())).unwrap();
    let e = SshConfig::load(&main, home.path()).unwrap_err();
    assert!(e.message.contains("nested more than 16"), "{e}");
}

#[test]
fn proxy_jump_lists_parse_like_ssh_dash_j() {
    assert_eq!(parse_jumps("none").unwrap(), []);
    assert_eq!(
        parse_jumps("bastion,ops@jump2:2222,ssh://[2001:db8::1]:22,[198.18.0.1]").unwrap(),
        [
            Jump {
                user: None,
                host: "bastion".into(),
                port: None
            },
            Jump {
                user: Some("ops".into()),
                host: "jump2".into(),
                port: Some(2222)
            },
            Jump {
                user: None,
                host: "2001:db8::1".into(),
                port: Some(22)
            },
            Jump {
                user: None,
                host: "198.18.0.1".into(),
                port: None
            },
        ]
    );
    for bad in [
        "",
        "a,,b",
        "host:0",
        "host:x",
        "a b",
        "$(reboot)",
        "u:p@host",
    ] {
        assert!(parse_jumps(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn tokens_expand_in_paths() {
    let t = Tokens {
        host: "198.18.0.60",
        original: "bastion",
        port: 22,
        remote_user: "root",
        local_user: "alice",
        home: Path::new("/home/alice"),
    };
    assert_eq!(
        expand("~/.ssh/%n-%h-%p-%r-%u-%%", &t).unwrap(),
        "/home/alice/.ssh/bastion-198.18.0.60-22-root-alice-%"
    );
    assert_eq!(expand("%d/k", &t).unwrap(), "/home/alice/k");
    assert!(expand("%C", &t).is_err());
    let c = config("Host *\n  HostName %h.lab.example\n");
    assert_eq!(c.lookup("web").hostname.as_deref(), Some("web.lab.example"));
}
