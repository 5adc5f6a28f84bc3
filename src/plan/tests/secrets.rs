//! Secrets in a plan: never in a diff, never in its JSON, not even hashed.

use super::*;

#[test]
fn secrets_never_reach_a_diff_or_the_json_not_even_hashed() {
    let mut f = converged();
    f.paths.insert(
        "/etc/provision/config.php".into(),
        PathFact::File {
            mode: 0o644,
            owner: "root".into(),
            group: "root".into(),
            content: Some(b"'password' => 'old-secret',\n".to_vec()),
        },
    );
    let p = plan(&f);
    let diff = p.changes[0].diff.as_deref().unwrap();
    assert!(
        !diff.contains("hunter2") && !diff.contains("old-secret"),
        "{diff}"
    );
    assert!(
        diff.contains("<secret database.password hidden>")
            && diff.contains("[line hidden: sensitive file]"),
        "{diff}"
    );
    let json = serde_json::to_string(&p).unwrap();
    for secret_content in [
        &b"'password' => 'old-secret',\n"[..],
        b"'password' => 'hunter2',\n",
    ] {
        assert!(!json.contains(&sha256_hex(secret_content)), "{json}");
    }
    assert!(!json.contains("hunter2") && !json.contains("old-secret"));
    assert!(json.contains("keyed:"), "{json}");
    // Only the PHP file changed: only the validator that reads it runs.
    let names: Vec<&str> = p.validators.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["php-lint"]);
}

/// A fresh EC P-256 key, PKCS#8 PEM without its trailing newline (as the inventory's is kept).
fn ec_key() -> String {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap())
        .unwrap()
        .trim_end()
        .to_string()
}

fn key_lines(pem: &str) -> Vec<&str> {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

#[test]
fn a_provided_tls_key_reaches_no_diff_on_either_side() {
    let (old_key, key) = (ec_key(), ec_key());
    let mut s = Secrets::default();
    s.insert(
        SecretKey::TlsKey(crate::secret::SiteRef::ONE),
        Secret::new(key.clone(), "test".into()),
    );
    let path = "/etc/nginx/tls/foobar.com.pem";
    let cert =
        |body: &str| format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
    let new = format!("{key}\n{}", cert("NEWCERT"));
    // The host has the same key with another certificate, an earlier key, or nothing; the
    // redactor knows the inventory's key, or (a key from elsewhere) none.
    for old in [
        format!("{key}\n{}", cert("OLDCERT")),
        format!("{old_key}\n{}", cert("OLDCERT")),
        String::new(),
    ] {
        for r in [s.redactor(), Redactor::default()] {
            let d = diff(path, old.as_bytes(), new.as_bytes(), true, &r);
            for l in key_lines(&key).into_iter().chain(key_lines(&old_key)) {
                assert!(!d.contains(l), "{d}");
            }
            assert!(
                d.contains("+NEWCERT"),
                "the certificate's change shows: {d}"
            );
        }
    }
    // The same key on both sides is no change.
    let d = diff(
        path,
        format!("{key}\n{}", cert("OLDCERT")).as_bytes(),
        new.as_bytes(),
        true,
        &s.redactor(),
    );
    assert!(
        d.contains(" <secret site.tls.key hidden>") && !d.contains("+<secret"),
        "{d}"
    );
}
