//! The user's OpenSSH client configuration (`~/.ssh/config`, or the file `hosts.ssh.config`
//! names): what `ssh HOST` would use for HOST, read the way OpenSSH reads it.
//!
//! - `Host` sections with patterns (`*`, `?`, `!` negation, several per line or comma-separated),
//!   `Match all`, `Match host|originalhost PATTERNS`. A `Match` with any other criterion (`exec`,
//!   `user`, `canonical`, ...) applies to no host: provision cannot evaluate it the way ssh would.
//! - `Include` (several files, `*`/`?` wildcards, `~`, relative paths under `~/.ssh`), nested at
//!   most 16 deep; an included file's sections apply only where the `Include` line itself does.
//! - For each keyword the first value that applies wins, as in OpenSSH; `IdentityFile` adds up.
//! - Keywords used: HostName, User, Port, IdentityFile, IdentitiesOnly, ProxyJump,
//!   UserKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, HostKeyAlias, ConnectTimeout.
//!   Their values are checked, and a bad one is an error naming file and line. Every other keyword
//!   (ServerAliveInterval, ControlMaster, ForwardAgent, Ciphers, ...) is ignored, where OpenSSH
//!   would reject one it does not know: provision implements only these, keeps its own
//!   keepalives, and must not refuse a config that ssh itself accepts.
//! - Tokens `%h %n %p %r %u %d %i %%` and a leading `~` are expanded in HostName (`%h`, `%%` only),
//!   IdentityFile and UserKnownHostsFile.

use std::path::{Path, PathBuf};
pub use words::{expand, expand_tilde, parse_jumps, Jump, Tokens, WordError};
use words::{glob, match_conds, matches_list, patterns, split_line, yes_no};

mod words;

/// How deep `Include`s may nest (OpenSSH's limit too); deeper is a loop, most likely.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub keyword: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if !self.keyword.is_empty() {
            write!(f, "{}: ", self.keyword)?;
        }
        f.write_str(&self.message)
    }
}

/// `StrictHostKeyChecking`; provision never accepts a changed key, whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    /// `yes` (and `ask`: provision has no one to ask): only known keys.
    Yes,
    /// `accept-new`, and `no`/`off`: an unknown key is recorded on first use.
    AcceptNew,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    IdentitiesOnly(bool),
    ProxyJump(String),
    UserKnownHostsFile(Vec<String>),
    StrictHostKeyChecking(Strict),
    HashKnownHosts(bool),
    HostKeyAlias(String),
    ConnectTimeout(u32),
}

#[derive(Debug, Clone)]
enum Cond {
    /// `Host` patterns, matched against the name as given.
    Host(Vec<String>),
    /// `Match host`: against HostName when an earlier line set it, else the name as given.
    MatchHost(Vec<String>),
    MatchOriginalHost(Vec<String>),
    Never,
}

#[derive(Debug, Clone, Default)]
struct Section {
    /// All must hold: an included file's sections carry the `Include` line's conditions first.
    conds: Vec<Cond>,
    values: Vec<Value>,
}

/// A parsed configuration: its sections in file order, `Include`s inlined.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    sections: Vec<Section>,
}

/// What the configuration says about one host; `None` where it says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// As written: tokens are expanded once user and port are known (`expand`).
    pub identity_files: Vec<String>,
    pub identities_only: Option<bool>,
    pub proxy_jump: Option<String>,
    pub known_hosts: Option<Vec<String>>,
    pub strict: Option<Strict>,
    pub hash_known_hosts: Option<bool>,
    pub host_key_alias: Option<String>,
    pub connect_timeout: Option<u32>,
}

impl SshConfig {
    /// Reads `path` and what it includes. `home` anchors `~` and relative `Include`s (`~/.ssh`).
    pub fn load(path: &Path, home: &Path) -> Result<SshConfig, ConfigError> {
        let mut c = SshConfig::default();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            keyword: String::new(),
            message: format!("cannot read it: {e}"),
        })?;
        c.read(&text, path, home, &[], 0)?;
        Ok(c)
    }

    /// Parses one file's text (tests, and `load`); `Include`s are read from the disk.
    pub fn parse(text: &str, path: &Path, home: &Path) -> Result<SshConfig, ConfigError> {
        let mut c = SshConfig::default();
        c.read(text, path, home, &[], 0)?;
        Ok(c)
    }

    fn read(
        &mut self,
        text: &str,
        path: &Path,
        home: &Path,
        outer: &[Cond],
        depth: usize,
    ) -> Result<(), ConfigError> {
        self.open_section(outer.to_vec());
        for (i, raw) in text.lines().enumerate() {
            let line = At {
                file: path,
                line: i + 1,
                keyword: "",
            };
            let Some((keyword, args)) = split_line(raw).map_err(|m| line.error(m.to_string()))?
            else {
                continue;
            };
            let at = At {
                keyword: &keyword,
                ..line
            };
            match keyword.to_ascii_lowercase().as_str() {
                "host" => self.open_section(with(outer, [Cond::Host(patterns(&args))])),
                "match" => {
                    let conds = match_conds(&args).map_err(|m| at.error(m.to_string()))?;
                    self.open_section(with(outer, conds));
                }
                "include" => self.include(&at, &args, home, depth)?,
                key => {
                    if let (Some(value), Some(s)) =
                        (value(&at, key, &args)?, self.sections.last_mut())
                    {
                        s.values.push(value);
                    }
                }
            }
        }
        Ok(())
    }

    /// A new section: the lines that follow apply where `conds` all hold.
    fn open_section(&mut self, conds: Vec<Cond>) {
        self.sections.push(Section {
            conds,
            values: Vec::new(),
        });
    }

    /// `Include FILES...`: each file read in place, under the conditions of the section the line
    /// is in.
    fn include(
        &mut self,
        at: &At,
        args: &[String],
        home: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(at.error(format!(
                "nested more than {MAX_INCLUDE_DEPTH} deep (an Include loop?)"
            )));
        }
        let conds = self
            .sections
            .last()
            .map(|s| s.conds.clone())
            .unwrap_or_default();
        for arg in args {
            let pattern = expand_tilde(arg, home);
            let pattern = if Path::new(&pattern).is_absolute() {
                PathBuf::from(pattern)
            } else {
                home.join(".ssh").join(pattern)
            };
            for file in glob(&pattern) {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| at.error(format!("cannot read {}: {e}", file.display())))?;
                self.read(&text, &file, home, &conds, depth + 1)?;
            }
        }
        // Lines after the Include belong to the section it was in, not to the included file's
        // last one.
        self.open_section(conds);
        Ok(())
    }

    /// What applies to `host` (the name as given: an alias or an address), first value winning.
    pub fn lookup(&self, host: &str) -> HostConfig {
        let original = host.to_ascii_lowercase();
        let mut c = HostConfig::default();
        for s in &self.sections {
            let applies = s.conds.iter().all(|cond| match cond {
                Cond::Host(p) => matches_list(p, &original),
                Cond::MatchOriginalHost(p) => matches_list(p, &original),
                Cond::MatchHost(p) => matches_list(
                    p,
                    &c.hostname
                        .as_deref()
                        .unwrap_or(&original)
                        .to_ascii_lowercase(),
                ),
                Cond::Never => false,
            });
            if !applies {
                continue;
            }
            for v in &s.values {
                match v {
                    Value::HostName(h) => {
                        c.hostname
                            .get_or_insert_with(|| h.replace("%h", host).replace("%%", "%"));
                    }
                    Value::User(u) => {
                        c.user.get_or_insert_with(|| u.clone());
                    }
                    Value::Port(p) => {
                        c.port.get_or_insert(*p);
                    }
                    Value::IdentityFile(f) => c.identity_files.push(f.clone()),
                    Value::IdentitiesOnly(b) => {
                        c.identities_only.get_or_insert(*b);
                    }
                    Value::ProxyJump(j) => {
                        c.proxy_jump.get_or_insert_with(|| j.clone());
                    }
                    Value::UserKnownHostsFile(f) => {
                        c.known_hosts.get_or_insert_with(|| f.clone());
                    }
                    Value::StrictHostKeyChecking(s) => {
                        c.strict.get_or_insert(*s);
                    }
                    Value::HashKnownHosts(b) => {
                        c.hash_known_hosts.get_or_insert(*b);
                    }
                    Value::HostKeyAlias(a) => {
                        c.host_key_alias.get_or_insert_with(|| a.clone());
                    }
                    Value::ConnectTimeout(t) => {
                        c.connect_timeout.get_or_insert(*t);
                    }
                }
            }
        }
        c
    }
}

/// `outer`'s conditions, then `more`.
fn with(outer: &[Cond], more: impl IntoIterator<Item = Cond>) -> Vec<Cond> {
    let mut conds = outer.to_vec();
    conds.extend(more);
    conds
}

/// Where a keyword is written (`""` for the line as a whole), for the errors of its values.
struct At<'a> {
    file: &'a Path,
    line: usize,
    keyword: &'a str,
}

impl At<'_> {
    fn error(&self, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line,
            keyword: self.keyword.to_string(),
            message,
        }
    }

    /// The one value a keyword takes.
    fn one(&self, args: &[String]) -> Result<String, ConfigError> {
        match args {
            [one] => Ok(one.clone()),
            _ => Err(self.error(format!("found {} values; allowed: one", args.len()))),
        }
    }
}

/// The value of a keyword provision uses (`key`: lowercase), checked; `None` for every other
/// keyword (see the module's docs).
fn value(at: &At, key: &str, args: &[String]) -> Result<Option<Value>, ConfigError> {
    let flag = |args: &[String]| -> Result<bool, ConfigError> {
        yes_no(&at.one(args)?).map_err(|m| at.error(m.to_string()))
    };
    Ok(Some(match key {
        "hostname" => Value::HostName(at.one(args)?),
        "user" => Value::User(at.one(args)?),
        "port" => {
            let v = at.one(args)?;
            match v.parse::<u16>() {
                Ok(p) if p > 0 => Value::Port(p),
                _ => {
                    return Err(at.error(format!(
                        "found {v:?}; allowed: a port number from 1 to 65535"
                    )))
                }
            }
        }
        "identityfile" => Value::IdentityFile(at.one(args)?),
        "identitiesonly" => Value::IdentitiesOnly(flag(args)?),
        "hashknownhosts" => Value::HashKnownHosts(flag(args)?),
        "proxyjump" => {
            let v = at.one(args)?;
            parse_jumps(&v).map_err(|m| at.error(format!("found {v:?}; allowed: {m}")))?;
            Value::ProxyJump(v)
        }
        "userknownhostsfile" if !args.is_empty() => Value::UserKnownHostsFile(args.to_vec()),
        "stricthostkeychecking" => {
            let v = at.one(args)?;
            Value::StrictHostKeyChecking(match v.to_ascii_lowercase().as_str() {
                "yes" | "ask" => Strict::Yes,
                "accept-new" | "no" | "off" => Strict::AcceptNew,
                _ => {
                    return Err(at.error(format!("found {v:?}; allowed: yes, accept-new, no, ask")))
                }
            })
        }
        "hostkeyalias" => Value::HostKeyAlias(at.one(args)?),
        "connecttimeout" => {
            let v = at.one(args)?;
            match v.parse::<u32>() {
                Ok(t) if (1..=300).contains(&t) => Value::ConnectTimeout(t),
                _ => return Err(at.error(format!("found {v:?}; allowed: seconds, from 1 to 300"))),
            }
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests;
