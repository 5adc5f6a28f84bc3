//! The inventory file as written: serde types that mirror the TOML one to one.
//!
//! Every field that gets validated later is `Spanned`, so a validation error can point at the exact
//! line and column of the value the user wrote. Unknown keys are rejected by serde itself.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    pub site: RawSite,
    pub database: RawDatabase,
    pub dns: RawDns,
    #[serde(default)]
    pub hosts: Vec<RawHost>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub domain: Spanned<String>,
    #[serde(default)]
    pub server_names: Option<Spanned<Vec<Spanned<String>>>>,
    pub stack: Spanned<String>,
    #[serde(default)]
    pub document_root: Option<Spanned<String>>,
    #[serde(default)]
    pub app_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub php_version: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub name: Spanned<String>,
    pub user: Spanned<String>,
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub replication_user: Option<Spanned<String>>,
    #[serde(default)]
    pub replication_password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub replication_password_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub ttl: Option<Spanned<i64>>,
    pub soa_contact: Spanned<String>,
    #[serde(default)]
    pub nameservers: Vec<Spanned<String>>,
    #[serde(default)]
    pub records: Vec<RawRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub value: Spanned<String>,
    #[serde(default)]
    pub ttl: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: Spanned<String>,
    pub public_address: Spanned<String>,
    #[serde(default)]
    pub private_address: Option<Spanned<String>>,
    pub roles: Spanned<Vec<Spanned<String>>>,
    pub ssh: RawSsh,
    /// Read only by the test lab (`tests/lab/lab`); accepted here so lab inventories stay valid.
    #[serde(default)]
    pub lab: Option<RawLab>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub address: Spanned<String>,
    #[serde(default)]
    pub port: Option<Spanned<i64>>,
    #[serde(default)]
    pub user: Option<Spanned<String>>,
    #[serde(default)]
    pub identity_file: Option<Spanned<String>>,
    #[serde(default)]
    pub known_hosts: Option<Spanned<String>>,
    #[serde(default)]
    pub connect_timeout: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLab {
    pub flavour: Spanned<String>,
}
