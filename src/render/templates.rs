//! The tera templates: embedded in the binary from `templates/`, each replaceable by a file of the same
//! relative name in a user's `--templates DIR`. Escaping filters for every target language are
//! registered here, so a template can write any value into SQL, PHP or a shell word safely.

use include_dir::{include_dir, Dir};
use std::path::{Path, PathBuf};
use tera::{Kwargs, State, Tera};

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Why the templates could not be loaded, or one could not be rendered.
#[derive(Debug)]
pub enum TemplateError {
    ReadOverride {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `--templates DIR` is not a directory.
    NotADirectory(PathBuf),
    ReadDir {
        dir: PathBuf,
        error: std::io::Error,
    },
    /// A file under `--templates DIR` whose name is none of `allowed`.
    UnknownOverride {
        path: PathBuf,
        allowed: Vec<String>,
    },
    /// The templates, embedded and overridden, do not parse together.
    Load(tera::Error),
    Render {
        name: String,
        error: tera::Error,
    },
    /// A user's template (an application's config file) does not parse.
    UserParse {
        file: String,
        error: tera::Error,
    },
    UserRender {
        file: String,
        error: tera::Error,
    },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::ReadOverride { path, error } => {
                write!(
                    f,
                    "cannot read template override {}: {error}",
                    path.display()
                )
            }
            TemplateError::NotADirectory(dir) => {
                write!(f, "--templates {}: not a directory", dir.display())
            }
            TemplateError::ReadDir { dir, error } => {
                write!(f, "cannot read {}: {error}", dir.display())
            }
            TemplateError::UnknownOverride { path, allowed } => write!(
                f,
                "template override {} matches no template; allowed names: {}",
                path.display(),
                allowed.join(", ")
            ),
            TemplateError::Load(e) => write!(f, "templates: {}", error_chain(e)),
            TemplateError::Render { name, error } => {
                write!(f, "template {name}: {}", error_chain(error))
            }
            TemplateError::UserParse { file, error } => write!(
                f,
                "the template {file} does not parse: {}",
                error_chain(error)
            ),
            TemplateError::UserRender { file, error } => {
                write!(f, "the template {file}: {}", error_chain(error))
            }
        }
    }
}

impl std::error::Error for TemplateError {}

pub struct Templates {
    pub(crate) tera: Tera,
}

/// Names of the embedded templates, e.g. `nginx/site.conf`.
pub fn embedded_names() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![&EMBEDDED];
    while let Some(dir) = stack.pop() {
        for f in dir.files() {
            out.push(f.path().to_string_lossy().into_owned());
        }
        stack.extend(dir.dirs());
    }
    out.sort();
    out
}

impl Templates {
    /// The embedded templates, each replaced by `overrides/NAME` when that file exists. A file in
    /// `overrides` that matches no template is an error: a typo must not be silently ignored.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, TemplateError> {
        let names = embedded_names();
        let mut sources = Vec::new();
        for name in &names {
            let embedded = EMBEDDED
                .get_file(name)
                .and_then(|f| f.contents_utf8())
                .unwrap_or_default();
            let text = match overrides.map(|d| d.join(name)) {
                Some(p) if p.is_file() => std::fs::read_to_string(&p)
                    .map_err(|error| TemplateError::ReadOverride { path: p, error })?,
                _ => embedded.to_string(),
            };
            sources.push((name.clone(), text));
        }
        if let Some(dir) = overrides {
            check_overrides(dir, &names)?;
        }
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        register_filters(&mut tera);
        // All at once: a template may include another (tera resolves includes as it adds).
        tera.add_raw_templates(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .map_err(TemplateError::Load)?;
        Ok(Templates { tera })
    }

    pub fn render(&self, name: &str, ctx: &tera::Context) -> Result<String, TemplateError> {
        self.tera
            .render(name, ctx)
            .map_err(|error| TemplateError::Render {
                name: name.to_string(),
                error,
            })
    }
}

fn check_overrides(dir: &Path, names: &[String]) -> Result<(), TemplateError> {
    if !dir.is_dir() {
        return Err(TemplateError::NotADirectory(dir.to_path_buf()));
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|error| TemplateError::ReadDir {
            dir: d.clone(),
            error,
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                if !names.contains(&rel) {
                    return Err(TemplateError::UnknownOverride {
                        path: p,
                        allowed: names.to_vec(),
                    });
                }
            }
        }
    }
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// A user's template (an application's config file) on its own: filters registered, no HTML
/// escaping.
fn user_tera(file: &str, text: &str) -> Result<Tera, TemplateError> {
    let mut tera = Tera::new();
    tera.autoescape_on(Vec::<&str>::new());
    register_filters(&mut tera);
    tera.add_raw_template(file, text)
        .map_err(|error| TemplateError::UserParse {
            file: file.to_string(),
            error,
        })?;
    Ok(tera)
}

/// Parses a user's template, for the inventory's checks.
pub fn check_user_template(file: &str, text: &str) -> Result<(), TemplateError> {
    user_tera(file, text).map(|_| ())
}

/// Renders a user's template; a variable it names that the context lacks is an error naming it.
pub fn render_user_template(
    file: &str,
    text: &str,
    ctx: &tera::Context,
) -> Result<String, TemplateError> {
    user_tera(file, text)?
        .render(file, ctx)
        .map_err(|error| TemplateError::UserRender {
            file: file.to_string(),
            error,
        })
}

/// A filter's input as text; a value the context lacks is an error, not "" (tera passes an undefined
/// value to a filter as an empty string: a misspelt `{{ db.pasword | php_string }}` would write an
/// empty password).
fn text(v: &tera::Value) -> tera::TeraResult<String> {
    if v.is_undefined() {
        return Err(tera::Error::message(
            "a value given to an escaping filter is not defined (a misspelt name?)",
        ));
    }
    Ok(match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    })
}

fn register_filters(tera: &mut Tera) {
    tera.register_filter("json_string", |v: &tera::Value, _: Kwargs, _: &State| {
        text(v).map(|t| serde_json::Value::String(t).to_string())
    });
    tera.register_filter("sql_string", |v: &tera::Value, _: Kwargs, _: &State| {
        text(v).map(|t| sql_string(&t))
    });
    tera.register_filter("php_string", |v: &tera::Value, _: Kwargs, _: &State| {
        text(v).map(|t| php_string(&t))
    });
    tera.register_filter("shell_word", |v: &tera::Value, _: Kwargs, _: &State| {
        text(v).map(|t| shell_word(&t))
    });
    tera.register_filter("cnf_string", |v: &tera::Value, _: Kwargs, _: &State| {
        text(v).map(|t| crate::quote::cnf_string(&t))
    });
}

pub use crate::quote::{php_string, shell_word, sql_string};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_parses() {
        let t = Templates::load(None).unwrap();
        assert!(t.tera.get_template_names().count() >= 10);
    }

    #[test]
    fn an_override_that_matches_no_template_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("nginx")).unwrap();
        std::fs::write(dir.path().join("nginx/sitee.conf"), "x").unwrap();
        let err = Templates::load(Some(dir.path())).err().unwrap();
        assert!(
            matches!(&err, TemplateError::UnknownOverride { path, .. } if path.ends_with("nginx/sitee.conf")),
            "{err:?}"
        );
        assert!(err.to_string().contains("matches no template"), "{err}");
    }
}
