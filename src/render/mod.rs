//! Spec + templates → what every host should look like. Pure: no clock, no disk, no network; the
//! date and the current content of paths that depend on it (a zone serial) come in as arguments.
//! Which files, services and checks a host gets is the components' business (`component`); this
//! module only runs them and puts their output together.

pub mod local_check;
pub mod manifest;
pub mod templates;
pub mod tree;

use crate::component::{Cx, Out, Registry, SiteCx};
use crate::desired::Desired;
use crate::release::{Release, SUPPORTED};
use crate::secret::SecretKey;
use crate::spec::{Host, Spec};
use serde_json::{json, Map};
use templates::Templates;

pub struct RenderOptions {
    pub reveal_secrets: bool,
    /// The date new zone serials start from.
    pub today: crate::component::zone::Ymd,
}

impl RenderOptions {
    /// What a template is given for the inventory's secret `key` (see `Secrets::shown`): its value,
    /// or its visible placeholder when secrets are not revealed; `None` when there is none.
    pub fn secret(&self, secrets: &crate::secret::Secrets, key: SecretKey) -> Option<String> {
        secrets.shown(key, self.reveal_secrets)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// A template failed to render (a user's override, or a value it cannot take).
    Template { host: String, message: String },
    /// The inventory asks for something the host's release cannot give (another PHP version).
    Release { host: String, message: String },
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Template { host, message } | RenderError::Release { host, message } => {
                write!(f, "{host}: {message}")
            }
        }
    }
}

impl std::error::Error for RenderError {}

impl RenderError {
    /// The same error with every secret masked: a template's error may quote the value it failed
    /// on, and a render for a host or a check holds the real ones.
    pub fn redacted(self, redactor: &crate::secret::Redactor) -> RenderError {
        match self {
            RenderError::Template { host, message } => RenderError::Template {
                host,
                message: redactor.redact(&message),
            },
            RenderError::Release { host, message } => RenderError::Release {
                host,
                message: redactor.redact(&message),
            },
        }
    }
}

/// What a host has now, as far as rendering it depends on that: a zone file's serial, the network
/// interface a floating address goes on. Rendering runs once without it (for the facts probe) and
/// again with it.
pub trait Now {
    /// The content a path has on the host now (paths marked `from_previous`).
    fn file(&self, _path: &str) -> Option<Vec<u8>> {
        None
    }
    /// A component's facts (its probe's output lines), once the probe has run.
    fn facts(&self, _component: &str) -> Option<Vec<String>> {
        None
    }
}

/// Nothing known yet: the first render, before the facts.
pub struct Unknown;

impl Now for Unknown {}

impl Now for crate::facts::Facts {
    fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.content(path)
    }
    fn facts(&self, component: &str) -> Option<Vec<String>> {
        Some(self.components.get(component).cloned().unwrap_or_default())
    }
}

/// An earlier render in a directory (`render --out DIR`): its files stand for the host's.
pub struct EarlierRender(pub std::path::PathBuf);

impl Now for EarlierRender {
    fn file(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(tree::under(&self.0, path)).ok()
    }
}

/// Renders site-wide values once per release, then each host.
pub struct Renderer<'a> {
    registry: &'a Registry,
    spec: &'a Spec,
    templates: &'a Templates,
    opts: &'a RenderOptions,
    bases: Vec<Base>,
    site_contexts: Vec<SiteContexts>,
    /// Finds the secrets of the inventory in rendered files (see `mark_secret_files`).
    redactor: crate::secret::Redactor,
}

/// The site-wide template values of one release: as a tera context, and as JSON (what a check
/// renders a user's template again from, with other secrets: see `component::app`).
struct Base {
    release: Release,
    /// The site's index in `Spec::sites`; `None`: the host as a whole (`sites`: every site's).
    site: Option<usize>,
    context: tera::Context,
    values: serde_json::Value,
}

/// Every site's context for one release, in `Spec::sites` order.
struct SiteContexts {
    release: Release,
    contexts: Vec<tera::Context>,
}

impl Base {
    fn new(release: Release, site: Option<usize>, values: serde_json::Value) -> Base {
        let context =
            tera::Context::from_serialize(&values).unwrap_or_else(|_| tera::Context::new());
        Base {
            release,
            site,
            context,
            values,
        }
    }
}

impl<'a> Renderer<'a> {
    pub fn new(
        registry: &'a Registry,
        spec: &'a Spec,
        templates: &'a Templates,
        opts: &'a RenderOptions,
    ) -> Renderer<'a> {
        let mut bases = Vec::new();
        let mut site_contexts = Vec::new();
        for release in SUPPORTED {
            let sites: Vec<serde_json::Value> = spec
                .sites
                .iter()
                .map(|site| site_values(registry, spec, site, opts, release))
                .collect();
            let mut contexts = Vec::new();
            for (i, v) in sites.iter().enumerate() {
                let b = Base::new(release, Some(i), v.clone());
                contexts.push(b.context.clone());
                bases.push(b);
            }
            site_contexts.push(SiteContexts { release, contexts });
            bases.push(Base::new(release, None, json!({ "sites": sites })));
        }
        Renderer {
            registry,
            spec,
            templates,
            opts,
            bases,
            site_contexts,
            redactor: spec.secrets.redactor(),
        }
    }

    fn site_contexts(&self, release: Release) -> &[tera::Context] {
        self.site_contexts
            .iter()
            .find(|s| s.release == release)
            .map(|s| s.contexts.as_slice())
            .unwrap_or(&[])
    }

    fn base(&self, release: Release, site: Option<usize>) -> &Base {
        self.bases
            .iter()
            .find(|b| b.release == release && b.site == site)
            .or_else(|| self.bases.iter().find(|b| b.site == site))
            .expect("a base for every site and the host")
    }

    /// One host, for `release`, knowing what `now` says of the host: what is the host's as a whole
    /// once, then each site it serves.
    pub fn host(
        &self,
        host: &Host,
        release: Release,
        now: &dyn Now,
    ) -> Result<Desired, RenderError> {
        let hb = self.base(release, None);
        let mut base = hb.context.clone();
        base.insert("host", &host_values(host));
        let cx = Cx {
            spec: self.spec,
            host,
            release,
            templates: self.templates,
            opts: self.opts,
            site: None,
            base: &base,
            values: &hb.values,
            sites: self.site_contexts(release),
            now,
        };
        let mut d = Desired::new(&host.name);
        d.release = Some(release);
        let mut code_reloaders = Vec::new();
        let components = self.registry.for_host(self.spec, host);
        for c in &components {
            let mut out = Out {
                d: &mut d,
                component: c.name(),
                code_reloaders: &mut code_reloaders,
            };
            c.render(&cx, &mut out)?;
            if let Some(p) = c.probe(&cx) {
                d.probes.push((c.name().to_string(), p));
            }
            if let Some(b) = c.probe_beside(&cx) {
                d.besides.push((c.name().to_string(), b));
            }
        }
        for (i, site) in self.spec.sites.iter().enumerate() {
            if !site.served_by(host) {
                continue;
            }
            let sb = self.base(release, Some(i));
            let mut base = sb.context.clone();
            base.insert("host", &host_values(host));
            let scx = Cx {
                site: Some(site),
                base: &base,
                values: &sb.values,
                ..cx
            };
            for c in self.registry.for_site(site, &components) {
                let mut out = Out {
                    d: &mut d,
                    component: c.name(),
                    code_reloaders: &mut code_reloaders,
                };
                c.render_site(&scx, site, &mut out)?;
            }
        }
        for p in d.paths.iter_mut().filter(|p| p.code) {
            for h in &code_reloaders {
                if !p.notify.contains(h) {
                    p.notify.push(h.clone());
                }
            }
        }
        self.mark_secret_files(&mut d);
        d.order = components.iter().map(|c| c.name().to_string()).collect();
        d.packages.sort();
        d.packages.dedup();
        Ok(d)
    }

    /// A file that holds a secret is sensitive whichever template wrote it (a user's override
    /// too): masked in diffs, never hashed plainly in a plan.
    fn mark_secret_files(&self, d: &mut Desired) {
        for p in &mut d.paths {
            if let crate::desired::PathState::File {
                content, sensitive, ..
            } = &mut p.state
            {
                if !*sensitive {
                    let text = String::from_utf8_lossy(content);
                    *sensitive = self.spec.secrets.held_in(&self.redactor, &text);
                }
            }
        }
    }

    /// Every host of the inventory, each for `release(host)`, knowing what `now(host)` says.
    pub fn all(
        &self,
        release: &dyn Fn(&Host) -> Release,
        now: &dyn Fn(&Host) -> Box<dyn Now>,
    ) -> Result<Vec<Desired>, RenderError> {
        self.spec
            .hosts
            .iter()
            .map(|h| self.host(h, release(h), now(h).as_ref()))
            .collect()
    }

    /// The component context a host's facts are read in (`Component::needs`).
    pub fn with_cx<T>(&self, host: &Host, release: Release, f: impl FnOnce(&Cx) -> T) -> T {
        let b = self.base(release, None);
        let cx = Cx {
            spec: self.spec,
            host,
            release,
            templates: self.templates,
            opts: self.opts,
            site: None,
            base: &b.context,
            values: &b.values,
            sites: self.site_contexts(release),
            now: &Unknown,
        };
        f(&cx)
    }
}

/// The release a host is rendered for without facts: the inventory's, else `default`.
pub fn release_of(host: &Host, default: Release) -> Release {
    host.release.unwrap_or(default)
}

/// `host` in the templates: the host being rendered.
pub fn host_values(host: &Host) -> serde_json::Value {
    json!({ "name": host.name, "public_address": host.public_address.to_string() })
}

/// One site's template values for one release: `site` and every component's own for it.
fn site_values(
    registry: &Registry,
    spec: &Spec,
    site: &crate::spec::Site,
    opts: &RenderOptions,
    release: Release,
) -> serde_json::Value {
    let mut values = Map::new();
    values.insert(
        "site".into(),
        json!({
            "name": site.name,
            "domain": site.domain.as_str(),
            "fqdns": site.fqdns(),
            "stack": site.stack.name(),
            "document_root": site.document_root,
            "web_root": crate::component::app::web_root(site),
            "micro_cache": site.micro_cache,
            // A name nginx takes for a cache zone and in a variable: letters, digits, `_`.
            "cache_zone": format!("micro_{}", site.domain.as_str().replace(['.', '-'], "_")),
        }),
    );
    let cx = SiteCx {
        spec,
        site,
        opts,
        release,
    };
    crate::component::tls_context(&cx, &mut values);
    for c in registry.all() {
        c.context(&cx, &mut values);
    }
    serde_json::Value::Object(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::PathState;

    fn nginx_conf_is_sensitive(templates: &Templates, reveal: bool) -> bool {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/inventories/lemp.toml"
        ));
        let spec = crate::spec::load(path, &crate::spec::SystemSources).unwrap();
        let registry = Registry::standard();
        let opts = RenderOptions {
            reveal_secrets: reveal,
            today: 20261123,
        };
        let d = Renderer::new(&registry, &spec, templates, &opts)
            .host(&spec.hosts[0], crate::release::CURRENT_STABLE, &Unknown)
            .unwrap();
        let p = d
            .paths
            .iter()
            .find(|p| p.path == "/etc/nginx/nginx.conf")
            .unwrap();
        matches!(
            p.state,
            PathState::File {
                sensitive: true,
                ..
            }
        )
    }

    #[test]
    fn a_file_a_template_override_writes_a_secret_into_is_sensitive() {
        let stock = Templates::load(None).unwrap();
        assert!(!nginx_conf_is_sensitive(&stock, true));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("nginx")).unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/nginx/nginx.conf"
        ))
        .unwrap();
        std::fs::write(
            dir.path().join("nginx/nginx.conf"),
            text + "# {{ sites[0].db.password | upper }} {{ sites[0].app.salt }}\n",
        )
        .unwrap();
        let overridden = Templates::load(Some(dir.path())).unwrap();
        // Found by the salt's value (the password's form here is one no filter makes), and in a
        // render without values by its placeholder.
        assert!(nginx_conf_is_sensitive(&overridden, true));
        assert!(nginx_conf_is_sensitive(&overridden, false));
    }
}
