//! Edits of the inventory that provision itself makes, as text: only the values it changes are
//! replaced, at the spans the parser reported, so the user's comments, order and layout stay as
//! they wrote them (the file is usually under version control, and the diff must be one line per
//! change).

use super::{reader, syntax, Sources, Spec};
use crate::error::{SourceMap, SpecErrors};
use crate::inventory::RawInventory;
use std::path::Path;

/// The inventory text with `replica`'s role `db-replica` made `db`, and the current primary's `db`
/// made `db-replica` (a switchover, `provision promote`). The result is validated like any
/// inventory, and must name `replica` as the primary.
pub fn swap_primary(
    text: &str,
    path: &Path,
    replica: &str,
    sources: &dyn Sources,
) -> Result<String, SpecErrors> {
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let map = SourceMap::new(path, body);
    let tree = syntax::parse(&map).map_err(SpecErrors)?;
    let mut r = reader::Reader::new(&map);
    let raw = match RawInventory::read(&mut r, reader::Table::root(&tree)) {
        Some(raw) if r.errors.is_empty() => raw,
        _ => return Err(SpecErrors(r.errors)),
    };
    // (span, new literal) of every role to rewrite.
    let mut edits = Vec::new();
    for h in &raw.hosts {
        let (from, to) = if h.name.get_ref() == replica {
            ("db-replica", "\"db\"")
        } else {
            ("db", "\"db-replica\"")
        };
        edits.extend(
            h.roles
                .get_ref()
                .iter()
                .filter(|role| role.get_ref() == from)
                .map(|role| (role.span(), to)),
        );
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = body.to_string();
    for (span, to) in edits {
        out.replace_range(span, to);
    }
    let out = format!("{bom}{out}");
    let spec = Spec::parse(&out, path, sources)?;
    if spec.db_primary().name == replica {
        Ok(out)
    } else {
        Err(SpecErrors::whole_file(path, format!(
            "could not make {replica} the database primary by editing its roles; edit the inventory by hand"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tests::Fake;
    use crate::spec::Role;

    fn fake() -> Fake {
        let mut f = Fake::default();
        f.env.insert("DB_PW".into(), "pw".into());
        f.env.insert("REPL_PW".into(), "rpw".into());
        f
    }

    const INV: &str = r#"# The shop.
[site]
domain = "shop.example"
stack = "lemp"

[database]
name = "shop"
user = "shop"
password_env = "DB_PW"
replication_user = "repl"
replication_password_env = "REPL_PW"

[dns]
soa_contact = "hostmaster@shop.example"

[[hosts]]
name = "web1"
public_address = "203.0.113.10"
roles = ["web", "app", "dns"]
ssh = { address = "203.0.113.10" }

[[hosts]]
name = "db1"
public_address = "203.0.113.20"
roles = [ "db" ]   # the primary
ssh = { address = "203.0.113.20" }

[[hosts]]
name = "db2"
public_address = "203.0.113.21"
roles = ['db-replica']
ssh = { address = "203.0.113.21" }

[[hosts]]
name = "db3"
public_address = "203.0.113.22"
roles = ["db-replica"]
ssh = { address = "203.0.113.22" }
"#;

    #[test]
    fn a_switchover_rewrites_only_the_two_role_values() {
        let path = Path::new("shop.toml");
        let out = swap_primary(INV, path, "db2", &fake()).unwrap();
        let expected = INV
            .replace(
                "roles = [ \"db\" ]   # the primary",
                "roles = [ \"db-replica\" ]   # the primary",
            )
            .replace("roles = ['db-replica']", "roles = [\"db\"]");
        assert_eq!(out, expected);
        let spec = Spec::parse(&out, path, &fake()).unwrap();
        assert_eq!(spec.db_primary().name, "db2");
        let replicas: Vec<&str> = spec
            .hosts_with(Role::DbReplica)
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(replicas, ["db1", "db3"]);
    }
}
