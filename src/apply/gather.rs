//! A host's facts gathered in one round trip (a second only for paths the first could not know
//! to ask about) while its candidate releases render, and what its components read from them.

use super::{as_root, connect, Context, HostError};
use crate::component::{Leaving, Need};
use crate::desired::Desired;
use crate::facts::{self, Facts, Probe};
use crate::release::{Release, SUPPORTED};
use crate::render::{RenderError, RenderOptions, Renderer};
use crate::spec::Host;
use crate::transport::Transport;

/// What the components read from their facts.
#[derive(Default)]
pub(super) struct Read {
    /// Handlers to run.
    pub needs: Vec<Need>,
    /// Hosts leaving the ones this host fronts.
    pub leaving: Vec<Leaving>,
    /// Addresses of hosts this host stops serving (the inventory no longer names them).
    pub stops_serving: Vec<String>,
    /// What needs a look that no change fixes.
    pub notices: Vec<String>,
}

/// Facts in one round trip; the host rendered again with what it has now where the render depends
/// on it (a zone serial); the components' needs and leaving hosts read from their facts. The
/// host's release is one of the facts: every release it may run is rendered, and the probe answers
/// for the one it runs.
pub(super) fn gather(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    (renderer, renders): Rendered,
) -> Result<(Desired, Facts, Read), HostError> {
    ctx.reporter.phase(&host.name, "facts");
    let render_err = |e: &RenderError| HostError::Render(ctx.redactor.redact(&e.to_string()));
    let ok: Vec<(Release, &Desired)> = renders
        .iter()
        .filter_map(|(r, d)| d.as_ref().ok().map(|d| (*r, d)))
        .collect();
    let probe = Probe::new(&ok);
    let text = run_probe(ctx, host, t, &probe.script(), "the facts probe")?;
    let (id, version, codename) = facts::os_of(&text).ok_or_else(|| {
        HostError::Facts("the facts probe did not say which OS the host runs".into())
    })?;
    let Some(release) = Release::find(&id, &version) else {
        return Err(HostError::Refused(crate::release::unsupported(
            &host.name, &id, &version, &codename,
        )));
    };
    if let Some(pinned) = host.release {
        if pinned != release {
            return Err(HostError::Refused(format!(
                "the inventory says {} runs {}, but it runs {}; nothing was changed (fix hosts.release, or remove it: plan learns the release from the host)",
                host.name,
                pinned.describe(),
                release.describe()
            )));
        }
    }
    let first = match renders.into_iter().find(|(r, _)| *r == release) {
        Some((_, Ok(d))) => d,
        Some((_, Err(e))) => return Err(render_err(&e)),
        None => unreachable!("the host's release was one of the candidates"),
    };
    let req = probe
        .request_for(release)
        .ok_or_else(|| HostError::Facts(format!("no probe for {}", release.describe())))?;
    let mut facts = facts::parse(&text, &req).map_err(|e| HostError::Facts(e.0))?;
    let desired = if first.paths.iter().any(|p| p.from_previous) {
        renderer
            .host(host, release, &facts)
            .map_err(|e| render_err(&e))?
    } else {
        first
    };
    probe_unasked(ctx, host, t, &desired, &req, &mut facts)?;
    let read = renderer.with_cx(host, release, |cx| {
        let mut read = Read::default();
        for c in ctx.registry.for_host(ctx.spec, host) {
            let lines = facts.components.get(c.name()).cloned().unwrap_or_default();
            read.needs.extend(c.needs(cx, &lines));
            read.leaving.extend(c.leaving(cx, &lines));
            read.stops_serving.extend(c.stops_serving(cx, &lines));
            read.notices.extend(c.notices(cx, &lines));
        }
        read
    });
    Ok((desired, facts, read))
}

/// The renderer of a host, and its render for every release it may run.
pub(super) type Rendered<'a> = (Renderer<'a>, Vec<(Release, Result<Desired, RenderError>)>);

/// Connects to `host` while its candidate releases are rendered (the probe asks for all of them;
/// the handshake leaves this machine's cores idle, and many sites take as long to render).
pub(super) fn connect_rendering<'a>(
    ctx: &'a Context,
    host: &'a Host,
    opts: &'a RenderOptions,
) -> (Result<Box<dyn Transport>, HostError>, Rendered<'a>) {
    let candidates: Vec<Release> = match host.release {
        Some(r) => vec![r],
        None => SUPPORTED.to_vec(),
    };
    std::thread::scope(|s| {
        let rendering = s.spawn(|| {
            let renderer = Renderer::new(ctx.registry, ctx.spec, ctx.templates, opts);
            let renders = candidates
                .iter()
                .map(|r| (*r, renderer.host(host, *r, &crate::render::Unknown)))
                .collect();
            (renderer, renders)
        });
        let t = connect(ctx, host);
        let rendered = rendering
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (t, rendered)
    })
}

/// Runs a probe's shell program as root and returns what it printed; `what` names the probe in
/// the error when it fails.
fn run_probe(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    script: &str,
    what: &str,
) -> Result<String, HostError> {
    ctx.reporter
        .command(&host.name, &format!("sh -s <<'EOF'\n{script}EOF"));
    // It travels gzip'd: a many-site probe is mostly paths and hashes (50 sites: 216 KiB, 40
    // KiB gzip'd).
    let out = t
        .exec(
            &as_root(ctx, host, "gzip -dc | sh -s"),
            &gzip(script.as_bytes()),
        )
        .map_err(|e| HostError::Connect(ctx.redactor.redact(&e.to_string())))?;
    if out.status != 0 {
        return Err(HostError::Facts(format!(
            "{what} failed (exit {}): {}",
            out.status,
            ctx.redactor.redact(out.text().trim())
        )));
    }
    Ok(out.text())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes)
        .and_then(|()| gz.finish())
        .expect("writing to memory")
}

/// Paths the render made knowing the facts that the probe did not ask about (what a site that
/// left the inventory had here: only the facts name it) are asked about in a second round trip,
/// which only such a run makes.
fn probe_unasked(
    ctx: &Context,
    host: &Host,
    t: &mut dyn Transport,
    desired: &Desired,
    asked: &facts::ProbeRequest,
    facts: &mut Facts,
) -> Result<(), HostError> {
    let known: std::collections::HashSet<&str> =
        asked.paths.iter().map(|(p, _)| p.as_str()).collect();
    let mut more = Desired::new(&host.name);
    more.paths = desired
        .paths
        .iter()
        .filter(|p| !known.contains(p.path.as_str()))
        .cloned()
        .collect();
    if more.paths.is_empty() {
        return Ok(());
    }
    let req = facts::ProbeRequest::for_desired(&more);
    let text = run_probe(ctx, host, t, &req.script(), "the second facts probe")?;
    let second = facts::parse(&text, &req).map_err(|e| HostError::Facts(e.0))?;
    facts.paths.extend(second.paths);
    Ok(())
}
