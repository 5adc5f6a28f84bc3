//! Accounts a component asks for (`Out::account`), through the pipeline: the render, the local
//! check of a PHP-FPM pool that runs as one (`render --check` on this machine, which lacks it), and
//! a real host, where the account is made before the pool is validated (plain lab host
//! 198.18.0.107).

use provision::apply::{self, Context, Reporter, RunOptions};
use provision::component::{Component, Cx, Out, Registry};
use provision::desired::{Account, Handler};
use provision::release::DEBIAN_12;
use provision::render::templates::Templates;
use provision::render::{RenderError, RenderOptions, Renderer};
use provision::spec::{Role, Spec, SystemSources};
use std::sync::Mutex;

/// A site's PHP-FPM pool run by a user of its own, whose document root that user owns: the shape
/// the sites' components give each site. It asks for its account once per home in `homes`.
struct SitePool {
    user: &'static str,
    homes: &'static [&'static str],
}

static SHOP: SitePool = SitePool {
    user: "provshop",
    homes: &["/var/www/provshop"],
};

fn pool(user: &str) -> String {
    format!(
        "[{user}]\nuser = {user}\ngroup = {user}\nlisten = /run/php/{user}.sock\nlisten.owner = www-data\n\
         listen.group = www-data\nlisten.mode = 0660\npm = static\npm.max_children = 1\n"
    )
}

impl Component for SitePool {
    fn name(&self) -> &'static str {
        "site-pool"
    }

    fn after(&self) -> &'static [&'static str] {
        &["php-fpm"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let v = cx.release.php;
        for home in self.homes {
            out.account(self.user, home, &format!("site {}.example.com", self.user))?;
        }
        out.dir(self.homes[0])
            .mode(0o750)
            .owned(self.user, "www-data");
        out.file(
            format!("/etc/php/{v}/fpm/pool.d/{}.conf", self.user),
            pool(self.user),
        )
        .notify(Handler::reload(&format!("php{v}-fpm")))
        .checked_by("php-fpm");
        Ok(())
    }
}

fn load(inv: &std::path::Path) -> (Spec, Templates) {
    (
        provision::spec::load(inv, &SystemSources).unwrap(),
        Templates::load(None).unwrap(),
    )
}

const OPTS: RenderOptions = RenderOptions {
    reveal_secrets: true,
    today: 20_261_123,
};

/// The lemp example's host rendered for Debian 12 (this machine's release) with `c` registered.
fn render_with(c: &'static SitePool) -> Result<provision::desired::Desired, RenderError> {
    let registry = Registry::standard().with(c, Role::Web);
    let (spec, templates) = load(&crate::util::inventory("lemp.toml"));
    Renderer::new(&registry, &spec, &templates, &OPTS).host(
        &spec.hosts[0],
        DEBIAN_12,
        &provision::render::Unknown,
    )
}

#[test]
fn an_account_a_component_asks_for_is_rendered_once_and_listed_in_the_manifest() {
    let d = render_with(&SHOP).unwrap();
    // The example's own site has its account too (foobar-com, from its domain).
    assert_eq!(
        d.accounts
            .iter()
            .filter(|a| a.name == "provshop")
            .collect::<Vec<_>>(),
        [&Account {
            name: "provshop".into(),
            home: "/var/www/provshop".into(),
            comment: "site provshop.example.com".into(),
        }]
    );
    let m = provision::render::manifest::manifest("inv", true, std::slice::from_ref(&d));
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["hosts"][0]["accounts"][0]["name"], "provshop");
    // Asked twice alike: one account.
    static TWICE: SitePool = SitePool {
        user: "provshop",
        homes: &["/var/www/provshop", "/var/www/provshop"],
    };
    let twice = render_with(&TWICE).unwrap().accounts;
    assert_eq!(twice.iter().filter(|a| a.name == "provshop").count(), 1);
}

#[test]
fn an_account_useradd_would_refuse_or_asked_with_two_homes_is_an_error() {
    static BAD_NAME: SitePool = SitePool {
        user: "Shop Keeper",
        homes: &["/var/www/shop"],
    };
    static BAD_HOME: SitePool = SitePool {
        user: "shop",
        homes: &["var/www/shop"],
    };
    static TWO_HOMES: SitePool = SitePool {
        user: "shop",
        homes: &["/var/www/shop", "/var/www/blog"],
    };
    for (c, why) in [
        (&BAD_NAME, "site-pool asks for account \"Shop Keeper\": allowed: a Unix user name"),
        (&BAD_HOME, "site-pool asks for account \"shop\": home \"var/www/shop\"; allowed: an absolute path"),
        (&TWO_HOMES, "site-pool asks for account \"shop\": it is asked for already with home /var/www/shop (site shop.example.com); one account has one home"),
    ] {
        let e = render_with(c).unwrap_err().to_string();
        assert!(e.starts_with(&format!("web-01: {why}")), "{e}");
    }
}

/// `render --check` runs php-fpm -t on the staged pools with the host's accounts visible, though
/// this machine has none of them: a pool whose `user` is a desired account passes, and fails
/// without it. This machine never gets the account.
#[test]
fn a_pool_run_by_a_desired_account_passes_render_check_and_fails_without_it() {
    let here = || std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!here().contains("provshop:"), "this machine has provshop");
    let mut d = render_with(&SHOP).unwrap();
    let php = |d: &provision::desired::Desired| {
        let stage = tempfile::tempdir().unwrap();
        let out = provision::render::local_check::check_host(d, stage.path()).unwrap();
        out.into_iter().find(|o| o.validator == "php-fpm").unwrap()
    };
    let with = php(&d);
    assert!(with.ok, "{}", with.output);
    d.accounts.retain(|a| a.name != "provshop");
    let without = php(&d);
    assert!(!without.ok);
    assert!(
        without
            .output
            .contains("cannot get uid for user 'provshop'"),
        "{}",
        without.output
    );
    assert!(!here().contains("provshop:"), "this machine got provshop");
}

/// What a run reported, in order: `phase NAME` and `note TEXT` lines.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

impl Reporter for Recorded {
    fn phase(&self, _: &str, phase: &str) {
        self.0.lock().unwrap().push(format!("phase {phase}"));
    }
    fn note(&self, _: &str, text: &str) {
        self.0.lock().unwrap().push(format!("note {text}"));
    }
    fn command(&self, _: &str, _: &str) {}
    fn finish(&self, _: &str, _: bool, _: &str) {}
}

/// Plans (and with `apply`, applies) the inventory's one host with `c` registered, in process.
fn run_with(
    c: &'static SitePool,
    inv: &std::path::Path,
    apply: bool,
) -> (Result<apply::HostOutcome, String>, Vec<String>) {
    let registry = Registry::standard().with(c, Role::Web);
    let (spec, templates) = load(inv);
    let redactor = provision::commands::redactor(&spec);
    let recorded = Recorded::default();
    let ctx = Context {
        registry: &registry,
        spec: &spec,
        templates: &templates,
        redactor: &redactor,
        opts: RunOptions {
            host_keys: provision::transport::HostKeyPolicy::Strict,
            local: false,
            today: provision::component::zone::today(),
            check_patience: std::time::Duration::from_secs(30),
            lock_wait: 0,
            who: "accounts e2e".into(),
            ssh_reuse: None,
            only: Vec::new(),
        },
        reporter: &recorded,
    };
    let outcome = match apply::prepare(&ctx, &spec.hosts[0]) {
        Err((e, _)) => Err(e.to_string()),
        Ok(p) if !apply => {
            let mut o = apply::HostOutcome::new(&p.host.name);
            o.plan = Some(p.plan);
            Ok(o)
        }
        Ok(p) => Ok(apply::execute(&ctx, p)),
    };
    let events = recorded.0.into_inner().unwrap();
    (outcome, events)
}

/// On a converged lemp host, a site's pool run by an account of its own: apply makes the account
/// after the packages and before the stage (php-fpm -t on the staged pool needs it, and the
/// document root is put in place owned by it), the pool's worker runs as it, and a second apply
/// changes nothing. An account of the same name provision did not make (a person's login) is
/// refused at plan, naming the host and the account, with the host untouched.
#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_an_account_is_made_before_the_pools_are_validated_and_never_taken_over() {
    use crate::lab::*;
    use crate::util::Run;
    let (addr, host) = ("198.18.0.107", "e2e-accounts");
    let dir = tempfile::tempdir().unwrap();
    let inv = own_host(dir.path(), host, addr, "plain", true);
    let i = inv.to_string_lossy().into_owned();
    Run::new(&["apply", "-i", &i]).output().status(0);

    let (planned, _) = run_with(&SHOP, &inv, false);
    let plan = planned.unwrap().plan.unwrap();
    assert_eq!(plan.accounts.len(), 1, "{plan:#?}");
    assert_eq!(
        plan.accounts[0].line(),
        "create user provshop (group provshop) for site provshop.example.com"
    );
    let (applied, events) = run_with(&SHOP, &inv, true);
    let applied = applied.unwrap();
    assert!(applied.error.is_none(), "{:?}\n{events:#?}", applied.error);
    println!("{events:#?}");
    let at = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("no {e:?} in {events:#?}"))
    };
    assert!(at("phase accounts") < at("note create user provshop (group provshop)"));
    assert!(at("note create user provshop (group provshop)") < at("phase stage"));
    assert!(at("phase stage") < at("phase validate"));

    let passwd = ssh(addr, "getent passwd provshop");
    let f: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(
        f[4..],
        [
            "[provision] site provshop.example.com",
            "/var/www/provshop",
            "/usr/sbin/nologin"
        ]
    );
    assert!(f[2].parse::<u32>().unwrap() < 1000, "{passwd}");
    assert_eq!(
        ssh(addr, "stat -c '%U:%G %a' /var/www/provshop").trim(),
        "provshop:www-data 750"
    );
    let workers = ssh(
        addr,
        "for i in $(seq 50); do ps -eo user=,comm= | grep -q '^provshop  *php-fpm' && break; sleep 0.2; done; ps -eo user=,comm=",
    );
    assert!(
        workers
            .lines()
            .any(|l| l.starts_with("provshop ") && l.contains("php-fpm")),
        "no PHP-FPM worker runs as provshop:\n{workers}"
    );

    let (again, _) = run_with(&SHOP, &inv, false);
    let again = again.unwrap().plan.unwrap();
    assert!(again.is_empty(), "a second apply would change: {again:#?}");

    // A person's login of the name a site asks for.
    static HUMAN: SitePool = SitePool {
        user: "provhuman",
        homes: &["/var/www/provhuman"],
    };
    ssh(addr, "useradd -m -s /bin/bash provhuman");
    let before = ssh(
        addr,
        "getent passwd provhuman; ls /etc/php/*/fpm/pool.d; cat /var/lib/provision/current",
    );
    for apply in [false, true] {
        let (refused, _) = run_with(&HUMAN, &inv, apply);
        let e = refused.unwrap_err();
        println!("{e}");
        assert!(
            e.starts_with(&format!(
                "plan failed: {host}: user provhuman exists already and provision did not make it (a login account: uid "
            )) && e.contains(", shell /bin/bash, home /home/provhuman); provision takes over no account it did not make"),
            "{e}"
        );
    }
    assert_eq!(
        ssh(
            addr,
            "getent passwd provhuman; ls /etc/php/*/fpm/pool.d; cat /var/lib/provision/current"
        ),
        before
    );
    lab(&["down", &i]);
}
