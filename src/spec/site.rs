//! `[site]`: the domain and the names it answers to, the stack, the document root and the
//! application's files.

use super::check::Checker;
use super::{App, AppFile, Site, Stack};
use crate::error::shown;
use crate::inventory::{RawSite, STACKS};
use crate::names::*;
use toml::Spanned;

impl Checker<'_> {
    pub(super) fn site(&mut self, s: &RawSite) -> Option<Site> {
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
            Some(d) => self.app_dir(d),
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

    fn app_dir(&mut self, d: &Spanned<String>) -> Option<App> {
        let rel = self.check(d, "site.app_dir", parse_local_path)?;
        let dir = self.local_path(&rel);
        let files = match self.sources.read_tree(&dir) {
            Ok(f) => f,
            Err(e) => {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "cannot read the application directory {}: {e}",
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
        for (path, content, executable) in files {
            if parse_host_path(&format!("/{path}")).is_err() {
                self.fail(
                    d.span(),
                    "site.app_dir",
                    format!(
                        "file {} in {}: allowed: names of letters, digits, '.', '_' and '-'",
                        shown(&path),
                        dir.display()
                    ),
                );
                continue;
            }
            out.push(AppFile {
                path,
                content,
                executable,
            });
        }
        Some(App::Files(out))
    }
}
