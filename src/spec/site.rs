//! `[site]`: the domain and the names it answers to, the stack, the document root and the
//! application's files.

use super::check::{Checker, Protected};
use super::{App, AppFile, Site, Stack};
use crate::error::shown;
use crate::inventory::{RawSite, STACKS};
use crate::names::*;
use toml::Spanned;

impl Checker<'_> {
    pub(super) fn site(&mut self, s: &RawSite, protected: &[Protected]) -> Option<Site> {
        let domain = self.check(&s.domain, "site.domain", DomainName::parse_zone);
        let server_names = match &s.server_names {
            None => Some(vec!["www".to_string()]),
            Some(list) if list.get_ref().is_empty() => {
                self.fail(
                    list.span(),
                    "site.server_names",
                    "found an empty list; allowed: one or more names like \"www\" or \"@\"".into(),
                );
                None
            }
            Some(list) => {
                let mut names = Vec::new();
                let mut ok = true;
                for (i, n) in list.get_ref().iter().enumerate() {
                    match self.check(n, &format!("site.server_names[{i}]"), parse_relative_name) {
                        Some(v) if names.contains(&v) => {
                            self.fail(
                                n.span(),
                                &format!("site.server_names[{i}]"),
                                format!("found {} twice; allowed: each name once", shown(&v)),
                            );
                            ok = false;
                        }
                        Some(v) => names.push(v),
                        None => ok = false,
                    }
                }
                ok.then_some(names)
            }
        };
        let stack = self.check(&s.stack, "site.stack", |v| {
            Stack::ALL
                .iter()
                .find(|(n, _)| *n == v)
                .map(|(_, s)| *s)
                .ok_or_else(|| STACKS.to_string())
        });
        let document_root = match (&s.document_root, &domain) {
            (Some(d), _) => self.check(d, "site.document_root", parse_host_path),
            (None, Some(dom)) => Some(format!("/var/www/{dom}")),
            (None, None) => None,
        };
        let php_version = match &s.php_version {
            Some(v) => self.check(v, "site.php_version", parse_php_version),
            None => Some("8.2".to_string()),
        };
        let app = match &s.app_dir {
            None => Some(App::Demo),
            Some(d) => self.app_dir(d, protected),
        };
        Some(Site {
            domain: domain?,
            server_names: server_names?,
            stack: stack?,
            document_root: document_root?,
            app: app?,
            php_version: php_version?,
        })
    }

    /// Reads the application's files. Everything in the directory is deployed into the document
    /// root and served to the web, so a directory that also holds a file the inventory names (a
    /// password file, an SSH key, the inventory itself, e.g. with `app_dir = "."`) is refused rather
    /// than silently filtered: the user has to separate the application from its operations files.
    fn app_dir(&mut self, d: &Spanned<String>, protected: &[Protected]) -> Option<App> {
        let rel = self.check(d, "site.app_dir", parse_local_path)?;
        let dir = self.opened_path(&rel);
        let files = match self.sources.read_tree(&dir) {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "cannot use the application directory {}: {e}",
                        dir.display()
                    ),
                );
                return None;
            }
        };
        if files.is_empty() {
            self.fail(
                d.span(),
                "site.app_dir",
                format!("the application directory {} has no files", dir.display()),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for f in files {
            if let Some(p) = protected.iter().find(|p| p.key.same_file(&f.key)) {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "the application directory {} contains {}, as {}; allowed: a directory that holds only the application, since all of it is served on the web (move the file out, or point app_dir at a subdirectory)",
                        dir.display(),
                        p.what,
                        shown(&f.path)
                    ),
                );
                ok = false;
                continue;
            }
            if parse_host_path(&format!("/{}", f.path)).is_err() {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "found the file {} in {}; allowed: names of letters, digits, '.', '_' and '-'",
                        shown(&f.path),
                        dir.display()
                    ),
                );
                ok = false;
                continue;
            }
            out.push(AppFile {
                path: f.path,
                content: f.content,
                executable: f.executable,
            });
        }
        ok.then_some(App::Files(out))
    }
}
