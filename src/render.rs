//! Spec + templates → what every host should look like. Pure: no clock, no disk, no network; the
//! date and the previous zone files come in as arguments.

use crate::desired::*;
use crate::spec::{App, Host, RecordKind, Role, Spec, Stack};
use crate::templates::{TemplateError, Templates};
use crate::zone;
use serde_json::{json, Value};
use std::net::IpAddr;

/// What a secret is replaced with unless secrets are revealed. Visible on purpose: a reader of a
/// rendered file sees at once that something was withheld, and from where.
pub fn placeholder(key: &str) -> String {
    format!("<secret {key} hidden: render with --reveal-secrets>")
}

pub struct RenderOptions {
    pub reveal_secrets: bool,
    /// The date new zone serials start from.
    pub today: zone::Ymd,
}

/// Apache's port behind Nginx in the nginx-apache stack (loopback only).
const APACHE_BACKEND_PORT: u16 = 8080;

pub fn demo_message(spec: &Spec) -> String {
    format!(
        "Hello from MariaDB: the database of {} answers",
        spec.site.domain
    )
}

/// The hosts the application's database user may connect from: `localhost` when the database only
/// serves its own host, else every web host's internal address.
pub fn db_clients(spec: &Spec) -> Vec<String> {
    if spec.db_is_local() {
        vec!["localhost".into()]
    } else {
        spec.hosts_with(Role::Web)
            .map(|w| w.internal_address().to_string())
            .collect()
    }
}

/// Every (user, host) account the primary must have: the application's, and the replicas'.
pub fn db_accounts(spec: &Spec) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = db_clients(spec)
        .into_iter()
        .map(|c| (spec.database.user.clone(), c))
        .collect();
    if let Some(r) = &spec.database.replication {
        out.extend(
            spec.hosts_with(Role::DbReplica)
                .map(|h| (r.user.clone(), h.internal_address().to_string())),
        );
    }
    out
}

pub fn zone_file(spec: &Spec) -> String {
    format!("/etc/bind/db.{}", spec.site.domain)
}

/// Renders every host. `previous_zone(host)` returns the zone file that host serves now, if any, so
/// the SOA serial only moves when the records change.
pub fn render(
    spec: &Spec,
    templates: &Templates,
    opts: &RenderOptions,
    previous_zone: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Desired>, TemplateError> {
    let r = Renderer {
        spec,
        templates,
        opts,
        base: base_context(spec, opts),
    };
    spec.hosts
        .iter()
        .map(|h| r.host(h, previous_zone(&h.name)))
        .collect()
}

/// Renders one host, with the zone file it serves now (for the serial).
pub fn render_host(
    spec: &Spec,
    templates: &Templates,
    opts: &RenderOptions,
    host: &Host,
    previous_zone: Option<String>,
) -> Result<Desired, TemplateError> {
    let r = Renderer {
        spec,
        templates,
        opts,
        base: base_context(spec, opts),
    };
    r.host(host, previous_zone)
}

struct Renderer<'a> {
    spec: &'a Spec,
    templates: &'a Templates,
    opts: &'a RenderOptions,
    base: tera::Context,
}

fn secret_value(opts: &RenderOptions, key: &str, s: &crate::secret::Secret) -> String {
    if opts.reveal_secrets {
        s.expose().to_string()
    } else {
        placeholder(key)
    }
}

fn php_socket(spec: &Spec) -> String {
    format!(
        "/run/php/php{}-fpm-{}.sock",
        spec.site.php_version, spec.site.domain
    )
}

fn config_php_path(spec: &Spec) -> String {
    format!("/etc/provision/sites/{}/config.php", spec.site.domain)
}

fn base_context(spec: &Spec, opts: &RenderOptions) -> tera::Context {
    let site = &spec.site;
    let mut ctx = tera::Context::new();
    ctx.insert(
        "site",
        &json!({
            "domain": site.domain.as_str(),
            "fqdns": site.fqdns(),
            "stack": site.stack.name(),
            "document_root": site.document_root,
        }),
    );
    ctx.insert(
        "php",
        &json!({ "version": site.php_version, "socket": php_socket(spec) }),
    );
    ctx.insert("apache", &json!({ "port": APACHE_BACKEND_PORT }));
    let local = spec.db_is_local();
    let primary = spec.db_primary();
    ctx.insert(
        "app",
        &json!({
            "db_host": if local { "localhost".to_string() } else { primary.internal_address().to_string() },
            "config_path": config_php_path(spec),
        }),
    );
    let repl = spec.database.replication.as_ref();
    ctx.insert(
        "db",
        &json!({
            "name": spec.database.name,
            "user": spec.database.user,
            "password": secret_value(opts, "database.password", &spec.database.password),
            "replication_user": repl.map(|r| r.user.clone()).unwrap_or_default(),
            "replication_password": repl.map(|r| secret_value(opts, "database.replication_password", &r.password)).unwrap_or_default(),
        }),
    );
    ctx
}

fn file(
    path: impl Into<String>,
    content: impl Into<Vec<u8>>,
    mode: u32,
    owner: &str,
    group: &str,
) -> ManagedPath {
    ManagedPath {
        path: path.into(),
        state: PathState::File {
            content: content.into(),
            mode,
            owner: owner.into(),
            group: group.into(),
            sensitive: false,
        },
        notify: Vec::new(),
        validator: None,
    }
}

fn secret_file(
    path: impl Into<String>,
    content: impl Into<Vec<u8>>,
    mode: u32,
    owner: &str,
    group: &str,
) -> ManagedPath {
    let mut p = file(path, content, mode, owner, group);
    if let PathState::File { sensitive, .. } = &mut p.state {
        *sensitive = true;
    }
    p
}

fn dir(path: impl Into<String>, mode: u32, owner: &str, group: &str) -> ManagedPath {
    ManagedPath {
        path: path.into(),
        state: PathState::Dir {
            mode,
            owner: owner.into(),
            group: group.into(),
        },
        notify: Vec::new(),
        validator: None,
    }
}

fn link(path: impl Into<String>, target: impl Into<String>) -> ManagedPath {
    ManagedPath {
        path: path.into(),
        state: PathState::Link {
            target: target.into(),
        },
        notify: Vec::new(),
        validator: None,
    }
}

fn absent(path: impl Into<String>) -> ManagedPath {
    ManagedPath {
        path: path.into(),
        state: PathState::Absent,
        notify: Vec::new(),
        validator: None,
    }
}

trait PathExt {
    fn notify(self, h: Handler) -> Self;
    fn checked_by(self, v: &str) -> Self;
}

impl PathExt for ManagedPath {
    fn notify(mut self, h: Handler) -> Self {
        self.notify.push(h);
        self
    }
    fn checked_by(mut self, v: &str) -> Self {
        self.validator = Some(v.to_string());
        self
    }
}

/// Enables an Apache module the Debian way: `mods-enabled/X.load` (and `.conf`) linking to
/// `mods-available`, exactly what `a2enmod` leaves behind.
fn apache_mod(out: &mut Vec<ManagedPath>, name: &str, with_conf: bool, enabled: bool) {
    let exts: &[&str] = if with_conf {
        &["load", "conf"]
    } else {
        &["load"]
    };
    for ext in exts {
        let path = format!("/etc/apache2/mods-enabled/{name}.{ext}");
        let p = if enabled {
            link(path, format!("../mods-available/{name}.{ext}"))
        } else {
            absent(path)
        };
        out.push(
            p.notify(Handler::Restart("apache2".into()))
                .checked_by("apache2"),
        );
    }
}

impl Renderer<'_> {
    fn render(&self, name: &str, ctx: &tera::Context) -> Result<String, TemplateError> {
        self.templates.render(name, ctx)
    }

    fn host(&self, host: &Host, previous_zone: Option<String>) -> Result<Desired, TemplateError> {
        let mut ctx = self.base.clone();
        ctx.insert(
            "host",
            &json!({ "name": host.name, "public_address": host.public_address.to_string() }),
        );
        let mut d = Desired {
            host: host.name.clone(),
            packages: Vec::new(),
            paths: Vec::new(),
            services: Vec::new(),
            validators: Vec::new(),
            checks: Vec::new(),
        };
        if host.has(Role::Web) {
            self.web(host, &ctx, &mut d)?;
        }
        if host.has(Role::Db) || host.has(Role::DbReplica) {
            self.db(host, &mut ctx, &mut d)?;
        }
        if host.has(Role::Dns) {
            self.dns(host, &mut ctx, &mut d, previous_zone)?;
        }
        if host.has(Role::Lb) {
            self.lb(host, &mut ctx, &mut d)?;
        }
        d.packages.sort();
        d.packages.dedup();
        Ok(d)
    }

    fn web(&self, host: &Host, ctx: &tera::Context, d: &mut Desired) -> Result<(), TemplateError> {
        let spec = self.spec;
        let site = &spec.site;
        let v = &site.php_version;
        let fpm = format!("php{v}-fpm");
        let domain = site.domain.as_str();
        let uses_nginx = matches!(site.stack, Stack::Lemp | Stack::NginxApache);
        let uses_apache = matches!(site.stack, Stack::Lamp | Stack::NginxApache);
        let uses_fpm = matches!(site.stack, Stack::Lemp | Stack::Lamp);

        d.packages
            .extend([format!("php{v}-cli"), format!("php{v}-mysql")]);
        if uses_nginx {
            d.service("nginx", "nginx");
            let reload = Handler::Reload("nginx".into());
            d.paths.push(
                file(
                    "/etc/nginx/nginx.conf",
                    self.render("nginx/nginx.conf", ctx)?,
                    0o644,
                    "root",
                    "root",
                )
                .notify(reload.clone())
                .checked_by("nginx"),
            );
            let avail = format!("/etc/nginx/sites-available/{domain}.conf");
            d.paths.push(
                file(
                    &avail,
                    self.render("nginx/site.conf", ctx)?,
                    0o644,
                    "root",
                    "root",
                )
                .notify(reload.clone())
                .checked_by("nginx"),
            );
            d.paths.push(
                link(
                    format!("/etc/nginx/sites-enabled/{domain}.conf"),
                    format!("../sites-available/{domain}.conf"),
                )
                .notify(reload.clone())
                .checked_by("nginx"),
            );
            d.paths.push(
                absent("/etc/nginx/sites-enabled/default")
                    .notify(reload)
                    .checked_by("nginx"),
            );
            d.validators.push(Validator {
                name: "nginx".into(),
                command: "nginx -t -q -c {root}/etc/nginx/nginx.conf".into(),
                stage: vec!["/etc/nginx".into()],
            });
        }
        if uses_apache {
            d.service("apache2", "apache2");
            let reload = Handler::Reload("apache2".into());
            d.paths.push(
                file(
                    "/etc/apache2/ports.conf",
                    self.render("apache/ports.conf", ctx)?,
                    0o644,
                    "root",
                    "root",
                )
                .notify(Handler::Restart("apache2".into()))
                .checked_by("apache2"),
            );
            d.paths.push(
                file(
                    format!("/etc/apache2/sites-available/{domain}.conf"),
                    self.render("apache/site.conf", ctx)?,
                    0o644,
                    "root",
                    "root",
                )
                .notify(reload.clone())
                .checked_by("apache2"),
            );
            d.paths.push(
                link(
                    format!("/etc/apache2/sites-enabled/{domain}.conf"),
                    format!("../sites-available/{domain}.conf"),
                )
                .notify(reload.clone())
                .checked_by("apache2"),
            );
            d.paths.push(
                absent("/etc/apache2/sites-enabled/000-default.conf")
                    .notify(reload)
                    .checked_by("apache2"),
            );
            if site.stack == Stack::NginxApache {
                // mod_php runs the code inside Apache, which needs the prefork MPM.
                d.packages.push(format!("libapache2-mod-php{v}"));
                apache_mod(&mut d.paths, "mpm_event", true, false);
                apache_mod(&mut d.paths, "mpm_prefork", true, true);
                apache_mod(&mut d.paths, &format!("php{v}"), true, true);
                apache_mod(&mut d.paths, "remoteip", false, true);
            } else {
                // PHP runs in PHP-FPM; Apache keeps the threaded event MPM and hands .php to the socket.
                apache_mod(&mut d.paths, &format!("php{v}"), true, false);
                apache_mod(&mut d.paths, "mpm_prefork", true, false);
                apache_mod(&mut d.paths, "mpm_event", true, true);
                apache_mod(&mut d.paths, "proxy", true, true);
                apache_mod(&mut d.paths, "proxy_fcgi", false, true);
            }
            d.validators.push(Validator {
                name: "apache2".into(),
                command: ". /etc/apache2/envvars && mkdir -p \"$APACHE_RUN_DIR\" \"$APACHE_LOCK_DIR\" \"$APACHE_LOG_DIR\" && apache2 -d {root}/etc/apache2 -f apache2.conf -t".into(),
                stage: vec!["/etc/apache2".into()],
            });
        }
        if uses_fpm {
            d.service(fpm.clone(), fpm.clone());
            d.paths.push(
                file(
                    format!("/etc/php/{v}/fpm/pool.d/{domain}.conf"),
                    self.render("php/pool.conf", ctx)?,
                    0o644,
                    "root",
                    "root",
                )
                .notify(Handler::Reload(fpm.clone()))
                .checked_by("php-fpm"),
            );
            d.validators.push(Validator {
                name: "php-fpm".into(),
                // The stock php-fpm.conf includes pool.d by absolute path; a throwaway main config
                // pointed at the staged pool.d checks exactly the pools that would go live.
                command: format!(
                    "f=$(mktemp) && printf '[global]\\nerror_log = /dev/null\\ninclude = %s/etc/php/{v}/fpm/pool.d/*.conf\\n' {{root}} > \"$f\" && php-fpm{v} -t -y \"$f\"; rc=$?; rm -f \"$f\"; exit $rc"
                ),
                stage: vec![format!("/etc/php/{v}/fpm")],
            });
        }

        // The application: document root, code, and the database settings outside the document root.
        let root = &site.document_root;
        d.paths.push(dir(root.clone(), 0o755, "root", "root"));
        match &site.app {
            App::Demo => {
                d.paths.push(
                    file(
                        format!("{root}/index.php"),
                        self.render("app/index.php", ctx)?,
                        0o644,
                        "root",
                        "root",
                    )
                    .checked_by("php-lint"),
                );
            }
            App::Files(files) => {
                for f in files {
                    let mode = if f.executable { 0o755 } else { 0o644 };
                    let p = file(
                        format!("{root}/{}", f.path),
                        f.content.clone(),
                        mode,
                        "root",
                        "root",
                    );
                    d.paths.push(if f.path.ends_with(".php") {
                        p.checked_by("php-lint")
                    } else {
                        p
                    });
                }
            }
        }
        let conf_dir = format!("/etc/provision/sites/{domain}");
        d.paths.push(dir("/etc/provision", 0o755, "root", "root"));
        d.paths
            .push(dir("/etc/provision/sites", 0o755, "root", "root"));
        d.paths.push(dir(conf_dir, 0o750, "root", "www-data"));
        d.paths.push(
            secret_file(
                config_php_path(spec),
                self.render("app/config.php", ctx)?,
                0o640,
                "root",
                "www-data",
            )
            .checked_by("php-lint"),
        );
        // PHP caches compiled code (opcache); a reload makes new, or restored, code count at once.
        let php_reload = if uses_fpm {
            Handler::Reload(fpm.clone())
        } else {
            Handler::Reload("apache2".into())
        };
        let conf = config_php_path(spec);
        let in_root = format!("{root}/");
        for p in d.paths.iter_mut() {
            if matches!(p.state, PathState::File { .. })
                && (p.path.starts_with(&in_root) || p.path == conf)
            {
                p.notify.push(php_reload.clone());
            }
        }
        let php_files: Vec<String> = d
            .paths
            .iter()
            .filter(|p| p.validator.as_deref() == Some("php-lint"))
            .map(|p| p.path.clone())
            .collect();
        d.validators.push(Validator {
            name: "php-lint".into(),
            command: format!(
                "for f in {}; do out=$(php{v} -n -l \"{{root}}$f\" 2>&1) || {{ echo \"$out\"; exit 1; }}; done",
                php_files.iter().map(|p| crate::templates::shell_word(p)).collect::<Vec<_>>().join(" ")
            ),
            stage: Vec::new(),
        });

        let expect = matches!(site.app, App::Demo).then(|| demo_message(spec));
        d.checks.push(HealthCheck::Http {
            address: host.ssh.address.clone(),
            port: 80,
            host_header: site.fqdns()[0].clone(),
            path: "/".into(),
            expect,
        });
        Ok(())
    }

    fn db(
        &self,
        host: &Host,
        ctx: &mut tera::Context,
        d: &mut Desired,
    ) -> Result<(), TemplateError> {
        let spec = self.spec;
        let primary = spec.db_primary();
        let replicas: Vec<&Host> = spec.hosts_with(Role::DbReplica).collect();
        let is_primary = host.has(Role::Db);
        let local = spec.db_is_local();
        let server_id = if replicas.is_empty() {
            0
        } else if is_primary {
            1
        } else {
            2 + replicas
                .iter()
                .position(|r| r.name == host.name)
                .unwrap_or(0)
        };
        let clients = db_clients(spec);
        let mut db = ctx
            .get("db")
            .cloned()
            .map(tera_to_json)
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut db {
            m.insert(
                "role".into(),
                json!(if is_primary { "primary" } else { "replica" }),
            );
            m.insert(
                "bind_address".into(),
                json!(if local {
                    "127.0.0.1".to_string()
                } else {
                    host.internal_address().to_string()
                }),
            );
            m.insert("server_id".into(), json!(server_id));
            m.insert("clients".into(), json!(clients));
            m.insert(
                "replicas".into(),
                json!(replicas
                    .iter()
                    .map(|r| r.internal_address().to_string())
                    .collect::<Vec<_>>()),
            );
            m.insert(
                "primary".into(),
                json!(primary.internal_address().to_string()),
            );
            m.insert("demo".into(), json!(matches!(spec.site.app, App::Demo)));
            m.insert("demo_message".into(), json!(demo_message(spec)));
        }
        ctx.insert("db", &db);
        d.service("mariadb", "mariadb-server");
        d.paths.push(
            file(
                "/etc/mysql/mariadb.conf.d/60-provision.cnf",
                self.render("mariadb/provision.cnf", ctx)?,
                0o644,
                "root",
                "root",
            )
            .notify(Handler::Restart("mariadb".into()))
            .checked_by("mariadb"),
        );
        d.validators.push(Validator {
            name: "mariadb".into(),
            command: "mariadbd --defaults-file={root}/etc/mysql/mariadb.conf.d/60-provision.cnf --help --verbose > /dev/null".into(),
            stage: Vec::new(),
        });
        let sql = format!("/var/lib/provision/sql/{}.sql", spec.database.name);
        d.paths
            .push(dir("/var/lib/provision", 0o700, "root", "root"));
        d.paths
            .push(dir("/var/lib/provision/sql", 0o700, "root", "root"));
        d.paths.push(
            secret_file(
                &sql,
                self.render("mariadb/bootstrap.sql", ctx)?,
                0o600,
                "root",
                "root",
            )
            .notify(Handler::RunSql(sql.clone())),
        );
        Ok(())
    }

    fn dns(
        &self,
        host: &Host,
        ctx: &mut tera::Context,
        d: &mut Desired,
        previous: Option<String>,
    ) -> Result<(), TemplateError> {
        let spec = self.spec;
        let domain = spec.site.domain.as_str();
        let mut nameservers = Vec::new();
        let mut records = Vec::new();
        for (i, ns) in spec.hosts_with(Role::Dns).enumerate() {
            let label = format!("ns{}", i + 1);
            nameservers.push(format!("{label}.{domain}."));
            records.push(address_record(&label, ns.public_address));
        }
        nameservers.extend(spec.dns.nameservers.iter().map(|n| format!("{n}.")));
        let www_targets: Vec<IpAddr> = match spec.hosts_with(Role::Lb).next() {
            Some(lb) => vec![lb.public_address],
            None => spec
                .hosts_with(Role::Web)
                .map(|w| w.public_address)
                .collect(),
        };
        for name in &spec.site.server_names {
            for a in &www_targets {
                records.push(address_record(name, *a));
            }
        }
        for r in &spec.dns.records {
            records.push(json!({ "name": r.name, "kind": format!("{:?}", r.kind), "value": r.value, "ttl": r.ttl.unwrap_or(0) }));
        }
        let zone_path = zone_file(spec);
        let mut dns = json!({
            "ttl": spec.dns.ttl,
            "soa_contact": spec.dns.soa_contact,
            "primary_ns": nameservers.first().cloned().unwrap_or_default(),
            "nameservers": nameservers,
            "records": records,
            "zone_file": zone_path,
            "serial": 0,
        });
        ctx.insert("dns", &dns);
        let unnumbered = self.render("bind/zone.db", ctx)?;
        let prev_serial = previous.as_deref().and_then(zone::soa_serial);
        let same = previous
            .as_deref()
            .and_then(zone::without_serial)
            .as_deref()
            == zone::without_serial(&unnumbered).as_deref();
        dns["serial"] = json!(zone::next_serial(
            prev_serial,
            same && prev_serial.is_some(),
            self.opts.today
        ));
        ctx.insert("dns", &dns);
        let zone_text = self.render("bind/zone.db", ctx)?;

        d.packages.push("bind9-dnsutils".into());
        d.service("named", "bind9");
        let reload = Handler::Reload("named".into());
        d.paths.push(
            file(&zone_path, zone_text, 0o644, "root", "bind")
                .notify(reload.clone())
                .checked_by("bind"),
        );
        d.paths.push(
            file(
                "/etc/bind/named.conf.local",
                self.render("bind/named.conf.local", ctx)?,
                0o644,
                "root",
                "bind",
            )
            .notify(reload)
            .checked_by("bind"),
        );
        d.validators.push(Validator {
            name: "bind".into(),
            // -t reads the config and the zone it names from the staged tree, as a chrooted named would.
            command: format!(
                "named-checkconf -z -t {{root}} /etc/bind/named.conf.local && named-checkzone -q {domain} {{root}}{zone_path}"
            ),
            stage: vec!["/etc/bind".into()],
        });
        let expect: Vec<String> = www_targets.iter().map(|a| a.to_string()).collect();
        d.checks.push(HealthCheck::Dns {
            server: host.ssh.address.clone(),
            name: spec.site.fqdns()[0].clone(),
            expect,
        });
        Ok(())
    }

    fn lb(
        &self,
        host: &Host,
        ctx: &mut tera::Context,
        d: &mut Desired,
    ) -> Result<(), TemplateError> {
        let spec = self.spec;
        let backends: Vec<Value> = spec
            .hosts_with(Role::Web)
            .map(|w| json!({ "name": w.name, "address": addr_port_host(w.internal_address()) }))
            .collect();
        ctx.insert("lb", &json!({ "backends": backends }));
        d.service("haproxy", "haproxy");
        d.paths.push(
            file(
                "/etc/haproxy/haproxy.cfg",
                self.render("haproxy/haproxy.cfg", ctx)?,
                0o644,
                "root",
                "root",
            )
            .notify(Handler::Reload("haproxy".into()))
            .checked_by("haproxy"),
        );
        d.validators.push(Validator {
            name: "haproxy".into(),
            command: "haproxy -c -q -f {root}/etc/haproxy/haproxy.cfg".into(),
            stage: Vec::new(),
        });
        let expect = matches!(spec.site.app, App::Demo).then(|| demo_message(spec));
        d.checks.push(HealthCheck::Http {
            address: host.ssh.address.clone(),
            port: 80,
            host_header: spec.site.fqdns()[0].clone(),
            path: "/".into(),
            expect,
        });
        Ok(())
    }
}

fn address_record(name: &str, a: IpAddr) -> Value {
    let kind = if a.is_ipv4() {
        RecordKind::A
    } else {
        RecordKind::AAAA
    };
    json!({ "name": name, "kind": format!("{kind:?}"), "value": a.to_string(), "ttl": 0 })
}

/// An address as HAProxy wants it before `:port`: IPv6 in brackets.
fn addr_port_host(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn tera_to_json(v: tera::Value) -> Value {
    serde_json::to_value(&v).unwrap_or(Value::Null)
}
