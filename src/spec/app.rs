//! `[site.app]`: the application's source (a directory or an archive on the controller) and what it
//! needs: PHP extensions and settings, shared directories, config files from the user's templates,
//! a release command. Everything is read and checked here, before any host is touched.

use super::check::{Checker, Protected};
use super::{App, AppConfig, AppOptions};
use crate::error::shown;
use crate::inventory::{RawApp, RawSite};
use crate::names::{parse_host_path, parse_local_path};
use crate::secret::SecretKey;
use toml::Spanned;

/// PHP extensions Debian ships, and the package suffix (`php8.4-<suffix>`) for each; `None`: built
/// into PHP or its always-installed common package.
const EXTENSIONS: &[(&str, Option<&str>)] = &[
    ("apcu", Some("apcu")),
    ("bcmath", Some("bcmath")),
    ("bz2", Some("bz2")),
    ("calendar", None),
    ("ctype", None),
    ("curl", Some("curl")),
    ("dom", Some("xml")),
    ("exif", None),
    ("fileinfo", None),
    ("ftp", None),
    ("gd", Some("gd")),
    ("gettext", None),
    ("gmp", Some("gmp")),
    ("iconv", None),
    ("igbinary", Some("igbinary")),
    ("imagick", Some("imagick")),
    ("intl", Some("intl")),
    ("json", None),
    ("ldap", Some("ldap")),
    ("mbstring", Some("mbstring")),
    ("memcached", Some("memcached")),
    ("mysqli", Some("mysql")),
    ("mysqlnd", Some("mysql")),
    ("opcache", Some("opcache")),
    ("pdo", None),
    ("pdo_mysql", Some("mysql")),
    ("pdo_pgsql", Some("pgsql")),
    ("pdo_sqlite", Some("sqlite3")),
    ("pgsql", Some("pgsql")),
    ("phar", None),
    ("posix", None),
    ("readline", Some("readline")),
    ("redis", Some("redis")),
    ("simplexml", Some("xml")),
    ("soap", Some("soap")),
    ("sockets", None),
    ("sodium", None),
    ("sqlite3", Some("sqlite3")),
    ("tidy", Some("tidy")),
    ("tokenizer", None),
    ("xml", Some("xml")),
    ("xmlreader", Some("xml")),
    ("xmlwriter", Some("xml")),
    ("xsl", Some("xsl")),
    ("zip", Some("zip")),
];

fn relative_dir(v: &str) -> Result<String, crate::error::Allowed> {
    let v = v.trim_end_matches('/');
    match crate::tree::entry_path_problem(v) {
        None if parse_host_path(&format!("/{v}")).is_ok() => Ok(v.to_string()),
        _ => Err(
            "a relative path inside the application of letters, digits, '.', '_', '-' and '/', without '..'"
                .into(),
        ),
    }
}

impl Checker<'_> {
    /// A secret of the site's own for the application's keys and salts (WordPress's `AUTH_KEY`...):
    /// stable across deploys and hosts, derived from the database password (HMAC-SHA256 over the
    /// domain), so the inventory needs no second secret. Registered like the password it comes from.
    pub(super) fn app_salt(&mut self, domain: &crate::names::DomainName) {
        self.derived(SecretKey::AppSalt(self.at), b"provision app salt\0", domain);
    }

    /// The TSIG key of a site whose certificate is asked for over DNS-01, derived like the salt
    /// (another label): the web hosts that write the challenge records hold the database password
    /// already, and no key has to travel from the dns hosts to them.
    pub(super) fn acme_tsig(&mut self, domain: &crate::names::DomainName) {
        self.derived(
            SecretKey::AcmeTsig(self.at),
            b"provision acme tsig\0",
            domain,
        );
    }

    /// Registers `key`: HMAC-SHA256 keyed with the site's database password over `label` and the
    /// domain (nothing when the password has its own error).
    fn derived(&mut self, key: SecretKey, label: &[u8], domain: &crate::names::DomainName) {
        let Some(pw) = self.secrets.get(SecretKey::DatabasePassword(self.at)) else {
            return;
        };
        let secret = pw.derive(
            &[label, domain.as_str().as_bytes()],
            format!(
                "derived from {}",
                SecretKey::DatabasePassword(self.at).name()
            ),
        );
        self.secrets.insert(key, secret);
    }

    /// The application: `[site.app]`, or the older `site.app_dir`, or the demo page.
    pub(super) fn app(
        &mut self,
        s: &RawSite,
        protected: &[Protected],
    ) -> Option<(App, AppOptions)> {
        let Some(a) = &s.app else {
            let app = match &s.app_dir {
                None => App::Demo,
                Some(d) => self.app_dir(d, "site.app_dir", protected)?,
            };
            return Some((app, AppOptions::default()));
        };
        let given = [a.source.as_ref(), s.app_dir.as_ref(), a.git.as_ref()]
            .iter()
            .filter(|x| x.is_some())
            .count();
        let source = if given > 1 {
            self.fail(
                a.span.clone(),
                "site.app",
                "found more than one of site.app_dir, site.app.source and site.app.git; allowed: one of them".into(),
            );
            None
        } else if let Some(src) = &a.source {
            self.app_dir(src, "site.app.source", protected)
        } else if let Some(d) = &s.app_dir {
            self.app_dir(d, "site.app_dir", protected)
        } else if let Some(g) = &a.git {
            self.app_git(g, a.git_ref.as_ref(), &a.span)
        } else {
            Some(App::Demo)
        };
        if let (Some(r), None) = (&a.git_ref, &a.git) {
            self.fail(
                r.span(),
                "site.app.ref",
                "found a ref without site.app.git; allowed: ref together with git".into(),
            );
            return None;
        }
        let options = self.app_options(a);
        let (source, options) = (source?, options?);
        if !self.configs_not_served(a, &options) {
            return None;
        }
        if let (App::Files(files), Some(public)) = (&source, &options.public) {
            if !files
                .iter()
                .any(|f| f.path.starts_with(&format!("{public}/")))
            {
                self.fail(
                    a.public.as_ref().map_or(a.span.clone(), |p| p.span()),
                    "site.app.public",
                    format!(
                        "found {}, but the application has no files in it; allowed: a directory of the application",
                        shown(public)
                    ),
                );
                return None;
            }
        }
        Some((source, options))
    }

    /// `[site.app]`'s settings, each mistake recorded; `None` if there was one.
    fn app_options(&mut self, a: &RawApp) -> Option<AppOptions> {
        let public = match &a.public {
            Some(p) => self.check(p, "site.app.public", relative_dir).map(Some),
            None => Some(None),
        };
        let front_controller = match &a.front_controller {
            Some(f) => self.check(f, "site.app.front_controller", front_controller),
            None => Some(AppOptions::default().front_controller),
        };
        let extensions = self.app_extensions(a);
        let shared = self.app_shared(a);
        let release_command = self.release_command(a);
        let keep = match &a.keep {
            Some(k) => self.int(k, "site.app.keep", crate::inventory::KEEP_RELEASES)? as usize,
            None => AppOptions::default().keep,
        };
        let php = self.app_php(a);
        // A config inside a shared directory is refused even when another shared one is wrong.
        let configs = self.app_configs(a, &shared.values);
        Some(AppOptions {
            public: public?,
            front_controller: front_controller?,
            extensions: extensions.all()?,
            shared: shared.all()?,
            release_command: release_command?,
            keep,
            php: php.all()?,
            configs: configs.all()?,
        })
    }

    fn app_extensions(&mut self, a: &RawApp) -> Passed<(String, Option<&'static str>)> {
        let mut out = Passed::new();
        for (i, e) in a.extensions.iter().flat_map(|l| l.get_ref()).enumerate() {
            match EXTENSIONS.iter().find(|(n, _)| *n == e.get_ref().as_str()) {
                Some((n, pkg)) => out.values.push((n.to_string(), *pkg)),
                None => {
                    let names: Vec<&str> = EXTENSIONS.iter().map(|(n, _)| *n).collect();
                    self.fail(
                        e.span(),
                        &format!("site.app.extensions[{i}]"),
                        format!(
                            "found {}, which Debian does not ship as a PHP extension; allowed: {}",
                            shown(e.get_ref()),
                            names.join(", ")
                        ),
                    );
                    out.all = false;
                }
            }
        }
        out
    }

    fn app_shared(&mut self, a: &RawApp) -> Passed<String> {
        let mut out = Passed::new();
        for (i, d) in a.shared.iter().flat_map(|l| l.get_ref()).enumerate() {
            match self.check(d, &format!("site.app.shared[{i}]"), relative_dir) {
                Some(d) => out.values.push(d),
                None => out.all = false,
            }
        }
        out
    }

    /// Outer `None`: the command is refused (recorded).
    fn release_command(&mut self, a: &RawApp) -> Option<Option<String>> {
        match &a.release_command {
            Some(c) if c.get_ref().trim().is_empty() || c.get_ref().contains('\0') => {
                self.fail(
                    c.span(),
                    "site.app.release_command",
                    "found an empty command; allowed: a shell command (remove the key for none)"
                        .into(),
                );
                None
            }
            Some(c) => Some(Some(c.get_ref().clone())),
            None => Some(None),
        }
    }

    /// `[site.app.php]`: (setting, value) pairs.
    fn app_php(&mut self, a: &RawApp) -> Passed<(String, String)> {
        let mut out = Passed::new();
        for (name, span, value) in &a.php {
            if !php_setting_name(name) {
                self.fail(
                    span.clone(),
                    &format!("site.app.php.{}", crate::spec::reader::segment(name)),
                    "found an unknown setting name; allowed: a php.ini setting name like memory_limit or upload_max_filesize".into(),
                );
                out.all = false;
                continue;
            }
            let v = value.get_ref();
            if !php_setting_value(v) {
                self.fail(
                    value.span(),
                    &format!("site.app.php.{name}"),
                    format!(
                        "found {}; allowed: a value of letters, digits and . _ - / : , + (like \"256M\", \"On\", \"Europe/Paris\")",
                        shown(v)
                    ),
                );
                out.all = false;
                continue;
            }
            out.values.push((name.clone(), v.clone()));
        }
        out
    }

    /// `[[site.app.config]]`: each file's path in the release (outside the `shared` directories)
    /// and its template.
    fn app_configs(&mut self, a: &RawApp, shared: &[String]) -> Passed<AppConfig> {
        let mut out = Passed::new();
        for (i, c) in a.config.iter().enumerate() {
            let key = format!("site.app.config[{i}]");
            let path = self.check(&c.path, &format!("{key}.path"), relative_dir);
            let template = self.app_template(&c.template, &format!("{key}.template"));
            let (Some(path), Some((file, template))) = (path, template) else {
                out.all = false;
                continue;
            };
            if shared
                .iter()
                .any(|s| path == *s || path.starts_with(&format!("{s}/")))
            {
                self.fail(
                    c.path.span(),
                    &format!("{key}.path"),
                    format!(
                        "found {}, inside a shared directory; allowed: a path of the release",
                        shown(&path)
                    ),
                );
                out.all = false;
            }
            out.values.push(AppConfig {
                path,
                file,
                template,
            });
        }
        out
    }

    /// A config file holds what its template writes (the database password, the salt): one in the
    /// directory the web server serves would be sent as it is, unless it is PHP, which the web
    /// server hands to PHP in every stack. Whether true; each refusal recorded.
    fn configs_not_served(&mut self, a: &RawApp, o: &AppOptions) -> bool {
        let mut ok = true;
        for (i, (raw, c)) in a.config.iter().zip(&o.configs).enumerate() {
            if o.served_at(&c.path).is_none() || c.path.ends_with(".php") {
                continue;
            }
            let served = match &o.public {
                None => "the release itself: site.app.public is not set".to_string(),
                Some(p) => format!("site.app.public = {}", shown(p)),
            };
            self.fail(raw.path.span(), &format!("site.app.config[{i}].path"), format!(
                "found {}, inside the directory the web server serves ({served}), which would send the file as it is, secrets included; allowed: a path outside the served directory (with site.app.public set to the application's web directory, like \"public\", a path beside it), or a \".php\" file, which PHP runs instead of sending",
                shown(&c.path)
            ));
            ok = false;
        }
        ok
    }

    /// A config template: read, and parsed once so a syntax mistake is named here.
    fn app_template(&mut self, t: &Spanned<String>, key: &str) -> Option<(String, String)> {
        let rel = self.check(t, key, parse_local_path)?;
        let path = self.opened_path(&rel);
        let text = self
            .sources
            .read_file(&path, 1 << 20)
            .map_err(|e| format!("cannot read the template {}: {e}", path.display()))
            .and_then(|b| {
                String::from_utf8(b)
                    .map_err(|_| format!("the template {} is not UTF-8 text", path.display()))
            });
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                self.fail(t.span(), key, e);
                return None;
            }
        };
        let file = path.display().to_string();
        if let Err(e) = crate::render::templates::check_user_template(&file, &text) {
            self.fail(t.span(), key, e.to_string());
            return None;
        }
        Some((file, text))
    }
}

/// The values of a list that passed their checks, and whether all did (each failure is recorded).
struct Passed<T> {
    values: Vec<T>,
    all: bool,
}

impl<T> Passed<T> {
    fn new() -> Self {
        Passed {
            values: Vec::new(),
            all: true,
        }
    }

    /// Every value, or `None` if one failed.
    fn all(self) -> Option<Vec<T>> {
        self.all.then_some(self.values)
    }
}

fn front_controller(v: &str) -> Result<String, crate::error::Allowed> {
    let v = relative_dir(v)?;
    if v.ends_with(".php") {
        Ok(v)
    } else {
        Err("a PHP file of the document root, like \"index.php\"".into())
    }
}

fn php_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// A value lands in a pool file or an Apache directive: one word, no quotes or separators.
fn php_setting_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:,+".contains(&b))
}
