//! PHP: the command-line interpreter and its MySQL extension on every web host (what the
//! application and its lint need), and, in the stacks that use it, a PHP-FPM pool of the site's own
//! behind a unix socket.

use super::{Component, Cx, Out, SiteCx};
use crate::desired::Handler;
use crate::render::RenderError;
use crate::spec::Site;
use crate::tree::ReleaseCheck;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The lint of a release's PHP files: compiled, not run, in one process (`opcache_compile_file`;
/// `php -l` for a file it cannot take): thousands of files in seconds.
const LINT: &str = include_str!("php/lint.php");

/// The check of a release's PHP files with PHP `version`, before the release goes live. The lint
/// travels in the command, as base64 (one shell word, whatever it holds), so nothing is installed
/// for it.
pub fn release_check(version: &str) -> ReleaseCheck {
    let php = format!("php{version}");
    let program = LINT.strip_prefix("<?php\n").unwrap_or(LINT);
    let program = base64::engine::general_purpose::STANDARD.encode(program);
    ReleaseCheck {
        files_ending: ".php".into(),
        files: "PHP files".into(),
        command: format!(
            "{php} -d opcache.enable_cli=1 -d display_errors=0 -d log_errors=0 \
             -d opcache.memory_consumption=256 -d opcache.max_accelerated_files=100000 \
             -d opcache.file_cache= -r \"$(echo {program} | base64 -d)\""
        ),
        tool: php,
    }
}

pub struct Php;
pub static PHP: Php = Php;

pub struct PhpFpm;
pub static PHP_FPM: PhpFpm = PhpFpm;

/// The PHP version a host gets: the one its release ships. `site.php_version` may name it (an
/// override), but only as what the release ships: nothing installs another PHP.
pub fn version(cx: &Cx) -> Result<String, RenderError> {
    let ships = cx.release.php;
    let sites: Vec<&Site> = match cx.site {
        Some(s) => vec![s],
        None => cx.spec.sites_on(cx.host).collect(),
    };
    for site in sites {
        if let Some(v) = site.php_version.as_ref().filter(|v| *v != ships) {
            return Err(RenderError::Release {
                host: cx.host.name.clone(),
                message: format!(
                    "{}.php_version is {v}, but {} ships PHP {ships}; remove it or set it to \"{ships}\"",
                    site.key("site"),
                    cx.release.describe()
                ),
            });
        }
    }
    Ok(ships.to_string())
}

/// The site's PHP-FPM socket: only the web server may connect to it. Named by the site's short
/// name, which always fits a socket path (the domain would not: see the test).
pub fn socket(version: &str, site: &Site) -> String {
    socket_path(version, &site.name)
}

fn socket_path(version: &str, name: &str) -> String {
    format!("/run/php/php{version}-fpm-{name}.sock")
}

/// The opcache settings of the PHP that serves the site (`sapi`: `fpm` or `apache2`), sized from
/// the release (`tuning::opcache`), reloaded by `reload`, checked with PHP's own ini parser.
pub fn opcache(cx: &Cx, out: &mut Out, sapi: &str, reload: Handler) -> Result<(), RenderError> {
    let v = version(cx)?;
    // One opcache for every site the host serves: room for all their PHP.
    let (mut files, mut bytes, mut shared) = (0u64, 0u64, false);
    for site in cx.spec.sites_on(cx.host) {
        let (n, b) = match &site.app {
            crate::spec::App::Files(list) => list
                .iter()
                .filter(|f| f.path.ends_with(".php"))
                .fold((0u64, 0u64), |(n, b), f| {
                    (n + 1, b + f.content.len() as u64)
                }),
            crate::spec::App::Demo => (1, 4096),
        };
        files += n;
        bytes += b;
        shared |= !site.app_options.shared.is_empty();
    }
    let t = crate::tuning::opcache(files, bytes);
    let values = json!({
        "memory_mib": t.memory_mib,
        "interned_mib": t.interned_mib,
        "max_files": t.max_files,
        "why": t.why,
        "shared": shared,
    });
    out.file(
        format!("/etc/php/{v}/{sapi}/conf.d/90-provision-opcache.ini"),
        cx.render("php/opcache.ini", &[("opcache", values)])?,
    )
    .notify(reload)
    .checked_by("php-ini");
    out.file_validator(
        "php-ini",
        format!(
            "php{v} -n -r 'exit(parse_ini_file($argv[1]) === false ? 1 : 0);' {{root}}{{file}}"
        ),
    );
    Ok(())
}

impl Component for Php {
    fn name(&self) -> &'static str {
        "php"
    }

    fn context(&self, cx: &SiteCx, ctx: &mut Map<String, Value>) {
        let v = cx.release.php;
        ctx.insert(
            "php".into(),
            json!({
                "version": v,
                "socket": socket(v, cx.site),
                "state": state_dir(cx.site),
                "log_dir": log_dir(cx.site),
            }),
        );
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let v = version(cx)?;
        out.package(format!("php{v}-cli"));
        out.package(format!("php{v}-mysql"));
        // The application's extensions (the opcache the release lint uses is always there).
        let mut extra: Vec<&str> = vec!["opcache"];
        for site in cx.spec.sites_on(cx.host) {
            for (_, pkg) in &site.app_options.extensions {
                if let Some(p) = pkg {
                    if *p != "mysql" && !extra.contains(p) {
                        extra.push(p);
                    }
                }
            }
        }
        for p in extra {
            out.package(format!("php{v}-{p}"));
        }
        // Without php.ini (-n): a syntax check must not depend on the host's extensions. A
        // release's PHP files too (on the host, `release_check` runs `LINT` on them in one process).
        out.file_validator("php-lint", format!("php{v} -n -l {{root}}{{file}}"))
            .reads_release_files(".php");
        Ok(())
    }
}

impl Component for PhpFpm {
    fn name(&self) -> &'static str {
        "php-fpm"
    }
    fn after(&self) -> &'static [&'static str] {
        &["mariadb"]
    }

    /// The workers' owners and resident sizes (KiB), for sizing the pool (`tuning::php_workers`).
    fn probe(&self, cx: &Cx) -> Option<String> {
        let v = version(cx).ok()?;
        Some(workers_probe(&format!("php-fpm{v}")))
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        let v = version(cx)?;
        let fpm = format!("php{v}-fpm");
        out.service(
            &fpm,
            &fpm,
            &format!("/run/php/php{v}-fpm.pid"),
            &format!("php-fpm{v}"),
        );
        // The stock php-fpm.conf includes pool.d by absolute path; a throwaway main config pointed
        // at the staged pool.d checks exactly the pools that would go live.
        out.validator(
            "php-fpm",
            format!(
                "f=$(mktemp) && printf '[global]\\nerror_log = /dev/null\\ninclude = %s/etc/php/{v}/fpm/pool.d/*.conf\\n' {{root}} > \"$f\" && php-fpm{v} -t -y \"$f\"; rc=$?; rm -f \"$f\"; exit $rc"
            ),
            &[&format!("/etc/php/{v}/fpm")],
        );
        for g in super::app::gone(cx) {
            out.absent(format!("/etc/php/{v}/fpm/pool.d/{}.conf", g.domain))
                .notify(Handler::reload(&fpm))
                .because(super::app::gone_because(&g));
        }
        opcache(cx, out, "fpm", Handler::reload(&fpm))?;
        // opcache keeps compiled code: a reload makes new, or restored, code count at once.
        out.reloads_code(Handler::reload(&fpm));
        Ok(())
    }

    /// The site's own pool, running as the site's own user, confined to the site's files.
    fn render_site(&self, cx: &Cx, site: &Site, out: &mut Out) -> Result<(), RenderError> {
        let v = version(cx)?;
        let fpm = format!("php{v}-fpm");
        let pool = format!("/etc/php/{v}/fpm/pool.d/{}.conf", site.domain);
        let sites = cx.spec.sites_on(cx.host).count() as u64;
        let t = workers(cx, &pool, "php-fpm", &site.name, sites);
        let tune = json!({
            "why": t.why,
            "ondemand": t.ondemand,
            "max_children": t.max_children,
            "start_servers": t.start_servers,
            "min_spare": t.min_spare,
            "max_spare": t.max_spare,
        });
        out.scope(Handler::reload(&fpm), "php-fpm")
            .file(pool, cx.render("php/pool.conf", &[("tune", tune)])?)
            .from_previous();
        isolation(site, out)?;
        Ok(())
    }
}

/// Where a site's PHP keeps its sessions and temporary files: its own, unreadable by the others.
pub fn state_dir(site: &Site) -> String {
    format!("/var/lib/php-sites/{}", site.name)
}

/// Where a site's PHP writes its error log.
pub fn log_dir(site: &Site) -> String {
    format!("/var/log/php-sites/{}", site.name)
}

/// The site's own user, and the directories only it may use: its sessions, temporary and
/// upload files, and its PHP error log.
pub(super) fn isolation(site: &Site, out: &mut Out) -> Result<(), RenderError> {
    out.account(
        &site.name,
        &site.document_root,
        &format!("site {}", site.domain),
    )?;
    for base in ["/var/lib/php-sites", "/var/log/php-sites"] {
        out.dir(base);
    }
    let state = state_dir(site);
    out.dir(state.clone()).mode(0o750).owned("root", &site.name);
    for d in ["sessions", "tmp"] {
        out.dir(format!("{state}/{d}"))
            .mode(0o700)
            .owned(&site.name, &site.name);
    }
    out.dir(log_dir(site)).mode(0o750).owned(&site.name, "adm");
    Ok(())
}

/// The PHP workers this host holds (`tuning::php_workers`): from its memory, the workers' size
/// measured by the probe (`facts`, the component's `ps` lines), and the value the live file at
/// `path` has (the line starting with `key`, its reason on the line before after `comment`),
/// kept when the new one is close.
pub(super) fn workers(
    cx: &Cx,
    path: &str,
    facts: &str,
    user: &str,
    sites: u64,
) -> crate::tuning::PhpWorkers {
    let current = cx.now.file(path).and_then(|c| {
        crate::tuning::kept(&String::from_utf8_lossy(&c), "pm.max_children = ", "; ")
    });
    let worker = cx
        .now
        .facts(facts)
        .and_then(|ps| crate::tuning::worker_mib(&ps, user));
    let with_db = cx.host.has(crate::spec::Role::Db) || cx.host.has(crate::spec::Role::DbReplica);
    if sites <= 1 {
        return crate::tuning::php_workers(cx.host_size(), worker, with_db, current);
    }
    let total = crate::tuning::php_workers(cx.host_size(), worker, with_db, None);
    crate::tuning::php_share(&total, sites, current)
}

/// What `ps -o user=,rss= -C COMM` prints (the processes' user and resident kB), read from /proc:
/// the processes found with builtins, their `status` files and /etc/passwd read by one `cat` and
/// one `awk`, and only when the service runs. (dash reads a byte per system call: with the
/// workers of 50 sites alive, reading each `status` and /etc/passwd once per user with builtins
/// took 0.1 s of a no-op's probe.)
pub(super) fn workers_probe(comm: &str) -> String {
    format!(
        "ps=; for d in /proc/[0-9]*; do c=; {{ read -r c < \"$d/comm\"; }} 2>/dev/null; [ \"$c\" = {comm} ] && ps=\"$ps $d/status\"; done; \
         [ -z \"$ps\" ] || cat $ps 2>/dev/null | awk 'NR == FNR {{ split($0, f, \":\"); if (!(f[3] in n)) n[f[3]] = f[1]; next }} \
         $1 == \"Uid:\" {{ u = $2 }} $1 == \"VmRSS:\" {{ print (u in n ? n[u] : u), $2 }}' /etc/passwd -",
        comm = crate::quote::shell_word(comm)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Longest path a Unix socket can bind to: `sun_path` is 108 bytes including the final NUL.
    const SOCKET_PATH_MAX: usize = 107;

    #[test]
    fn the_longest_site_name_fits_a_socket_path_with_the_longest_php_version() {
        let version = "9".repeat(crate::names::PHP_VERSION_MAX_LEN);
        let name = "a".repeat(32);
        assert!(crate::spec::parse_site_name(&name).is_ok());
        assert!(socket_path(&version, &name).len() <= SOCKET_PATH_MAX);
    }
}
