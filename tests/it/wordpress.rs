//! End-to-end: WordPress (Debian's package, not written here) deployed by provision on a fresh
//! plain lab host with its wp-config.php rendered from the example inventory's template, then driven
//! over HTTP as a browser would: install, log in, write a post (the block editor's REST call, with
//! the nonce the admin pages hand out), read it back; then a new release keeps the post, the upload
//! directory and the login.

use crate::lab::*;
use crate::util::*;
use std::path::Path;
use std::process::Command;

const ADDR: &str = "198.18.0.46";
const PASSWORD: &str = "Provision-Test-Pass-2026!";

/// curl to the lab host only (`--resolve` pins the site's name to its address), with a cookie jar:
/// (status, body).
fn curl(jar: &Path, args: &[&str]) -> (u16, String) {
    let jar = jar.to_string_lossy();
    // WordPress's installer takes longer than a page: its own time limit (the last one counts).
    let mut all = vec![
        "--max-time",
        "60",
        "-c",
        &*jar,
        "-b",
        &*jar,
        "-w",
        "\n%{http_code}",
    ];
    all.extend_from_slice(args);
    let text = crate::lab::curl(ADDR, &all);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

const SITE: &str = "https://www.foobar.com";

fn with_wordpress(inv: &Path, source: &Path) {
    let text = std::fs::read_to_string(inv).unwrap();
    let example = root().join("inventories/wordpress");
    let app = format!(
        "\n[site.app]\nsource = \"{}\"\nextensions = [\"mysqli\", \"gd\", \"intl\", \"mbstring\", \"xml\", \"zip\", \"curl\"]\n\
         shared = [\"wp-content/uploads\"]\n[site.app.php]\nmemory_limit = \"256M\"\n\
         [[site.app.config]]\ntemplate = \"{}\"\npath = \"wp-config.php\"\n\
         [site.health_check]\npath = \"/wp-admin/install.php\"\nstatus = 200\nexpect = \"WordPress\"\n",
        source.display(),
        example.join("wp-config.php.tera").display(),
    );
    std::fs::write(inv, text + &app).unwrap();
}

#[test]
#[ignore = "needs the lab: run tests/run"]
fn lab_wordpress_installed_and_driven_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = Command::new(root().join("tests/apps/wordpress/prepare"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        prepared.status.success(),
        "{}",
        String::from_utf8_lossy(&prepared.stderr)
    );
    let source = dir.path().join("wordpress");
    let inv = own_host(dir.path(), "e2e-wp", ADDR, "plain", true);
    with_wordpress(&inv, &source);
    let i = inv.to_string_lossy().into_owned();
    let done = Run::new(&["apply", "-i", &i]).output().status(0);
    assert_no_secret(&done);
    let jar = dir.path().join("cookies");

    // Install, as the installer's form does.
    let (status, body) = curl(
        &jar,
        &[
            &format!("{SITE}/wp-admin/install.php?step=2"),
            "--data-urlencode",
            "weblog_title=Provisioned",
            "--data-urlencode",
            "user_name=admin",
            "--data-urlencode",
            &format!("admin_password={PASSWORD}"),
            "--data-urlencode",
            &format!("admin_password2={PASSWORD}"),
            "--data-urlencode",
            "admin_email=admin@foobar.com",
            "--data-urlencode",
            "blog_public=0",
            "--data-urlencode",
            "Submit=Install WordPress",
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Success!"), "{body}");

    // Log in: the login form, its test cookie, then the post.
    curl(&jar, &[&format!("{SITE}/wp-login.php")]);
    let (status, body) = curl(
        &jar,
        &[
            &format!("{SITE}/wp-login.php"),
            "--data-urlencode",
            "log=admin",
            "--data-urlencode",
            &format!("pwd={PASSWORD}"),
            "--data-urlencode",
            "wp-submit=Log In",
            "--data-urlencode",
            &format!("redirect_to={SITE}/wp-admin/"),
            "--data-urlencode",
            "testcookie=1",
        ],
    );
    assert_eq!(status, 302, "login refused: {body}");
    let (status, body) = curl(&jar, &[&format!("{SITE}/wp-admin/")]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Dashboard"), "{body}");

    // Write a post as the block editor does: the REST API, with the nonce of the session.
    let (status, nonce) = curl(
        &jar,
        &[&format!("{SITE}/wp-admin/admin-ajax.php?action=rest-nonce")],
    );
    assert_eq!(status, 200, "{nonce}");
    let (status, body) = curl(
        &jar,
        &[
            &format!("{SITE}/index.php?rest_route=/wp/v2/posts"),
            "-H",
            &format!("X-WP-Nonce: {}", nonce.trim()),
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"title":"Written through provision","content":"A row in MariaDB, over HTTP.","status":"publish"}"#,
        ],
    );
    assert_eq!(status, 201, "{body}");
    let id: String = body
        .split("\"id\":")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();

    // Read it back, as any visitor (no cookies).
    let anon = dir.path().join("anon");
    let read = |jar: &Path| {
        curl(
            jar,
            &[&format!("{SITE}/index.php?rest_route=/wp/v2/posts/{id}")],
        )
    };
    let (status, body) = read(&anon);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Written through provision"), "{body}");

    // Converged: nothing to do.
    let done = Run::new(&["apply", "-i", &i]).output().status(0);
    assert!(done.stdout().contains("no changes"), "{}", done.stdout());

    // A new release (a must-use plugin added): the post, the login and the uploads stay.
    ssh(
        ADDR,
        "echo kept > /var/www/foobar.com/shared/wp-content/uploads/kept.txt",
    );
    let mu = source.join("wp-content/mu-plugins");
    std::fs::create_dir_all(&mu).unwrap();
    std::fs::write(
        mu.join("provisioned.php"),
        "<?php\nadd_action('wp_head', function () { echo \"<meta name=\\\"provisioned\\\" content=\\\"yes\\\">\\n\"; });\n",
    )
    .unwrap();
    let done = Run::new(&["plan", "-i", &i]).output().status(2);
    assert!(done.stdout().contains("1 of "), "{}", done.stdout());
    Run::new(&["apply", "-i", &i]).output().status(0);
    let (status, body) = read(&anon);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Written through provision"), "{body}");
    let (status, body) = curl(&jar, &[&format!("{SITE}/wp-admin/")]);
    assert_eq!(
        status, 200,
        "the login did not survive the new release: {body}"
    );
    let (status, body) = curl(&anon, &[&format!("{SITE}/wp-content/uploads/kept.txt")]);
    assert_eq!((status, body.trim()), (200, "kept"));
    lab(&["down", &i]);
}
