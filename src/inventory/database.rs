//! `[database]` (or `[sites.database]`) and the `[replication]` account of the `[[sites]]` form.

use super::{ENV_NAME, LOCAL_PATH, SQL_IDENT};
use crate::spec::reader::{Reader, Table};
use std::ops::Range;
use toml::Spanned;

/// `[replication]`: the account replicas follow the primary with, for every site's database.
#[derive(Debug)]
pub struct RawReplication {
    pub span: Range<usize>,
    pub user: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
}

#[derive(Debug)]
pub struct RawDatabase {
    pub span: Range<usize>,
    pub name: Spanned<String>,
    pub user: Spanned<String>,
    pub password_env: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub replication_user: Option<Spanned<String>>,
    pub replication_password_env: Option<Spanned<String>>,
    pub replication_password_file: Option<Spanned<String>>,
}

impl RawReplication {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawReplication> {
        let user = r.opt_str(&mut t, "user", SQL_IDENT);
        let password_env = r.opt_str(&mut t, "password_env", ENV_NAME);
        let password_file = r.opt_str(&mut t, "password_file", LOCAL_PATH);
        let span = t.span.clone();
        r.finish(t);
        Some(RawReplication {
            span,
            user: user?,
            password_env: password_env?,
            password_file: password_file?,
        })
    }
}

impl RawDatabase {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawDatabase> {
        let name = r.req_str(&mut t, "name", SQL_IDENT);
        let user = r.req_str(&mut t, "user", SQL_IDENT);
        let password_env = r.opt_str(&mut t, "password_env", ENV_NAME);
        let password_file = r.opt_str(&mut t, "password_file", LOCAL_PATH);
        let replication_user = r.opt_str(&mut t, "replication_user", SQL_IDENT);
        let replication_password_env = r.opt_str(&mut t, "replication_password_env", ENV_NAME);
        let replication_password_file = r.opt_str(&mut t, "replication_password_file", LOCAL_PATH);
        let span = t.span.clone();
        r.finish(t);
        Some(RawDatabase {
            span,
            name: name?,
            user: user?,
            password_env: password_env?,
            password_file: password_file?,
            replication_user: replication_user?,
            replication_password_env: replication_password_env?,
            replication_password_file: replication_password_file?,
        })
    }
}
