//! One site: `[site]` or a `[[sites]]` table with its database and zone, its health check and
//! `[site.tls]` with `[site.tls.acme]`.

use super::{RawApp, RawDatabase, RawDns, LOCAL_PATH, RELATIVE_NAME};
use crate::spec::reader::{Bounds, Reader, Table};
use std::ops::Range;
use toml::Spanned;

/// One site with its database and zone: `[[sites]]` with `[sites.database]` and `[sites.dns]`,
/// or the one-site form's three tables.
#[derive(Debug)]
pub struct RawSiteDef {
    pub site: RawSite,
    pub database: RawDatabase,
    pub dns: RawDns,
}

#[derive(Debug)]
pub struct RawSite {
    /// Where the table starts, for problems of the table as a whole.
    pub span: Range<usize>,
    /// `[[sites]]` only: the site's short name (its Unix user, its pool); default from the domain.
    pub name: Option<Spanned<String>>,
    /// `[[sites]]` only: the web hosts that serve it; default every web host.
    pub hosts: Option<Spanned<Vec<Spanned<String>>>>,
    pub domain: Spanned<String>,
    pub server_names: Option<Spanned<Vec<Spanned<String>>>>,
    pub stack: Spanned<String>,
    pub document_root: Option<Spanned<String>>,
    pub app_dir: Option<Spanned<String>>,
    pub php_version: Option<Spanned<String>>,
    pub health_check: Option<RawHealthCheck>,
    pub app: Option<RawApp>,
    pub micro_cache: Option<Spanned<bool>>,
    pub tls: Option<RawTls>,
}

/// `[site.tls]`: HTTPS, with the user's certificate or one the host makes.
#[derive(Debug)]
pub struct RawTls {
    pub span: Range<usize>,
    pub certificate: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub self_signed: Option<Spanned<bool>>,
    pub acme: Option<RawAcme>,
    pub hsts: Option<Spanned<bool>>,
}

/// `[site.tls.acme]`: a certificate from an ACME CA (Let's Encrypt by default), asked for and
/// renewed on the host.
#[derive(Debug)]
pub struct RawAcme {
    pub span: Range<usize>,
    pub contact: Option<Spanned<String>>,
    pub directory: Option<Spanned<String>>,
    pub challenge: Option<Spanned<String>>,
    pub names: Option<Spanned<Vec<Spanned<String>>>>,
    pub ca_bundle: Option<Spanned<String>>,
    pub test_ca: Option<Spanned<bool>>,
}

/// `[site.health_check]`: how a request proves the application works.
#[derive(Debug)]
pub struct RawHealthCheck {
    pub path: Option<Spanned<String>>,
    pub status: Option<Spanned<i64>>,
    pub expect: Option<Spanned<String>>,
}

pub const HTTP_STATUS: Bounds = Bounds { min: 100, max: 599 };

impl RawSiteDef {
    /// One `[[sites]]` table: the site's keys, and its `database` and `dns` tables.
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawSiteDef> {
        let database = r.req_table(
            &mut t,
            "database",
            "a [sites.database] table with name, user and password_env or password_file",
        );
        let dns = r.req_table(&mut t, "dns", "a [sites.dns] table with soa_contact");
        let database = database.and_then(|d| RawDatabase::read(r, d));
        let dns = dns.and_then(|d| RawDns::read(r, d));
        let site = RawSite::read(r, t, true);
        Some(RawSiteDef {
            site: site?,
            database: database?,
            dns: dns?,
        })
    }
}

impl RawSite {
    /// `many`: a `[[sites]]` table, which also takes `name` and `hosts`.
    pub(super) fn read(r: &mut Reader, mut t: Table, many: bool) -> Option<RawSite> {
        let (name, hosts) = if many {
            (
                r.opt_str(
                    &mut t,
                    "name",
                    "the site's short name: lowercase letters, digits and '-', starting with a letter, like \"shop\"",
                ),
                r.opt_str_list(&mut t, "hosts", "the name of a host with the web role"),
            )
        } else {
            (Some(None), Some(None))
        };
        let domain = r.req_str(&mut t, "domain", "the site's DNS name, like \"foobar.com\"");
        let server_names = r.opt_str_list(&mut t, "server_names", RELATIVE_NAME);
        let stack = r.req_str(&mut t, "stack", &crate::spec::Stack::allowed());
        let document_root = r.opt_str(
            &mut t,
            "document_root",
            "an absolute path like \"/var/www/foobar.com\"",
        );
        let app_dir = r.opt_str(&mut t, "app_dir", LOCAL_PATH);
        let php_version = r.opt_str(
            &mut t,
            "php_version",
            "a PHP version in quotes, like \"8.4\"",
        );
        let health_check = r.opt_table(
            &mut t,
            "health_check",
            "a table: [site.health_check] with path, status, expect",
        );
        let micro_cache = r.opt_bool(&mut t, "micro_cache");
        let tls = r.opt_table(
            &mut t,
            "tls",
            "a table: [site.tls] with self_signed = true, certificate and key, or acme = { contact = \"...\" }; and hsts",
        );
        let app = r.opt_table(
            &mut t,
            "app",
            "a table: [site.app] with source (or git and ref), public, front_controller, extensions, shared, release_command, keep, [site.app.php], [[site.app.config]]",
        );
        let span = t.span.clone();
        r.finish(t);
        let health_check = health_check.map(|h| h.and_then(|h| RawHealthCheck::read(r, h)));
        let app = app.map(|a| a.and_then(|a| RawApp::read(r, a)));
        let tls = tls.map(|a| a.and_then(|a| RawTls::read(r, a)));
        Some(RawSite {
            span,
            name: name?,
            hosts: hosts?,
            domain: domain?,
            server_names: server_names?,
            stack: stack?,
            document_root: document_root?,
            app_dir: app_dir?,
            php_version: php_version?,
            health_check: health_check?,
            app: app?,
            micro_cache: micro_cache?,
            tls: tls?,
        })
    }
}

impl RawTls {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawTls> {
        let certificate = r.opt_str(
            &mut t,
            "certificate",
            "a PEM file with the site's certificate, then its intermediates; relative to the inventory's directory or absolute",
        );
        let key = r.opt_str(
            &mut t,
            "key",
            "a PEM file with the certificate's private key, not encrypted; relative to the inventory's directory or absolute",
        );
        let self_signed = r.opt_bool(&mut t, "self_signed");
        let acme = r.opt_table(
            &mut t,
            "acme",
            "a table: acme = { contact = \"you@example.com\" } with directory, challenge, names, ca_bundle, test_ca",
        );
        let hsts = r.opt_bool(&mut t, "hsts");
        let span = t.span.clone();
        r.finish(t);
        let acme = acme.map(|a| a.and_then(|a| RawAcme::read(r, a)));
        Some(RawTls {
            span,
            certificate: certificate?,
            key: key?,
            self_signed: self_signed?,
            acme: acme?,
            hsts: hsts?,
        })
    }
}

impl RawAcme {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawAcme> {
        let contact = r.opt_str(
            &mut t,
            "contact",
            "an e-mail address the CA writes to about the certificates",
        );
        let directory = r.opt_str(
            &mut t,
            "directory",
            "the CA's directory URL (https://...), or \"letsencrypt\" (the default) or \"staging\"",
        );
        let challenge = r.opt_str(&mut t, "challenge", "\"http-01\" or \"dns-01\"");
        let names = r.opt_str_list(
            &mut t,
            "names",
            "a name of the site (site.domain or one of site.server_names)",
        );
        let ca_bundle = r.opt_str(
            &mut t,
            "ca_bundle",
            "a PEM file with the roots the CA's directory URL is served with (a private or test CA); relative to the inventory's directory or absolute",
        );
        let test_ca = r.opt_bool(&mut t, "test_ca");
        let span = t.span.clone();
        r.finish(t);
        Some(RawAcme {
            span,
            contact: contact?,
            directory: directory?,
            challenge: challenge?,
            names: names?,
            ca_bundle: ca_bundle?,
            test_ca: test_ca?,
        })
    }
}

impl RawHealthCheck {
    pub(super) fn read(r: &mut Reader, mut t: Table) -> Option<RawHealthCheck> {
        let path = r.opt_str(&mut t, "path", "a URL path like \"/health\"");
        let status = r.opt_int(&mut t, "status", HTTP_STATUS);
        let expect = r.opt_str(&mut t, "expect", "a text the page must contain");
        r.finish(t);
        Some(RawHealthCheck {
            path: path?,
            status: status?,
            expect: expect?,
        })
    }
}
