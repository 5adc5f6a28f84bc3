//! What one host should look like: the output of `render`, the input of the plan. Plain data.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub host: String,
    pub packages: Vec<String>,
    pub paths: Vec<ManagedPath>,
    pub services: Vec<Service>,
    pub validators: Vec<Validator>,
    pub checks: Vec<HealthCheck>,
}

impl Desired {
    /// A service and the package that provides it.
    pub fn service(&mut self, name: impl Into<String>, package: impl Into<String>) {
        let (name, package) = (name.into(), package.into());
        self.packages.push(package.clone());
        self.services.push(Service { name, package });
    }

    pub fn path(&self, path: &str) -> Option<&ManagedPath> {
        self.paths.iter().find(|p| p.path == path)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ManagedPath {
    /// Absolute path on the host.
    pub path: String,
    pub state: PathState,
    /// What must happen after this path changed, in order.
    pub notify: Vec<Handler>,
    /// Name of the validator (in `Desired::validators`) that reads this path.
    pub validator: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PathState {
    File {
        #[serde(skip)]
        content: Vec<u8>,
        mode: u32,
        owner: String,
        group: String,
        /// Holds a secret: shown masked, written with a restrictive mode.
        sensitive: bool,
    },
    Dir {
        mode: u32,
        owner: String,
        group: String,
    },
    Link {
        target: String,
    },
    Absent,
}

/// What a changed path triggers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "action", content = "target", rename_all = "kebab-case")]
pub enum Handler {
    Reload(String),
    Restart(String),
    /// For a service that is not running: a start also loads the new configuration.
    Start(String),
    /// Feed a SQL file to the local MariaDB server as root (over its unix socket).
    RunSql(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The name `systemctl` and `service` both know (`nginx`, `php8.2-fpm`, `named`).
    pub name: String,
    /// The package whose install provides it.
    pub package: String,
}

/// A real tool that checks files before they go live. `command` is a `sh -c` script; `{root}` in it
/// is replaced by the (shell-quoted) root of the staged tree, so one validator checks a render output
/// directory, a staging copy on a host, or the live system (root = "").
#[derive(Debug, Clone, Serialize)]
pub struct Validator {
    pub name: String,
    pub command: String,
    /// Live directories copied into the stage before the managed files are laid over them, so the
    /// tool sees the whole configuration it would load, not just provision's files.
    pub stage: Vec<String>,
}

impl Validator {
    pub fn command_for_root(&self, root: &str) -> String {
        self.command
            .replace("{root}", &shell_escape::unix::escape(root.into()))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HealthCheck {
    /// GET http://address:port/ with a Host header; passes on status 200 and a body that contains `expect`.
    Http {
        address: String,
        port: u16,
        host_header: String,
        path: String,
        expect: Option<String>,
    },
    /// An `A`/`AAAA` query for `name` sent to `server`; passes when the answer is exactly `expect`.
    Dns {
        server: String,
        name: String,
        expect: Vec<String>,
    },
}
