//! `[site.app]`: the user's application and its `[[site.app.config]]` files.

use crate::spec::reader::{Bounds, Reader, Table};
use std::ops::Range;
use toml::Spanned;

/// `[site.app]`: the user's application and what it needs.
#[derive(Debug)]
pub struct RawApp {
    pub span: Range<usize>,
    pub source: Option<Spanned<String>>,
    pub git: Option<Spanned<String>>,
    pub git_ref: Option<Spanned<String>>,
    pub public: Option<Spanned<String>>,
    pub front_controller: Option<Spanned<String>>,
    pub extensions: Option<Spanned<Vec<Spanned<String>>>>,
    pub shared: Option<Spanned<Vec<Spanned<String>>>>,
    pub release_command: Option<Spanned<String>>,
    pub keep: Option<Spanned<i64>>,
    pub php: Vec<crate::spec::reader::UserEntry>,
    pub config: Vec<RawAppConfig>,
}

/// `[[site.app.config]]`: a file of the application rendered from the user's template.
#[derive(Debug)]
pub struct RawAppConfig {
    pub span: Range<usize>,
    pub template: Spanned<String>,
    pub path: Spanned<String>,
}

pub const KEEP_RELEASES: Bounds = Bounds { min: 2, max: 100 };

impl RawApp {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawApp> {
        let source = r.opt_str(
            &mut t,
            "source",
            "the application: a directory, or a .tar, .tar.gz or .tgz file, relative to the inventory's directory or absolute",
        );
        let git = r.opt_str(
            &mut t,
            "git",
            "a git repository on this machine, relative to the inventory's directory or absolute",
        );
        let git_ref = r.opt_str(
            &mut t,
            "ref",
            "a branch, tag or commit of the git repository, like \"v1.2\"",
        );
        let front_controller = r.opt_str(
            &mut t,
            "front_controller",
            "the PHP file that answers every path that is not a file, like \"index.php\"",
        );
        let public = r.opt_str(
            &mut t,
            "public",
            "the directory of the application served as the document root, like \"public\"",
        );
        let extensions = r.opt_str_list(&mut t, "extensions", "a PHP extension like \"intl\"");
        let shared = r.opt_str_list(
            &mut t,
            "shared",
            "a directory of the application kept across releases, like \"storage\"",
        );
        let release_command = r.opt_str(
            &mut t,
            "release_command",
            "a shell command run in each new release before it goes live",
        );
        let keep = r.opt_int(&mut t, "keep", KEEP_RELEASES);
        let php = r.opt_table(&mut t, "php", "a table of PHP settings: [site.app.php]");
        let config = r.table_list(
            &mut t,
            "config",
            "tables: [[site.app.config]] with template and path",
        );
        let span = t.span.clone();
        r.finish(t);
        let php = match php {
            Some(Some(p)) => r.str_map(p, "a PHP setting's value, like \"256M\""),
            Some(None) => Some(Vec::new()),
            None => None,
        };
        // A config table with a mistake is left out: its error is recorded in `r`.
        let config = config.map(|list| {
            list.into_iter()
                .filter_map(|c| RawAppConfig::read(r, c))
                .collect::<Vec<_>>()
        });
        Some(RawApp {
            span,
            source: source?,
            git: git?,
            git_ref: git_ref?,
            public: public?,
            front_controller: front_controller?,
            extensions: extensions?,
            shared: shared?,
            release_command: release_command?,
            keep: keep?,
            php: php?,
            config: config?,
        })
    }
}

impl RawAppConfig {
    fn read(r: &mut Reader, mut c: Table) -> Option<RawAppConfig> {
        let template = r.req_str(
            &mut c,
            "template",
            "the template file, relative to the inventory's directory or absolute",
        );
        let path = r.req_str(
            &mut c,
            "path",
            "where the file goes in the application, like \"wp-config.php\"",
        );
        let span = c.span.clone();
        r.finish(c);
        Some(RawAppConfig {
            span,
            template: template?,
            path: path?,
        })
    }
}
