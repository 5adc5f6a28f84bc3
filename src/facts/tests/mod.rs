//! The facts' tests, by theme; here, the requests and the ways of running the probe they share.

use super::*;
use crate::component::Beside;
use crate::desired::PathState;
use crate::render::manifest::sha256_hex;

fn req() -> ProbeRequest {
    ProbeRequest {
        packages: vec!["nginx".into(), "php8.2-fpm".into()],
        paths: vec![
            ("/etc/nginx/nginx.conf".into(), Some("abc".into())),
            ("/etc/nginx/sites-enabled/foobar.com.conf".into(), None),
            ("/etc/nginx/sites-enabled/default".into(), None),
            ("/var/www/foobar.com".into(), None),
        ],
        services: vec![(
            "nginx".into(),
            Some(("/run/nginx.pid".into(), "nginx".into())),
        )],
        components: vec![("mariadb".into(), "echo up".into())],
        trees: vec![],
        besides: vec![],
        accounts: vec![],
    }
}

const CANNED: &str = "Welcome banner\n@os debian 12 bookworm\n@init systemd\n@dpkg nginx ii 1.22.1-9+deb12u1\n@dpkg php8.2-fpm rc 8.2.1\n\
@aptm 1000.5\n@aptm 1080.0\n@now 1200\n@path /etc/nginx/nginx.conf f 644 root root 6 \n\
@path /etc/nginx/sites-enabled/foobar.com.conf l 777 root root 33 ../sites-available/foobar.com.conf\n\
@path /var/www/foobar.com d 755 root www-data 4096 \n@files H4sIAAAAAAAEA+3QTQqAIBCGYdedwhOUkXifiP4gFMqg42dIm5DatHDxzsKBGZWPp+p9V9lxtkc8y87ZQfxbKpTRWlw91LOHkblncV832igh1b8x0r/tm29XKcXqnE/fiNOv/dvbjHdTvyyuyDgg0RBAAAEEEEAAAQQQQAABBBBAAAEEEEAAAQQQQAABBBBAAAEEEEAAAQQQQAABBJICJ6422kQAKAAA\n\
@svc nginx active\n\
@@c mariadb\nup\ndb\tfoobar\n\n@@c-end\n@state pending reload nginx\n@state pending reload nginx\n\
@state key 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n@state current G000003-20261123T000000Z\n@end\n";

/// What `script` prints, run by sh here.
fn sh(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real probe of `r` run by sh here, its state directory in a temporary one: its output.
fn run_probe(r: &ProbeRequest) -> String {
    let state = tempfile::tempdir().unwrap();
    let script = r
        .script()
        .replace("/var/lib/provision", &state.path().to_string_lossy());
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn desired_with(paths: &[(&str, &str)], packages: &[&str]) -> crate::desired::Desired {
    let mut d = crate::desired::Desired::new("h");
    d.packages = packages.iter().map(|p| p.to_string()).collect();
    for (p, content) in paths {
        d.paths.push(crate::desired::ManagedPath {
            path: p.to_string(),
            state: PathState::File {
                content: content.as_bytes().to_vec(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
            },
            notify: vec![],
            validator: None,
            from_previous: false,
            code: false,
            because: None,
        });
    }
    d
}

/// A request for `accounts` alone.
fn accounts_req(accounts: &[&str]) -> ProbeRequest {
    ProbeRequest {
        packages: vec![],
        paths: vec![],
        services: vec![],
        components: vec![],
        trees: vec![],
        besides: vec![],
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
    }
}

mod parse;
mod real;
mod script;
