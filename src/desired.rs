//! What one host should look like: the output of `render`, the input of the plan. Plain data; it
//! names no service: components fill it in (see `component`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct Desired {
    pub host: String,
    /// The release it was rendered for.
    pub release: Option<crate::release::Release>,
    pub packages: Vec<String>,
    /// System users (each with a group of its own) that must exist before files owned by them are
    /// staged and their configs validated: made after the packages, before the stage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<Account>,
    pub paths: Vec<ManagedPath>,
    pub services: Vec<Service>,
    pub validators: Vec<Validator>,
    /// Converge steps beyond files (a database bootstrap), run when notified or when facts ask.
    pub steps: Vec<Step>,
    pub checks: Vec<HealthCheck>,
    /// Handlers that can lock the operator out (a ruleset, sshd's settings): a generation that
    /// runs one is guarded on the host until a new SSH connection confirms it.
    pub guarded: Vec<Guarded>,
    /// Extra probe snippets, one per component that has facts: (component, shell snippet).
    #[serde(skip)]
    pub probes: Vec<(String, String)>,
    /// Commands the probe runs in the background, one per component at most: (component, command).
    #[serde(skip)]
    pub besides: Vec<(String, crate::component::Beside)>,
    /// Component names in dependency order: handlers of an earlier one run first.
    pub order: Vec<String>,
}

impl Desired {
    pub fn new(host: &str) -> Desired {
        Desired {
            host: host.to_string(),
            release: None,
            packages: Vec::new(),
            accounts: Vec::new(),
            paths: Vec::new(),
            services: Vec::new(),
            validators: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            guarded: Vec::new(),
            probes: Vec::new(),
            besides: Vec::new(),
            order: Vec::new(),
        }
    }

    pub fn path(&self, path: &str) -> Option<&ManagedPath> {
        self.paths.iter().find(|p| p.path == path)
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn validator(&self, name: &str) -> Option<&Validator> {
        self.validators.iter().find(|v| v.name == name)
    }

    /// The component that owns a handler's target, for ordering.
    pub fn component_of(&self, h: &Handler) -> Option<&str> {
        match &h.target {
            Target::Service(s) => self
                .services
                .iter()
                .find(|x| &x.name == s)
                .map(|x| x.component.as_str()),
            Target::Step(s) => self.step(s).map(|x| x.component.as_str()),
        }
    }

    /// What the guarded handlers among `handlers` put live (`the new firewall`), in order; empty
    /// when none of them can lock the operator out. A service counts whatever its action (a
    /// reload merged into a restart or a start puts the same settings live).
    pub fn guarded_by<'a>(&self, handlers: impl IntoIterator<Item = &'a Handler>) -> Vec<&str> {
        let handlers: Vec<&Handler> = handlers.into_iter().collect();
        self.guarded
            .iter()
            .filter(|g| handlers.iter().any(|h| h.target == g.handler.target))
            .map(|g| g.what.as_str())
            .collect()
    }

    /// Position of a handler in the host's dependency order (unknown ones last).
    pub fn rank(&self, h: &Handler) -> usize {
        self.component_of(h)
            .and_then(|c| self.order.iter().position(|o| o == c))
            .unwrap_or(usize::MAX)
    }
}

/// A system user with a group of its own (`useradd --system --user-group`), no login shell and no
/// home directory made: what a site's PHP runs as and its files belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The user's name, and its group's.
    pub name: String,
    /// Where it works (a site's document root); not created.
    pub home: String,
    /// What it is for (`site shop.example.com`), for people and plans.
    pub comment: String,
}

impl Account {
    /// How provision tells its own accounts from others of the same name: their GECOS field starts
    /// with it. Any other account of a desired name (a person's login, a package's user) is never
    /// taken over.
    pub const MARK: &'static str = "[provision] ";

    /// The GECOS field provision gives it.
    pub fn gecos(&self) -> String {
        format!("{}{}", Account::MARK, self.comment)
    }
}

/// A handler after which only a new SSH connection proves the operator can still log in, and
/// what it puts live, for messages (`sshd's new settings`).
#[derive(Debug, Clone, Serialize)]
pub struct Guarded {
    pub handler: Handler,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManagedPath {
    /// Absolute path on the host.
    pub path: String,
    pub state: PathState,
    /// What must happen after this path changed.
    pub notify: Vec<Handler>,
    /// Name of the validator (in `Desired::validators`) that reads this path.
    pub validator: Option<String>,
    /// The content depends on what the host has now (a zone serial): the probe always returns it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub from_previous: bool,
    /// Application code: notifies whatever runs PHP on the host (filled in by render).
    #[serde(skip)]
    pub code: bool,
    /// Why the path is as it must be, said with its change in the plan (a site that left the
    /// inventory: what goes, and what is kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
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
        /// Holds a secret: shown masked, never hashed in any output.
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
    /// An application release (`tree`): the path is its marker, the manifest the host keeps once
    /// the release is whole.
    Tree(std::sync::Arc<crate::tree::Tree>),
    /// A file the host makes itself, once: a self-signed certificate with its key, which must
    /// never leave the host. `command` writes the content to the file named by `$OUT`; the path
    /// being there is enough (its name changes when what it must hold changes), and its content is
    /// never read back.
    Made {
        #[serde(skip)]
        command: String,
        mode: u32,
        owner: String,
        group: String,
        /// What it is, for the plan: `a self-signed certificate for www.example.com`.
        what: String,
    },
    Absent,
}

impl PathState {
    pub fn is_sensitive(&self) -> bool {
        matches!(
            self,
            PathState::File {
                sensitive: true,
                ..
            }
        )
    }

    pub fn content(&self) -> Option<&[u8]> {
        match self {
            PathState::File { content, .. } => Some(content),
            _ => None,
        }
    }
}

/// How strongly a service is touched: a start (of a stopped service) covers a restart, which covers
/// a reload. `Stop` only appears when a rollback puts a service back to stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Reload,
    Restart,
    Start,
    Stop,
    /// Run a converge step.
    Run,
}

impl Action {
    const ALL: [Action; 5] = [
        Action::Reload,
        Action::Restart,
        Action::Start,
        Action::Stop,
        Action::Run,
    ];

    /// Its word in a handler's line (`reload nginx`), the pending file and the host library's
    /// `handler` calls.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Reload => "reload",
            Action::Restart => "restart",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Run => "run",
        }
    }

    pub fn from_verb(verb: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.verb() == verb)
    }

    /// Its place in the order above (a step's run is compared with no service's action).
    pub fn strength(self) -> u8 {
        match self {
            Action::Reload => 1,
            Action::Restart => 2,
            Action::Start => 3,
            Action::Stop => 4,
            Action::Run => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Target {
    Service(String),
    Step(String),
}

/// What a change triggers: an action on a service, or running a step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Handler {
    pub action: Action,
    pub target: Target,
}

impl Handler {
    pub fn reload(service: &str) -> Handler {
        Handler::service(Action::Reload, service)
    }

    pub fn restart(service: &str) -> Handler {
        Handler::service(Action::Restart, service)
    }

    pub fn service(action: Action, service: &str) -> Handler {
        Handler {
            action,
            target: Target::Service(service.to_string()),
        }
    }

    pub fn run(step: &str) -> Handler {
        Handler {
            action: Action::Run,
            target: Target::Step(step.to_string()),
        }
    }

    pub fn target_name(&self) -> &str {
        match &self.target {
            Target::Service(s) | Target::Step(s) => s,
        }
    }

    /// `reload nginx`, `run mariadb-bootstrap`: how handlers are shown and kept in the pending file.
    pub fn line(&self) -> String {
        format!("{} {}", self.action.verb(), self.target_name())
    }

    pub fn parse_line(line: &str) -> Option<Handler> {
        let (verb, name) = line.trim().split_once(' ')?;
        Some(match Action::from_verb(verb)? {
            Action::Run => Handler::run(name),
            action => Handler::service(action, name),
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// The name `systemctl` and `service` both know (`nginx`, `php8.2-fpm`, `named`).
    pub name: String,
    /// The package whose install provides it.
    pub package: String,
    /// The component it belongs to (its place in the dependency order).
    pub component: String,
    /// Where its main process writes its pid, and that process's name (`/proc/PID/comm`): how a
    /// host without systemd tells whether it runs, without running its init script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<(String, String)>,
    /// How it reloads on a host without systemd, where its init script's own reload is not
    /// seamless (it runs only while the service runs; otherwise the service is started).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub plain_reload: Option<String>,
}

/// A converge step beyond files, e.g. feeding the bootstrap SQL to the database server.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub component: String,
    /// A `sh -c` command run as root on the host.
    pub command: String,
    /// What running it again cannot take back (said plainly in plans and rollbacks).
    pub irreversible: Option<String>,
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
    /// The command checks one file, `{file}` (its path on the host): it runs once per changed file
    /// it reads, not once per apply.
    pub per_file: bool,
    /// A per-file validator that also reads the files of an application's releases whose path
    /// ends with this (`.php`), which are no managed paths of their own: `render --check` checks
    /// them with the rendered files. Not written to the manifest.
    #[serde(skip)]
    pub release_files: Option<String>,
}

impl Validator {
    /// Also reads the files of releases whose path ends with `suffix` (see `release_files`).
    pub fn reads_release_files(&mut self, suffix: &str) -> &mut Validator {
        self.release_files = Some(suffix.to_string());
        self
    }

    /// The command to run: `{root}` replaced by `root` as the shell reads it (a quoted path, or
    /// `"$R"` in the apply script), and, for a per-file validator, `{file}` by the file it checks.
    pub fn command_in(&self, root: &str, file: Option<&str>) -> String {
        let command = self.command.replace("{root}", root);
        match file {
            Some(file) => command.replace("{file}", &crate::quote::shell_word(file)),
            None => command,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HealthCheck {
    /// GET http://address:port/path with a Host header (https: over TLS, with the Host as SNI, and
    /// the certificate must cover it); passes on `status`, a body that contains `expect`, and the
    /// `location` header when one is asked for (a redirect).
    Http {
        address: String,
        port: u16,
        host_header: String,
        path: String,
        status: u16,
        expect: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// An `A` (or `AAAA`) query for `name` sent to `server`; passes when the answer is exactly
    /// `expect`.
    Dns {
        server: String,
        name: String,
        expect: Vec<String>,
    },
    /// `command` run as root over SSH on `host` (the inventory's name: the checked host itself,
    /// or another whose view is what counts, such as a web host reaching the database); its exit
    /// status and output are read by `component` (`Component::read_check`).
    Remote {
        host: String,
        component: String,
        /// What it proves, for messages: `MariaDB on db1 (10.0.0.3:3306) from web1`.
        what: String,
        command: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_line_reads_back_as_the_same_handler() {
        for action in Action::ALL {
            let h = match action {
                Action::Run => Handler::run("mariadb-bootstrap"),
                a => Handler::service(a, "nginx"),
            };
            assert_eq!(Handler::parse_line(&h.line()), Some(h));
        }
        assert_eq!(Handler::parse_line("bounce nginx"), None);
    }
}
