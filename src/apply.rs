//! The edge that talks to hosts: connect, gather facts, plan, and execute a plan, reporting progress
//! through a `Reporter`. Everything it decides comes from the pure modules (render, facts parsing,
//! plan, script); this module only moves bytes and reads answers.

use crate::desired::Desired;
use crate::facts::{self, DbProbe, Facts, ProbeRequest};
use crate::health;
use crate::plan::{self, HostPlan};
use crate::render::{self, RenderOptions};
use crate::script;
use crate::secret::Redactor;
use crate::spec::{App, Host, Role, Spec};
use crate::templates::Templates;
use crate::transport::{HostKeyPolicy, LocalTransport, SshTransport, Stats, Transport};
use std::time::{Duration, Instant};

/// Progress of one run, per host and phase. Implemented by the UI (bars on a terminal, plain lines
/// otherwise, nothing for --json).
pub trait Reporter: Sync {
    fn phase(&self, host: &str, phase: &str);
    fn note(&self, host: &str, text: &str);
    /// A remote command, already redacted; shown with -v.
    fn command(&self, host: &str, command: &str);
    fn finish(&self, host: &str, ok: bool, summary: &str);
}

#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub host_keys: HostKeyPolicy,
    /// Apply to the machine provision runs on, without SSH.
    pub local: bool,
    pub today: crate::zone::Ymd,
    /// How long health checks may take to pass after the reloads.
    pub check_patience: Duration,
}

pub struct Context<'a> {
    pub spec: &'a Spec,
    pub templates: &'a Templates,
    pub redactor: &'a Redactor,
    pub opts: RunOptions,
    pub reporter: &'a dyn Reporter,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub plan: Option<HostPlan>,
    pub applied: bool,
    pub error: Option<String>,
    pub checks: Vec<String>,
    pub stats: Stats,
    pub seconds: f64,
}

impl HostOutcome {
    pub fn new(host: &str) -> HostOutcome {
        HostOutcome {
            host: host.to_string(),
            plan: None,
            applied: false,
            error: None,
            checks: Vec::new(),
            stats: Stats::default(),
            seconds: 0.0,
        }
    }

    /// One line for the progress display: the error, or what the plan amounts to.
    fn summary(&self, done: &str) -> String {
        match (&self.plan, &self.error) {
            (_, Some(e)) => e.clone(),
            (Some(p), None) if p.is_empty() => "no changes".into(),
            (Some(p), None) => format!("{} change(s){done}", p.change_count()),
            (None, None) => String::new(),
        }
    }
}

fn connect(ctx: &Context, host: &Host) -> Result<Box<dyn Transport>, String> {
    if ctx.opts.local {
        return Ok(Box::new(LocalTransport::new()));
    }
    SshTransport::connect(&host.ssh, ctx.opts.host_keys)
        .map(|t| Box::new(t) as Box<dyn Transport>)
        .map_err(|e| e.to_string())
}

/// How scripts are run on the host: as root directly, or through `sudo -n` for another SSH user
/// (passwordless sudo is required: provision never types a password).
fn as_root(ctx: &Context, host: &Host, command: &str) -> String {
    if ctx.opts.local || host.ssh.user == "root" {
        command.to_string()
    } else {
        format!("sudo -n sh -c {}", crate::templates::shell_word(command))
    }
}

fn render_opts(ctx: &Context) -> RenderOptions {
    RenderOptions {
        reveal_secrets: true,
        today: ctx.opts.today,
    }
}

fn db_probe(spec: &Spec, host: &Host) -> Option<DbProbe> {
    if !host.has(Role::Db) {
        return None;
    }
    Some(DbProbe {
        name: spec.database.name.clone(),
        accounts: render::db_accounts(spec),
        demo: matches!(spec.site.app, App::Demo),
    })
}

/// Facts in one round trip, then the host rendered again with the zone it serves now.
fn gather(ctx: &Context, host: &Host, t: &mut dyn Transport) -> Result<(Desired, Facts), String> {
    ctx.reporter.phase(&host.name, "facts");
    let err = |e: &dyn std::fmt::Display| {
        format!("{}: {}", host.name, ctx.redactor.redact(&e.to_string()))
    };
    let first = render::render_host(ctx.spec, ctx.templates, &render_opts(ctx), host, None)
        .map_err(|e| err(&e))?;
    let zone = render::zone_file(ctx.spec);
    let always: Vec<String> = if host.has(Role::Dns) {
        vec![zone.clone()]
    } else {
        Vec::new()
    };
    let req = ProbeRequest::for_desired(&first, db_probe(ctx.spec, host), &always);
    let probe = req.script();
    ctx.reporter
        .command(&host.name, &format!("sh -s <<'EOF'\n{probe}EOF"));
    let out = t
        .exec(&as_root(ctx, host, "sh -s"), probe.as_bytes())
        .map_err(|e| err(&e))?;
    if out.status != 0 {
        return Err(err(&format!(
            "the facts probe failed (exit {}): {}",
            out.status,
            out.text().trim()
        )));
    }
    let facts = facts::parse(&out.text(), &req).map_err(|e| err(&e))?;
    let previous = match facts.paths.get(&zone) {
        Some(facts::PathFact::File {
            content: Some(c), ..
        }) => Some(String::from_utf8_lossy(c).into_owned()),
        _ => None,
    };
    let desired = if previous.is_some() {
        render::render_host(ctx.spec, ctx.templates, &render_opts(ctx), host, previous)
            .map_err(|e| err(&e))?
    } else {
        first
    };
    Ok((desired, facts))
}

/// Plans one host (read-only: no lock).
pub fn plan_host(ctx: &Context, host: &Host) -> HostOutcome {
    let start = Instant::now();
    let mut outcome = HostOutcome::new(&host.name);
    match connect(ctx, host) {
        Err(e) => outcome.error = Some(e),
        Ok(mut t) => {
            match gather(ctx, host, t.as_mut()) {
                Ok((desired, facts)) => {
                    outcome.plan = Some(plan::plan_host(&desired, &facts, ctx.redactor))
                }
                Err(e) => outcome.error = Some(e),
            }
            outcome.stats = t.stats();
        }
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    let summary = outcome.summary("");
    ctx.reporter
        .finish(&host.name, outcome.error.is_none(), &summary);
    outcome
}

fn generation() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{}", std::process::id())
}

/// Locks, plans and executes one host; rolls back when a health check fails.
pub fn apply_host(ctx: &Context, host: &Host) -> HostOutcome {
    let start = Instant::now();
    let mut outcome = HostOutcome::new(&host.name);
    let result = connect(ctx, host).and_then(|mut t| {
        let r = apply_on(ctx, host, t.as_mut(), &mut outcome);
        t.release();
        outcome.stats = t.stats();
        r
    });
    if let Err(e) = result {
        outcome.error = Some(ctx.redactor.redact(&e));
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    let summary = outcome.summary(" applied");
    ctx.reporter
        .finish(&host.name, outcome.error.is_none(), &summary);
    outcome
}

fn apply_on(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    outcome: &mut HostOutcome,
) -> Result<(), String> {
    let name = &host.name;
    ctx.reporter.phase(name, "lock");
    let who = format!(
        "{}@{} pid {} since {}",
        std::env::var("USER").unwrap_or_else(|_| "?".into()),
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    );
    let lock = as_root(ctx, host, &script::lock_command(&who));
    ctx.reporter.command(name, &lock);
    let answer = t.hold(&lock).map_err(|e| format!("{name}: {e}"))?;
    if let Some(holder) = answer.strip_prefix("BUSY") {
        return Err(format!(
            "{name}: another apply holds the lock on this host ({}); refusing to run concurrently",
            holder.trim()
        ));
    }
    if answer != "LOCKED" {
        return Err(format!(
            "{name}: cannot take the lock on the host: {}",
            answer.trim()
        ));
    }
    let (desired, facts) = gather(ctx, host, t)?;
    let plan = plan::plan_host(&desired, &facts, ctx.redactor);
    outcome.plan = Some(plan.clone());
    if plan.is_empty() {
        return Ok(());
    }
    let generation = generation();
    let stage: Vec<_> = desired
        .paths
        .iter()
        .filter(|p| p.validator.is_some())
        .cloned()
        .collect();
    let apply = script::apply_script(&plan, &stage, &generation);
    ctx.reporter
        .command(name, &ctx.redactor.redact(&script::for_display(&apply)));
    let mut tool_output = Vec::new();
    let mut failure = None;
    let mut done = false;
    let out = t
        .exec_lines(&as_root(ctx, host, "sh -s"), apply.as_bytes(), &mut |raw| {
            let line = ctx.redactor.redact(raw);
            if let Some(p) = line.strip_prefix("@phase ") {
                ctx.reporter.phase(name, p);
            } else if let Some(o) = line.strip_prefix("@out ") {
                tool_output.push(o.to_string());
            } else if let Some(f) = line.strip_prefix("@fail ") {
                failure = Some(f.to_string());
            } else if let Some(d) = line.strip_prefix("@did ") {
                ctx.reporter.note(name, d);
            } else if line == "@done" {
                done = true;
            }
        })
        .map_err(|e| format!("{name}: {e}"))?;
    let text = ctx.redactor.redact(&out.text());
    if let Some(f) = failure {
        let mut msg = format!("{name}: {f}");
        if !tool_output.is_empty() {
            msg.push_str(":\n    ");
            msg.push_str(&tool_output.join("\n    "));
        }
        return Err(msg);
    }
    if !done || out.status != 0 {
        return Err(format!(
            "{name}: the apply script stopped unexpectedly (exit {}): {}",
            out.status,
            text.trim()
        ));
    }
    outcome.applied = true;
    ctx.reporter.phase(name, "check");
    for check in &plan.checks {
        match health::run(check, ctx.opts.check_patience) {
            Ok(ok) => outcome.checks.push(ok),
            Err(failed) => {
                ctx.reporter.phase(name, "rollback");
                let rb = script::rollback_script(&plan, &generation);
                ctx.reporter.command(name, &rb);
                let res = t.exec(&as_root(ctx, host, "sh -s"), rb.as_bytes());
                let rolled = matches!(&res, Ok(o) if o.status == 0 && o.text().contains("@done"));
                outcome.applied = false;
                if !rolled {
                    return Err(format!(
                        "{name}: health check failed: {}; ROLLBACK FAILED: check the host",
                        failed.0
                    ));
                }
                // Say whether the restored state answers again.
                let after: Vec<String> = plan
                    .checks
                    .iter()
                    .filter_map(|c| health::run(c, ctx.opts.check_patience).err().map(|e| e.0))
                    .collect();
                let state = if after.is_empty() {
                    "the previous files were restored, the services reloaded, and the health checks pass again".to_string()
                } else {
                    format!("the previous files were restored and the services reloaded, but checks still fail: {}", after.join("; "))
                };
                return Err(format!(
                    "{name}: health check failed: {}; {state}",
                    failed.0
                ));
            }
        }
    }
    Ok(())
}

/// Hosts in the order their services depend on each other: the database primary, its replicas, the
/// web tier, then the load balancer and DNS. Hosts of one group are handled in parallel.
pub fn groups(spec: &Spec) -> Vec<Vec<&Host>> {
    // A replica comes after the primary, whose bootstrap creates the account it replicates with.
    let rank = |h: &Host| {
        if h.has(Role::Db) {
            0
        } else if h.has(Role::DbReplica) && !h.has(Role::Web) {
            1
        } else if h.has(Role::Web) {
            2
        } else {
            3
        }
    };
    let mut out: Vec<Vec<&Host>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for h in &spec.hosts {
        out[rank(h)].push(h);
    }
    out.retain(|g| !g.is_empty());
    out
}
