//! The edge that talks to hosts: connect, gather facts, plan, and execute plans, reporting progress
//! through a `Reporter`. Everything it decides comes from the pure modules (render, facts parsing,
//! plan, script); this module only moves bytes and reads answers.

pub mod checks;
mod confirm;
mod execute;
mod gather;
mod history;
mod roll;

pub use execute::execute;
use gather::{connect_rendering, gather, Read};

pub use history::{history, rollback_host};
pub use roll::{let_go, roll, GateError};

use crate::component::{Leaving, Registry};
use crate::desired::Desired;
use crate::facts::Facts;
use crate::plan::{self, HostPlan};
use crate::render::templates::Templates;
use crate::render::RenderOptions;
use crate::script;
use crate::secret::Redactor;
use crate::spec::{Host, Spec};
use crate::transport::{
    HostKeyPolicy, LocalTransport, OpenSshTransport, SshTransport, Stats, Transport,
};
use std::time::{Duration, Instant};

/// Runs commands on a host under its lock (see `script::commands_script`); their output lines.
pub fn run_commands(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    commands: &[(String, String)],
) -> Result<Vec<String>, HostError> {
    let runner = script::Runner {
        who: &ctx.opts.who,
        lock_wait: ctx.opts.lock_wait,
    };
    let s = script::commands_script(commands, &runner);
    Ok(execute::run_script(ctx, host, t, &s)?
        .into_result(&host.name)?
        .output)
}

/// Progress of one run, per host and phase. Implemented by the UI (bars on a terminal, plain lines
/// otherwise, nothing for --json).
pub trait Reporter: Sync {
    fn phase(&self, host: &str, phase: &str);
    fn note(&self, host: &str, text: &str);
    /// A remote command, already redacted; shown with -v.
    fn command(&self, host: &str, command: &str);
    fn finish(&self, host: &str, ok: bool, summary: &str);
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub host_keys: HostKeyPolicy,
    /// Apply to the machine provision runs on, without SSH.
    pub local: bool,
    pub today: crate::component::zone::Ymd,
    /// How long health checks may take to settle after the reloads.
    pub check_patience: Duration,
    /// Seconds an apply waits for another apply's lock on a host (0: refuse at once).
    pub lock_wait: u64,
    /// Who runs this (`user@machine pid N`), for the lock and the generation records.
    pub who: String,
    /// Reach hosts through OpenSSH control masters kept this many seconds (`--ssh-reuse`).
    pub ssh_reuse: Option<u32>,
    /// The hosts this run selects (`--host`); empty: all of them.
    pub only: Vec<String>,
}

impl RunOptions {
    pub fn selects(&self, host: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|h| h == host)
    }
}

pub struct Context<'a> {
    pub registry: &'a Registry,
    pub spec: &'a Spec,
    pub templates: &'a Templates,
    pub redactor: &'a Redactor,
    pub opts: RunOptions,
    pub reporter: &'a dyn Reporter,
}

/// Why a host failed, by the phase it failed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "phase", content = "message", rename_all = "lowercase")]
pub enum HostError {
    /// Unreachable, refused authentication, or an unknown or changed host key; or the connection
    /// was lost.
    Connect(String),
    /// The facts probe failed or its output could not be read.
    Facts(String),
    /// A template failed to render for this host.
    Render(String),
    /// Refused before anything was changed: a saved plan that no longer matches, a host changed
    /// since it was planned, another apply holding the lock.
    Refused(String),
    /// The apply failed (a validator, a package, a reload); what the host was left as is said.
    Apply(String),
    /// Health checks failed after the change.
    Check(String),
    /// Not attempted: a host it depends on failed.
    Skipped(String),
}

impl HostError {
    pub fn phase(&self) -> &'static str {
        match self {
            HostError::Connect(_) => "connect",
            HostError::Facts(_) => "facts",
            HostError::Render(_) => "render",
            HostError::Refused(_) => "plan",
            HostError::Apply(_) => "apply",
            HostError::Check(_) => "check",
            HostError::Skipped(_) => "skipped",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            HostError::Connect(m)
            | HostError::Facts(m)
            | HostError::Render(m)
            | HostError::Refused(m)
            | HostError::Apply(m)
            | HostError::Check(m)
            | HostError::Skipped(m) => m,
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.phase(), self.message())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub plan: Option<HostPlan>,
    /// The generation this run recorded, if it changed the host.
    pub generation: Option<String>,
    pub applied: bool,
    pub error: Option<HostError>,
    pub checks: Vec<String>,
    pub notes: Vec<String>,
    pub stats: Stats,
    pub seconds: f64,
}

impl HostOutcome {
    pub fn new(host: &str) -> HostOutcome {
        HostOutcome {
            host: host.to_string(),
            plan: None,
            generation: None,
            applied: false,
            error: None,
            checks: Vec::new(),
            notes: Vec::new(),
            stats: Stats::default(),
            seconds: 0.0,
        }
    }

    /// One line for the progress display: the error, or what the plan amounts to.
    pub fn summary(&self, done: &str) -> String {
        match (&self.plan, &self.error) {
            (_, Some(e)) => e.to_string(),
            (Some(p), None) if p.is_empty() => "no changes".into(),
            (Some(p), None) => format!("{} change(s){done}", p.change_count()),
            (None, None) => String::new(),
        }
    }
}

/// The outcome of a planned host that is not applied, and why; said at once.
pub fn not_run(ctx: &Context, p: Prepared, error: HostError) -> HostOutcome {
    let mut o = HostOutcome::new(&p.host.name);
    o.plan = Some(p.plan);
    o.error = Some(error);
    ctx.reporter.finish(&o.host, false, &o.summary(""));
    o
}

/// A host connected, its facts gathered and its plan made: ready to execute.
pub struct Prepared {
    pub host: Host,
    pub transport: Box<dyn Transport>,
    pub desired: Desired,
    pub facts: Facts,
    pub plan: HostPlan,
    pub started: Instant,
    /// What a saved plan (`apply --plan`) committed to for this host, when one is applied.
    pub saved: Option<serde_json::Value>,
    /// Hosts this one fronts that the inventory no longer names: out of service before any host
    /// changes (`roll::let_go`).
    pub leaving: Vec<Leaving>,
}

pub fn connect(ctx: &Context, host: &Host) -> Result<Box<dyn Transport>, HostError> {
    if ctx.opts.local {
        return Ok(Box::new(LocalTransport::new()));
    }
    match ctx.opts.ssh_reuse {
        Some(secs) => OpenSshTransport::connect(&host.ssh, ctx.opts.host_keys, secs)
            .map(|t| Box::new(t) as Box<dyn Transport>),
        None => SshTransport::connect(&host.ssh, ctx.opts.host_keys)
            .map(|t| Box::new(t) as Box<dyn Transport>),
    }
    .map_err(|e| HostError::Connect(e.to_string()))
}

/// A connection that proves a new login gets through: a new TCP connection and authentication
/// whatever the run's own is (never a kept `--ssh-reuse` master, which would vouch for the old
/// session). The one way a guarded generation (a ruleset, sshd's settings) may be confirmed.
pub fn connect_new(ctx: &Context, host: &Host) -> Result<Box<dyn Transport>, HostError> {
    if ctx.opts.local {
        return Ok(Box::new(LocalTransport::new()));
    }
    match ctx.opts.ssh_reuse {
        Some(_) => OpenSshTransport::connect_new(&host.ssh, ctx.opts.host_keys)
            .map(|t| Box::new(t) as Box<dyn Transport>),
        None => SshTransport::connect(&host.ssh, ctx.opts.host_keys)
            .map(|t| Box::new(t) as Box<dyn Transport>),
    }
    .map_err(|e| HostError::Connect(e.to_string()))
}

/// How a command is run on the host: as root directly, or through `sudo -n` for another SSH user
/// (passwordless sudo is required: provision never types a password).
pub fn as_root(ctx: &Context, host: &Host, command: &str) -> String {
    if ctx.opts.local || host.ssh.user == "root" {
        command.to_string()
    } else {
        format!("sudo -n sh -c {}", crate::quote::shell_word(command))
    }
}

pub(super) fn render_opts(ctx: &Context) -> RenderOptions {
    RenderOptions {
        reveal_secrets: true,
        today: ctx.opts.today,
    }
}

/// Why this run must not change `host`, if it must not: it would stop serving hosts the inventory
/// no longer names (`gone`, by address) while hosts that front others (`Spec::fronting_hosts`)
/// this run leaves out may still send them requests. Only a run with the fronting hosts takes
/// those hosts out of their service first (`roll::let_go`); without it their requests fail until
/// the fronting hosts' health checks notice, and they then cut the ones they hold.
fn unfronted(ctx: &Context, host: &Host, gone: &[String]) -> Option<String> {
    if gone.is_empty() {
        return None;
    }
    let left_out: Vec<&str> = ctx
        .spec
        .fronting_hosts()
        .map(|h| h.name.as_str())
        .filter(|n| !ctx.opts.selects(n))
        .collect();
    if left_out.is_empty() {
        return None;
    }
    Some(format!(
        "it would stop serving {} (the inventory no longer names them), which the load balancer(s) {} may still send requests to, and this run leaves them out: select them too (--host {},{}), so that they take those hosts out of service first",
        gone.join(", "),
        left_out.join(", "),
        left_out.join(","),
        host.name
    ))
}

/// Connects, gathers and plans one host (read-only).
pub fn prepare(ctx: &Context, host: &Host) -> Result<Prepared, (HostError, Stats)> {
    let started = Instant::now();
    let opts = render_opts(ctx);
    let (t, rendered) = connect_rendering(ctx, host, &opts);
    let mut t = t.map_err(|e| (e, Stats::default()))?;
    match gather(ctx, host, t.as_mut(), rendered) {
        Ok((desired, facts, read)) => {
            if let Some(why) = unfronted(ctx, host, &read.stops_serving)
                .or_else(|| plan::accounts::refusal(&desired, &facts))
            {
                return Err((HostError::Refused(why), t.stats()));
            }
            let Read {
                needs,
                leaving,
                notices,
                ..
            } = read;
            let mut plan = plan::plan_host(&desired, &facts, &needs, ctx.redactor);
            plan.leaving = leaving.iter().map(|l| l.target.clone()).collect();
            plan.notices = notices;
            Ok(Prepared {
                host: host.clone(),
                transport: t,
                desired,
                facts,
                plan,
                started,
                saved: None,
                leaving,
            })
        }
        Err(e) => Err((e, t.stats())),
    }
}

/// Plans one host: the outcome carries its plan or why there is none.
pub fn plan_host(ctx: &Context, host: &Host) -> HostOutcome {
    let start = Instant::now();
    let mut outcome = HostOutcome::new(&host.name);
    match prepare(ctx, host) {
        Ok(p) => {
            outcome.stats = p.transport.stats();
            outcome.plan = Some(p.plan);
        }
        Err((e, stats)) => {
            outcome.error = Some(e);
            outcome.stats = stats;
        }
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    ctx.reporter
        .finish(&host.name, outcome.error.is_none(), &outcome.summary(""));
    outcome
}
