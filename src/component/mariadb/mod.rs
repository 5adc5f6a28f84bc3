//! MariaDB: the server config (`60-provision.cnf`, read after Debian's own), and an idempotent
//! bootstrap SQL run as root over the local socket: on the primary the database, the application's
//! accounts (one per client host), the replication accounts, and what the application keeps in it
//! (which the app component makes: `app::database_sql`). Facts: whether the server answers, and
//! which of those objects exist, so a database dropped by hand is created again. The primary writes
//! a binary log from its first apply, so a replica added later can be seeded from it (see
//! `replica`). Every server's id comes from its host's name: adding or removing a replica
//! renumbers nobody.

mod facts;
mod greeting;
mod replica;
pub mod switchover;

pub use facts::DbFacts;
pub use replica::REPLICA;

use super::{Component, Cx, Need, Out, SiteCx};
use crate::desired::{Handler, HealthCheck};
use crate::health::CheckFailed;
use crate::quote::sql_string;
use crate::render::RenderError;
use crate::secret::SecretKey;
use crate::spec::{Host, Role, Site, Spec};
use serde_json::{json, Map, Value};

pub struct Primary;
pub static MARIADB: Primary = Primary;

pub(super) const STEP: &str = "mariadb-bootstrap";
const CNF: &str = "/etc/mysql/mariadb.conf.d/60-provision.cnf";
const ROLE_CNF: &str = "/etc/mysql/mariadb.conf.d/61-provision-role.cnf";
/// The bootstrap SQL of each site, and the replica's seed, in provision's state (0700).
const SQL_DIR: &str = crate::host_state::state_path!("/sql");
/// Where the server listens (Debian's default, which provision keeps).
const PORT: u16 = 3306;
pub(super) const IRREVERSIBLE: &str = "database changes (accounts, passwords, tables) stay as they are: a rollback runs the restored bootstrap again, which sets the earlier passwords back";

/// The hosts a site's database user may connect from: `localhost` when the database only serves
/// its own host, else the internal address of every web host that serves the site.
pub fn clients(spec: &Spec, site: &Site) -> Vec<String> {
    if spec.db_is_local() {
        vec!["localhost".into()]
    } else {
        spec.hosts_of(site)
            .map(|w| w.internal_address().to_string())
            .collect()
    }
}

/// Every (user, host) account the primary must have: each site's, and the replicas'.
pub fn accounts(spec: &Spec) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = spec
        .sites
        .iter()
        .flat_map(|site| {
            clients(spec, site)
                .into_iter()
                .map(|c| (site.database.user.clone(), c))
        })
        .collect();
    if let Some(r) = &spec.replication {
        out.extend(
            spec.hosts_with(Role::DbReplica)
                .map(|h| (r.user.clone(), h.internal_address().to_string())),
        );
    }
    out
}

/// A site's bootstrap SQL on the primary (its database, its accounts).
pub(super) fn sql_path(site: &Site) -> String {
    format!("{SQL_DIR}/{}.sql", site.database.name)
}

/// The primary's bootstrap: every site's SQL, one after the other (each is idempotent), read by
/// one client (one process and connection for fifty sites, not one each); the first error stops
/// it (`source` alone goes on past one and exits 0), naming the file and line.
fn bootstrap_command(spec: &Spec) -> String {
    let files: Vec<String> = spec
        .sites
        .iter()
        .map(|s| crate::quote::shell_word(&sql_path(s)))
        .collect();
    if files.is_empty() {
        return "true".into();
    }
    format!(
        "printf 'source %s\\n' {} | mariadb --abort-source-on-error",
        files.join(" ")
    )
}

/// A server id of the host's own, from its name (FNV-1a, in 1..=2^32-2): stable whatever hosts are
/// added or removed. Two names of one inventory landing on one id is refused at render (see
/// `server`).
pub fn server_id(host: &Host) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in host.name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % 4_294_967_294 + 1
}

/// The values both kinds of server render with; `db` in the templates: the server's, and with a
/// site, that site's database (its name, user, clients).
pub(super) fn db_values(cx: &Cx, host: &Host, site: Option<&Site>) -> Value {
    let spec = cx.spec;
    let replicas: Vec<&Host> = spec.hosts_with(Role::DbReplica).collect();
    let is_primary = host.has(Role::Db);
    let mut db = site.and_then(|s| {
        cx.sites
            .get(usize::from(s.at.index))
            .and_then(|c| c.get("db"))
            .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
    });
    let mut m = match db.take() {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.insert(
        "role".into(),
        json!(if is_primary { "primary" } else { "replica" }),
    );
    m.insert(
        "bind_address".into(),
        json!(if spec.db_is_local() {
            "127.0.0.1".to_string()
        } else {
            host.internal_address().to_string()
        }),
    );
    m.insert("server_id".into(), json!(server_id(host)));
    let (pool, why) = crate::tuning::buffer_pool(cx.host_size(), !host.has(Role::Web));
    m.insert("buffer_pool".into(), json!(pool));
    m.insert("buffer_pool_why".into(), json!(why));
    if let Some(site) = site {
        m.insert("clients".into(), json!(clients(spec, site)));
    }
    m.insert(
        "replicas".into(),
        json!(replicas
            .iter()
            .map(|r| r.internal_address().to_string())
            .collect::<Vec<_>>()),
    );
    m.insert(
        "primary".into(),
        json!(spec.db_primary().internal_address().to_string()),
    );
    Value::Object(m)
}

/// What both kinds of server put on their host: the server, its config, the bootstrap SQL (which
/// notifies the `mariadb-bootstrap` step each adds).
pub(super) fn server(cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
    let spec = cx.spec;
    let id = server_id(cx.host);
    if let Some(other) = spec
        .hosts
        .iter()
        .filter(|h| h.name != cx.host.name && (h.has(Role::Db) || h.has(Role::DbReplica)))
        .find(|h| server_id(h) == id)
    {
        return Err(RenderError::Template {
            host: cx.host.name.clone(),
            message: format!(
                "the database servers {} and {} would get the same server id ({id}); rename one of them",
                cx.host.name, other.name
            ),
        });
    }
    let db = db_values(cx, cx.host, None);
    out.service(
        "mariadb",
        "mariadb-server",
        "/run/mysqld/mysqld.pid",
        "mariadbd",
    );
    // Sized from the facts: always read back, so the plan compares with what the host has.
    out.file(
        CNF,
        cx.render("mariadb/provision.cnf", &[("db", db.clone())])?,
    )
    .notify(Handler::restart("mariadb"))
    .checked_by("mariadb")
    .from_previous();
    out.file(
        ROLE_CNF,
        cx.render("mariadb/role.cnf", &[("db", db.clone())])?,
    )
    .notify(Handler::run(STEP))
    .checked_by("mariadb");
    // mariadbd reads one --defaults-file and ignores --defaults-extra-file next to it: both files
    // are checked as one.
    out.validator(
        "mariadb",
        format!(
            "f=$(mktemp) && cat {{root}}{CNF} {{root}}{ROLE_CNF} > \"$f\" && mariadbd --defaults-file=\"$f\" --help --verbose > /dev/null; rc=$?; rm -f \"$f\"; [ \"$rc\" = 0 ]"
        ),
        &[],
    );
    out.dir(crate::host_state::DIR).mode(0o700);
    out.dir(SQL_DIR).mode(0o700);
    // The primary: one file per site's database. A replica: its own bootstrap (what it follows),
    // the server's alone, in the first site's file.
    let sites: Vec<&Site> = if cx.host.has(Role::Db) {
        spec.sites.iter().collect()
    } else {
        spec.sites.first().into_iter().collect()
    };
    for site in sites {
        let mut db = db_values(cx, cx.host, Some(site));
        // What the site's application keeps in its database is the application's to make.
        db["app_sql"] = json!(super::app::database_sql(cx, site)?);
        out.file(
            sql_path(site),
            cx.render_for(site, "mariadb/bootstrap.sql", &[("db", db)])?,
        )
        .mode(0o600)
        .sensitive()
        .notify(Handler::run(STEP));
    }
    Ok(())
}

impl Component for Primary {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn context(&self, cx: &SiteCx, ctx: &mut Map<String, Value>) {
        let (spec, site) = (cx.spec, cx.site);
        let repl = spec.replication.as_ref();
        let secret = |key| cx.opts.secret(&spec.secrets, key).unwrap_or_default();
        ctx.insert(
            "db".into(),
            json!({
                "name": site.database.name,
                "user": site.database.user,
                "password": secret(SecretKey::DatabasePassword(site.at)),
                "replication_user": repl.map(|r| r.user.clone()).unwrap_or_default(),
                "replication_password": secret(SecretKey::ReplicationPassword { many: site.at.many }),
            }),
        );
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        server(cx, out)?;
        // As root over the local socket (unix_socket authentication, Debian's default).
        out.step(STEP, bootstrap_command(cx.spec), Some(IRREVERSIBLE));
        // The server is checked where it is used: from each web host (a host that serves only
        // itself is checked by its own page).
        if !cx.spec.db_is_local() {
            let address = cx.host.internal_address();
            for web in cx.spec.hosts_with(Role::Web) {
                out.check(HealthCheck::Remote {
                    host: web.name.clone(),
                    component: self.name().into(),
                    what: format!(
                        "MariaDB on {} ({}) from {}",
                        cx.host.name,
                        std::net::SocketAddr::new(address, PORT),
                        web.name
                    ),
                    command: greeting::command(&address.to_string(), PORT),
                });
            }
        }
        Ok(())
    }

    fn read_check(
        &self,
        _spec: &Spec,
        answer: &crate::transport::Output,
    ) -> Result<String, CheckFailed> {
        greeting::read(answer)
    }

    fn probe_beside(&self, cx: &Cx) -> Option<super::Beside> {
        let spec = cx.spec;
        let accounts = accounts(spec);
        let mut names: Vec<&String> = accounts.iter().map(|(u, _)| u).collect();
        names.sort();
        names.dedup();
        let users: Vec<String> = names.iter().map(|u| sql_string(u)).collect();
        let dbs: Vec<String> = spec
            .sites
            .iter()
            .map(|s| sql_string(&s.database.name))
            .collect();
        let sql = format!(
            "SELECT 'db', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({}); \
             SELECT 'user', User, Host FROM mysql.user WHERE User IN ({});",
            dbs.join(", "),
            users.join(", ")
        );
        let mut sql = format!("SELECT 'up'; {sql}");
        for site in &spec.sites {
            let Some(data) = super::app::database_data(site) else {
                continue;
            };
            // Last, and with --force: a missing table fails only this statement.
            sql.push_str(&format!(
                " SELECT 'datarow', {}, {};",
                sql_string(&site.database.name),
                data.count
            ));
        }
        // One client run, beside the probe's find (it is the probe's slowest process: 6 ms, half
        // of it the client starting). A server that does not answer, or a host without the
        // client, prints nothing, not even "up".
        Some(super::Beside::Output(format!(
            "mariadb --force -NB -e {}",
            crate::quote::shell_word(&sql)
        )))
    }

    fn stops_serving(&self, cx: &Cx, lines: &[String]) -> Vec<String> {
        let mut gone: Vec<String> = DbFacts::parse(lines)
            .stale(&accounts(cx.spec))
            .filter(|(user, host)| {
                cx.spec.sites.iter().any(|s| s.database.user == *user) && host != "localhost"
            })
            .map(|(_, host)| host.clone())
            .collect();
        gone.sort();
        gone.dedup();
        gone
    }

    fn needs(&self, cx: &Cx, lines: &[String]) -> Vec<Need> {
        let facts = DbFacts::parse(lines);
        let sites = &cx.spec.sites;
        let names: Vec<&str> = sites.iter().map(|s| s.database.name.as_str()).collect();
        let data: Vec<(&str, &str)> = sites
            .iter()
            .filter_map(|s| Some((s.database.name.as_str(), super::app::database_data(s)?.what)))
            .collect();
        let reason = facts.reason(&names, &accounts(cx.spec), &data);
        reason
            .map(|reason| Need {
                handler: Handler::run(STEP),
                reason,
            })
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe's answer as the parsers get it (shared by the replica and switchover tests).
    pub(super) fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    /// The bootstrap of several sites, run by this machine's MariaDB client against a server of
    /// the test's own (its own data directory and socket, ended by its PID): every site's SQL in
    /// order, and the first error stops the run, failing it and naming its file.
    #[test]
    fn the_bootstrap_runs_each_sites_sql_and_stops_at_the_first_error() {
        let t = tempfile::tempdir().unwrap();
        let inv = t.path().join("three.toml");
        let mut text = String::new();
        for n in ["one", "two", "three"] {
            text += &format!(
                "[[sites]]\nname = \"{n}\"\ndomain = \"{n}.example\"\nstack = \"lemp\"\n\
                 [sites.database]\nname = \"{n}\"\nuser = \"{n}\"\npassword_env = \"PATH\"\n\
                 [sites.dns]\nsoa_contact = \"hostmaster@{n}.example\"\n\n"
            );
        }
        text += "[[hosts]]\nname = \"h\"\npublic_address = \"198.18.0.1\"\nroles = [\"web\", \"app\", \"db\", \"dns\"]\n\
                 ssh = { address = \"198.18.0.1\" }\n";
        std::fs::write(&inv, text).unwrap();
        let spec = crate::spec::load(&inv, &crate::spec::SystemSources).unwrap();
        let sql = t.path().join("sql");
        std::fs::create_dir(&sql).unwrap();
        let command = bootstrap_command(&spec).replace(SQL_DIR, &sql.display().to_string());
        let create = |db: &str| format!("CREATE DATABASE IF NOT EXISTS `{db}`;\n");
        std::fs::write(sql.join("one.sql"), create("one")).unwrap();
        std::fs::write(sql.join("two.sql"), create("two") + "SELEC 1;\n").unwrap();
        std::fs::write(sql.join("three.sql"), create("three")).unwrap();
        let server = Server::start(&t.path().join("server"));
        let run = std::process::Command::new("sh")
            .args(["-c", &command])
            .env("PATH", &server.client_path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{said}");
        assert!(
            said.contains("two.sql") && said.contains("at line 2"),
            "{said}"
        );
        let dbs = server.query("SHOW DATABASES");
        assert!(
            dbs.contains("one") && dbs.contains("two") && !dbs.contains("three"),
            "{dbs}"
        );
    }

    /// A MariaDB server of a test's own: a fresh data directory, a socket, no network; ended by its
    /// PID when dropped.
    struct Server {
        /// A PATH whose `mariadb` is this machine's client speaking to this server (the client
        /// reads its socket from /etc/mysql, which wins over MYSQL_UNIX_PORT).
        client_path: String,
        child: std::process::Child,
    }

    impl Server {
        fn start(dir: &std::path::Path) -> Server {
            std::fs::create_dir(dir).unwrap();
            // SAFETY: geteuid has no preconditions and cannot fail.
            let user = if unsafe { libc::geteuid() } == 0 {
                "--user=root".to_string()
            } else {
                String::new()
            };
            let data = format!("--datadir={}", dir.join("data").display());
            let installed = std::process::Command::new("mariadb-install-db")
                .args([
                    &data,
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ])
                .args((!user.is_empty()).then_some(&user))
                .output()
                .expect("mariadb-install-db (Debian's mariadb-server; tests/install-deps)");
            assert!(
                installed.status.success(),
                "{}",
                String::from_utf8_lossy(&installed.stderr)
            );
            let socket = dir.join("sock");
            let child = std::process::Command::new("mariadbd")
                .args([
                    "--no-defaults",
                    &data,
                    &format!("--socket={}", socket.display()),
                    &format!("--pid-file={}", dir.join("pid").display()),
                    "--skip-networking",
                ])
                .args((!user.is_empty()).then_some(&user))
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(dir.join("log")).unwrap())
                .spawn()
                .unwrap();
            let bin = dir.join("bin");
            std::fs::create_dir(&bin).unwrap();
            let client = bin.join("mariadb");
            std::fs::write(
                &client,
                format!(
                    "#!/bin/sh\nexec /usr/bin/mariadb --socket={} \"$@\"\n",
                    socket.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o755)).unwrap();
            let server = Server {
                client_path: format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
                child,
            };
            for _ in 0..300 {
                if server.answers() {
                    return server;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            panic!(
                "the test's MariaDB did not answer within 30 s: {}",
                std::fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
        }

        fn answers(&self) -> bool {
            self.client(&["-e", "SELECT 1"])
                .is_ok_and(|o| o.status.success())
        }

        fn query(&self, sql: &str) -> String {
            let out = self.client(&["-NBe", sql]).unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        fn client(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
            std::process::Command::new("mariadb")
                .args(args)
                .env("PATH", &self.client_path)
                .output()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The load-balanced example: a primary, a replica, two web hosts (database `foobar`).
    pub(super) fn spec() -> Spec {
        let path =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/inventories/lb.toml"));
        crate::spec::load(path, &crate::spec::SystemSources).unwrap()
    }
}
