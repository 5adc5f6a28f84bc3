//! What a component works with: `Cx`, the read-only view of the site and the host being rendered,
//! and `Out`, the builder it adds packages, paths, services, validators, steps and checks to.

use crate::desired::{
    Desired, Handler, HealthCheck, ManagedPath, PathState, Service, Step, Validator,
};
use crate::release::Release;
use crate::render::templates::Templates;
use crate::render::{RenderError, RenderOptions};
use crate::spec::{Host, Spec};
use serde_json::Value;

/// What a component sees while making one site's template values.
pub struct SiteCx<'a> {
    pub spec: &'a Spec,
    pub site: &'a crate::spec::Site,
    pub opts: &'a RenderOptions,
    /// The release the values are for (hosts of one inventory may run different ones).
    pub release: Release,
}

/// What a component sees while rendering one host.
pub struct Cx<'a> {
    pub spec: &'a Spec,
    pub host: &'a Host,
    /// The release the host runs (a fact), or the one it is rendered for.
    pub release: Release,
    pub templates: &'a Templates,
    pub opts: &'a RenderOptions,
    /// The site being rendered (`Component::render_site`); `None` for what is the host's as a
    /// whole (`Component::render`).
    pub site: Option<&'a crate::spec::Site>,
    /// Template values plus `host`: the site's (every component's `context` for it) while a site
    /// is rendered; for the host as a whole, `sites` (each site's values) and `host`.
    pub base: &'a tera::Context,
    /// The values of `base` as JSON, without `host`.
    pub values: &'a serde_json::Value,
    /// Every site's template values, by its place in `Spec::sites`: what `render_for` renders a
    /// site's file with from what is the host's as a whole (a zone, a database's bootstrap).
    pub sites: &'a [tera::Context],
    /// What the host has now (nothing in the first render, before the facts).
    pub now: &'a dyn crate::render::Now,
}

impl Cx<'_> {
    /// The host's cores and memory, once the probe has told them.
    pub fn host_size(&self) -> Option<crate::tuning::HostSize> {
        crate::tuning::HostSize::parse(&self.now.facts("host")?)
    }

    /// Renders a template with `site`'s values and `host`, plus `extra` values when given.
    pub fn render_for(
        &self,
        site: &crate::spec::Site,
        name: &str,
        extra: &[(&str, Value)],
    ) -> Result<String, RenderError> {
        let mut ctx = self
            .sites
            .get(usize::from(site.at.index))
            .cloned()
            .unwrap_or_default();
        ctx.insert("host", &crate::render::host_values(self.host));
        for (k, v) in extra {
            ctx.insert(k.to_string(), v);
        }
        self.templates
            .render(name, &ctx)
            .map_err(|e| RenderError::Template {
                host: self.host.name.clone(),
                message: e.to_string(),
            })
    }

    /// Renders a template with the base context, plus `extra` values when given.
    pub fn render(&self, name: &str, extra: &[(&str, Value)]) -> Result<String, RenderError> {
        let text = if extra.is_empty() {
            self.templates.render(name, self.base)
        } else {
            let mut ctx = self.base.clone();
            for (k, v) in extra {
                ctx.insert(k.to_string(), v);
            }
            self.templates.render(name, &ctx)
        };
        text.map_err(|e| RenderError::Template {
            host: self.host.name.clone(),
            message: e.to_string(),
        })
    }
}

/// The builder a component writes into; everything it adds is recorded as this component's.
pub struct Out<'a> {
    pub(crate) d: &'a mut Desired,
    pub(crate) component: &'static str,
    /// Handlers that make new application code count (PHP's opcache): the app's files notify them.
    pub(crate) code_reloaders: &'a mut Vec<Handler>,
}

impl<'a> Out<'a> {
    pub fn package(&mut self, name: impl Into<String>) {
        self.d.packages.push(name.into());
    }

    /// A system user `name` with a group of its own, working in `home` (not created), for `comment`
    /// (`site shop.example.com`): made before the host's files are staged (see `desired::Account`).
    /// Asked twice alike, it is one account; a name asked with another home or comment, or one
    /// `useradd` would refuse, is an error.
    pub fn account(&mut self, name: &str, home: &str, comment: &str) -> Result<(), RenderError> {
        let a = crate::desired::Account {
            name: name.to_string(),
            home: home.to_string(),
            comment: comment.to_string(),
        };
        let bad = |message: String| RenderError::Template {
            host: self.d.host.clone(),
            message: format!("{} asks for account {name:?}: {message}", self.component),
        };
        crate::names::parse_unix_user(name).map_err(|e| bad(format!("allowed: {e}")))?;
        crate::names::parse_host_path(home)
            .map_err(|e| bad(format!("home {home:?}; allowed: {e}")))?;
        if comment.is_empty()
            || comment.len() > 100
            || !comment
                .bytes()
                .all(|b| (b' '..=b'~').contains(&b) && b != b':')
        {
            return Err(bad(format!(
                "comment {comment:?}; allowed: 1 to 100 printable ASCII characters without ':'"
            )));
        }
        match self.d.accounts.iter().find(|x| x.name == name) {
            Some(x) if *x == a => Ok(()),
            Some(x) => Err(bad(format!(
                "it is asked for already with home {} ({}); one account has one home",
                x.home, x.comment
            ))),
            None => {
                self.d.accounts.push(a);
                Ok(())
            }
        }
    }

    /// A service (`systemctl`/`service` name), the package that provides it, and its pid file and
    /// process name (see `Service::pidfile`).
    pub fn service(&mut self, name: &str, package: &str, pidfile: &str, process: &str) {
        self.package(package);
        self.d.services.push(Service {
            name: name.to_string(),
            package: package.to_string(),
            component: self.component.to_string(),
            pidfile: Some((pidfile.to_string(), process.to_string())),
            plain_reload: None,
        });
    }

    /// How service `name` reloads on a host without systemd, instead of its init script's reload.
    pub fn plain_reload(&mut self, name: &str, command: impl Into<String>) {
        if let Some(s) = self.d.services.iter_mut().find(|s| s.name == name) {
            s.plain_reload = Some(command.into());
        }
    }

    pub fn validator(&mut self, name: &str, command: impl Into<String>, stage: &[&str]) {
        self.d.validators.push(Validator {
            name: name.to_string(),
            command: command.into(),
            stage: stage.iter().map(|s| s.to_string()).collect(),
            per_file: false,
            release_files: None,
        });
    }

    /// A validator that checks one file at a time (`{file}` in the command): it runs only on the
    /// files that change.
    pub fn file_validator(&mut self, name: &str, command: impl Into<String>) -> &mut Validator {
        self.d.validators.push(Validator {
            name: name.to_string(),
            command: command.into(),
            stage: Vec::new(),
            per_file: true,
            release_files: None,
        });
        let last = self.d.validators.len() - 1;
        &mut self.d.validators[last]
    }

    pub fn step(&mut self, name: &str, command: impl Into<String>, irreversible: Option<&str>) {
        self.d.steps.push(Step {
            name: name.to_string(),
            component: self.component.to_string(),
            command: command.into(),
            irreversible: irreversible.map(str::to_string),
        });
    }

    /// `h` puts live what can lock the operator out (`what`: `the new firewall`): a generation
    /// that runs it is rolled back by the host itself unless a new SSH connection confirms it.
    pub fn guarded(&mut self, h: Handler, what: &str) {
        self.d.guarded.push(crate::desired::Guarded {
            handler: h,
            what: what.to_string(),
        });
    }

    pub fn check(&mut self, c: HealthCheck) {
        self.d.checks.push(c);
    }

    /// This component runs the PHP code: `h` makes changed code count at once.
    pub fn reloads_code(&mut self, h: Handler) {
        if !self.code_reloaders.contains(&h) {
            self.code_reloaders.push(h);
        }
    }

    /// A file, `0644 root:root` unless told otherwise.
    pub fn file(
        &mut self,
        path: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> PathBuilder<'_> {
        self.push(
            path.into(),
            PathState::File {
                content: content.into(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                sensitive: false,
            },
        )
    }

    pub fn dir(&mut self, path: impl Into<String>) -> PathBuilder<'_> {
        self.push(
            path.into(),
            PathState::Dir {
                mode: 0o755,
                owner: "root".into(),
                group: "root".into(),
            },
        )
    }

    pub fn link(&mut self, path: impl Into<String>, target: impl Into<String>) -> PathBuilder<'_> {
        self.push(
            path.into(),
            PathState::Link {
                target: target.into(),
            },
        )
    }

    /// A file the host makes itself with `command` (see `PathState::Made`), `0644 root:root`
    /// unless told otherwise.
    pub fn made(
        &mut self,
        path: impl Into<String>,
        command: String,
        what: String,
    ) -> PathBuilder<'_> {
        self.push(
            path.into(),
            PathState::Made {
                command,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                what,
            },
        )
    }

    pub fn absent(&mut self, path: impl Into<String>) -> PathBuilder<'_> {
        self.push(path.into(), PathState::Absent)
    }

    /// An application release; `marker` is the path of its manifest on the host.
    pub fn release(&mut self, marker: String, tree: crate::tree::Tree) -> PathBuilder<'_> {
        self.push(marker, PathState::Tree(std::sync::Arc::new(tree)))
    }

    /// Paths added through the scope all notify `notify` and are read by `validator`: the common
    /// case of a service's own config files.
    pub fn scope(&mut self, notify: Handler, validator: &str) -> Scope<'_, 'a> {
        Scope {
            out: self,
            notify,
            validator: validator.to_string(),
        }
    }

    fn push(&mut self, path: String, state: PathState) -> PathBuilder<'_> {
        self.d.paths.push(ManagedPath {
            path,
            state,
            notify: Vec::new(),
            validator: None,
            from_previous: false,
            code: false,
            because: None,
        });
        let p = self.d.paths.last_mut().expect("just pushed");
        PathBuilder { p }
    }
}

/// Adjusts the path just added.
pub struct PathBuilder<'b> {
    p: &'b mut ManagedPath,
}

impl PathBuilder<'_> {
    pub fn mode(self, m: u32) -> Self {
        match &mut self.p.state {
            PathState::File { mode, .. }
            | PathState::Dir { mode, .. }
            | PathState::Made { mode, .. } => *mode = m,
            _ => {}
        }
        self
    }

    pub fn owned(self, user: &str, grp: &str) -> Self {
        match &mut self.p.state {
            PathState::File { owner, group, .. }
            | PathState::Dir { owner, group, .. }
            | PathState::Made { owner, group, .. } => {
                *owner = user.to_string();
                *group = grp.to_string();
            }
            _ => {}
        }
        self
    }

    /// Holds a secret: masked in diffs, never hashed in any output.
    pub fn sensitive(self) -> Self {
        if let PathState::File { sensitive, .. } = &mut self.p.state {
            *sensitive = true;
        }
        self
    }

    pub fn notify(self, h: Handler) -> Self {
        if !self.p.notify.contains(&h) {
            self.p.notify.push(h);
        }
        self
    }

    pub fn checked_by(self, v: &str) -> Self {
        self.p.validator = Some(v.to_string());
        self
    }

    /// Why the path is as it must be: said with its change in the plan.
    pub fn because(self, why: impl Into<String>) -> Self {
        self.p.because = Some(why.into());
        self
    }

    /// Application code: whatever runs PHP on the host (see `Out::reloads_code`) is told when it
    /// changes.
    pub fn code(self) -> Self {
        self.p.code = true;
        self
    }

    /// The content depends on the host's current copy (read back by the probe every time).
    pub fn from_previous(self) -> Self {
        self.p.from_previous = true;
        self
    }
}

/// See `Out::scope`.
pub struct Scope<'o, 'a> {
    out: &'o mut Out<'a>,
    notify: Handler,
    validator: String,
}

impl Scope<'_, '_> {
    pub fn file(
        &mut self,
        path: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> PathBuilder<'_> {
        let (n, v) = (self.notify.clone(), self.validator.clone());
        self.out.file(path, content).notify(n).checked_by(&v)
    }

    pub fn link(&mut self, path: impl Into<String>, target: impl Into<String>) -> PathBuilder<'_> {
        let (n, v) = (self.notify.clone(), self.validator.clone());
        self.out.link(path, target).notify(n).checked_by(&v)
    }

    pub fn absent(&mut self, path: impl Into<String>) -> PathBuilder<'_> {
        let (n, v) = (self.notify.clone(), self.validator.clone());
        self.out.absent(path).notify(n).checked_by(&v)
    }
}
