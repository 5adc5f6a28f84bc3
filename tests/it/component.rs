//! The worked example of a component, written outside the crate: one rendered file, one service,
//! one validator, one fact and one step. Registered next to the standard components, it shows up in
//! render, in the facts probe, in the plan and in the apply script, with no edit anywhere else: the
//! generic pipeline names no service. CONTRIBUTING.md, "Adding a component", walks through it.

use provision::component::{Component, Cx, Need, Out, Registry};
use provision::desired::Handler;
use provision::facts::{Facts, ProbeRequest};
use provision::host_state::HostState;
use provision::plan::plan_host;
use provision::release::DEBIAN_13;
use provision::render::{RenderError, RenderOptions, Renderer};
use provision::spec::{Role, SystemSources};

struct Example;
static EXAMPLE: Example = Example;

const CONF: &str = "/etc/provision-example.conf";

impl Component for Example {
    fn name(&self) -> &'static str {
        "example"
    }

    /// Its service comes up after the web server's.
    fn after(&self) -> &'static [&'static str] {
        &["nginx"]
    }

    fn render(&self, cx: &Cx, out: &mut Out) -> Result<(), RenderError> {
        out.service(
            "example",
            "example-daemon",
            "/run/example.pid",
            "example-daemon",
        );
        let sites: Vec<&str> = cx.spec.sites.iter().map(|s| s.domain.as_str()).collect();
        out.file(CONF, format!("sites = {}\n", sites.join(" ")))
            .notify(Handler::reload("example"))
            .checked_by("example");
        out.validator(
            "example",
            "example-daemon --check {root}/etc/provision-example.conf",
            &[],
        );
        out.step("example-init", "example-daemon --init", None);
        Ok(())
    }

    /// The fact: whether the daemon's state was initialised.
    fn probe(&self, _cx: &Cx) -> Option<String> {
        Some("[ -e /var/lib/example/state ] && echo ready || echo missing".into())
    }

    fn needs(&self, _cx: &Cx, lines: &[String]) -> Vec<Need> {
        if lines.iter().any(|l| l == "missing") {
            vec![Need {
                handler: Handler::run("example-init"),
                reason: "the example daemon's state is not initialised".into(),
            }]
        } else {
            Vec::new()
        }
    }
}

#[test]
fn a_component_added_in_one_file_appears_in_render_facts_plan_and_apply() {
    let registry = Registry::standard().with(&EXAMPLE, Role::Web);
    let inv = crate::util::inventory("lemp.toml");
    let spec = provision::spec::load(&inv, &SystemSources).unwrap();
    let templates = provision::render::templates::Templates::load(None).unwrap();
    let opts = RenderOptions {
        reveal_secrets: true,
        today: 20_261_123,
    };
    let renderer = Renderer::new(&registry, &spec, &templates, &opts);
    let host = &spec.hosts[0];

    // Render: its file, service, validator, step and probe are the host's; it comes after nginx.
    let d = renderer
        .host(host, DEBIAN_13, &provision::render::Unknown)
        .unwrap();
    let conf = d.path(CONF).expect("the component's file is rendered");
    assert_eq!(conf.state.content().unwrap(), b"sites = foobar.com\n");
    assert!(d
        .services
        .iter()
        .any(|s| s.name == "example" && s.component == "example"));
    assert!(d.validator("example").is_some() && d.step("example-init").is_some());
    let pos = |c: &str| d.order.iter().position(|o| o == c).unwrap();
    assert!(pos("nginx") < pos("example"));

    // Facts: its snippet is in the one probe, its lines come back to it alone.
    let req = ProbeRequest::for_desired(&d);
    assert!(req.script().contains("@c example"));
    let mut facts = Facts {
        os_id: "debian".into(),
        os_version: "13".into(),
        state: HostState {
            key: Some("00".repeat(32)),
            ..HostState::default()
        },
        ..Facts::default()
    };
    facts
        .components
        .insert("example".into(), vec!["missing".into()]);
    let needs = renderer.with_cx(host, DEBIAN_13, |cx| {
        EXAMPLE.needs(cx, &facts.components["example"])
    });

    // Plan: the file is created, its service started after nginx, its step run because of its fact.
    let redactor = provision::commands::redactor(&spec);
    let plan = plan_host(&d, &facts, &needs, &redactor);
    assert!(plan.changes.iter().any(|c| c.path == CONF));
    let steps: Vec<String> = plan.steps.iter().map(|s| s.handler.line()).collect();
    let at = |l: &str| {
        steps
            .iter()
            .position(|s| s == l)
            .unwrap_or_else(|| panic!("no {l} in {steps:?}"))
    };
    assert!(at("start nginx") < at("start example"));
    assert!(at("start example") < at("run example-init"));
    assert!(plan.steps[at("run example-init")]
        .reason
        .contains("not initialised"));
    assert!(plan.validators.iter().any(|v| v.name == "example"));

    // Apply: the script stages and validates its file, swaps it in, starts it, runs its step.
    let script = provision::script::apply_script(
        &plan,
        &d,
        &provision::script::Runner {
            who: "test",
            lock_wait: 0,
        },
    );
    for needle in [
        "stage_file",
        "validate example 'example-daemon --check \"$R\"/etc/provision-example.conf'",
        "swap_file",
        "handler 'start example' start example",
        "handler 'run example-init' run example-init 'example-daemon --init'",
    ] {
        assert!(script.contains(needle), "no {needle:?} in the apply script");
    }
}
