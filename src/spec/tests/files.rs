//! Files the inventory names: password files read with a cap and a bounded wait, and an application
//! directory that must not carry secrets, SSH keys or the inventory onto the web.

use super::*;
use crate::spec::sources::read_tree;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn tree_file(path: &str, real: &str) -> TreeFile {
    TreeFile {
        path: path.into(),
        key: FileKey {
            real: PathBuf::from(real),
            inode: None,
        },
        content: b"<?php echo 1;\n".to_vec(),
        executable: false,
    }
}

/// `GOOD` with its password in `secrets/db` and `app_dir = "."`, the directory holding `files`.
fn with_app_dir(files: Vec<TreeFile>) -> Result<Spec, SpecErrors> {
    let mut f = Fake::default();
    f.files
        .insert(PathBuf::from("./secrets/db"), b"pw\n".to_vec());
    f.trees.insert(PathBuf::from("."), files);
    let text = GOOD
        .replace(
            r#"password_env = "DB_PW""#,
            r#"password_file = "secrets/db""#,
        )
        .replace("stack = \"lemp\"", "stack = \"lemp\"\napp_dir = \".\"");
    Spec::parse(&text, Path::new("inv.toml"), &f)
}

#[test]
fn an_app_dir_holding_the_password_file_is_refused() {
    let errs = with_app_dir(vec![
        tree_file("index.php", "./index.php"),
        tree_file("secrets/db", "./secrets/db"),
    ])
    .unwrap_err()
    .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(
        errs[0].to_string(),
        "inv.toml:5:11: site.app_dir: the application directory . contains the password file \
         ./secrets/db (database.password_file), as \"secrets/db\"; allowed: a directory that holds \
         only the application, since all of it is served on the web (move the file out, or point \
         app_dir at a subdirectory)"
    );
}

#[test]
fn a_symlink_to_the_password_file_is_refused_whatever_its_name() {
    let errs = with_app_dir(vec![tree_file("public/config.txt", "./secrets/db")])
        .unwrap_err()
        .0;
    assert!(
        errs[0]
            .message
            .contains("contains the password file ./secrets/db (database.password_file), as \"public/config.txt\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn the_inventory_inside_the_app_dir_is_refused() {
    let errs = with_app_dir(vec![
        tree_file("index.php", "./index.php"),
        tree_file("inv.toml", "inv.toml"),
    ])
    .unwrap_err()
    .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0]
            .message
            .contains("contains the inventory file inv.toml, as \"inv.toml\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn an_ssh_key_inside_the_app_dir_is_refused() {
    let mut f = fake();
    f.trees.insert(
        PathBuf::from("./app"),
        vec![
            tree_file("index.php", "./app/index.php"),
            tree_file("id", "./app/id"),
        ],
    );
    let text = GOOD
        .replace("stack = \"lemp\"", "stack = \"lemp\"\napp_dir = \"app\"")
        .replace("port = 22", "port = 22\nidentity_file = \"app/id\"");
    let errs = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap_err().0;
    assert!(
        errs[0]
            .message
            .contains("contains the SSH key ./app/id (hosts[0].ssh.identity_file), as \"id\""),
        "{}",
        errs[0].message
    );
}

#[test]
fn an_app_dir_of_application_files_only_is_deployed() {
    let s = with_app_dir(vec![
        tree_file("index.php", "./index.php"),
        tree_file("lib/a.php", "./lib/a.php"),
    ])
    .unwrap();
    match &s.sites[0].app {
        App::Files(files) => {
            let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(paths, ["index.php", "lib/a.php"]);
        }
        App::Demo => panic!("the demo app instead of app_dir"),
    }
}

#[test]
fn a_hard_link_to_the_password_file_is_recognised_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("app")).unwrap();
    std::fs::write(d.join("app/index.php"), "<?php echo 1;\n").unwrap();
    std::fs::write(d.join("pw"), "secret-value\n").unwrap();
    std::fs::hard_link(d.join("pw"), d.join("app/notes.txt")).unwrap();
    let text = GOOD
        .replace(r#"password_env = "DB_PW""#, r#"password_file = "pw""#)
        .replace("stack = \"lemp\"", "stack = \"lemp\"\napp_dir = \"app\"");
    let errs = Spec::parse(&text, &d.join("inv.toml"), &SystemSources)
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let msg = errs[0].to_string();
    assert!(
        msg.contains("(database.password_file), as \"notes.txt\""),
        "{msg}"
    );
    assert!(!msg.contains("secret-value"), "{msg}");
}

#[test]
fn the_tree_follows_symlinks_inside_and_refuses_those_leading_out() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("lib")).unwrap();
    std::fs::write(app.join("lib/a.php"), "a").unwrap();
    std::os::unix::fs::symlink("lib/a.php", app.join("b.php")).unwrap();
    std::os::unix::fs::symlink("lib", app.join("inc")).unwrap();
    let files = read_tree(&app).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["b.php", "inc/a.php", "lib/a.php"]);
    let real = std::fs::canonicalize(app.join("lib/a.php")).unwrap();
    assert!(files.iter().all(|f| f.key.real == real), "{files:#?}");

    std::fs::write(dir.path().join("outside"), "x").unwrap();
    std::os::unix::fs::symlink("../outside", app.join("out")).unwrap();
    let e = read_tree(&app).unwrap_err().to_string();
    assert!(
        e.starts_with("out is a symlink to ") && e.contains("outside the directory; allowed:"),
        "{e}"
    );
}

#[test]
fn the_tree_refuses_symlink_loops_and_dangling_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("a")).unwrap();
    std::fs::create_dir_all(app.join("b")).unwrap();
    std::os::unix::fs::symlink("../b", app.join("a/to-b")).unwrap();
    std::os::unix::fs::symlink("../a", app.join("b/to-a")).unwrap();
    let e = read_tree(&app).unwrap_err().to_string();
    assert!(e.contains("(a loop)"), "{e}");

    let app2 = dir.path().join("app2");
    std::fs::create_dir_all(&app2).unwrap();
    std::os::unix::fs::symlink("missing.php", app2.join("x.php")).unwrap();
    let e = read_tree(&app2).unwrap_err().to_string();
    assert!(
        e.starts_with("x.php is a symlink that does not resolve to a file"),
        "{e}"
    );
}

#[test]
fn the_tree_skips_fifos_instead_of_blocking_on_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.php"), "x").unwrap();
    mkfifo(&dir.path().join("pipe"));
    let files = read_tree(dir.path()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, "index.php");
}

#[test]
fn an_endless_device_is_read_only_up_to_the_cap() {
    let bytes = read_capped(Path::new("/dev/zero"), SECRET_FILE_LIMIT, FIFO_WAIT).unwrap();
    assert_eq!(bytes.len(), SECRET_FILE_LIMIT + 1);
}

#[test]
fn a_password_file_longer_than_the_cap_is_refused() {
    let mut f = Fake::default();
    f.files
        .insert(PathBuf::from("./pw"), vec![b'x'; SECRET_FILE_LIMIT * 2]);
    let text = GOOD.replace(r#"password_env = "DB_PW""#, r#"password_file = "pw""#);
    let errs = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap_err().0;
    assert_eq!(
        errs[0].message,
        "file ./pw is longer than 4096 bytes; allowed: a file holding only the password (at most 512 bytes)"
    );
}

#[test]
fn a_fifo_nobody_writes_to_is_given_up_on_after_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pw");
    mkfifo(&fifo);
    let started = Instant::now();
    let e = read_capped(&fifo, SECRET_FILE_LIMIT, Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert!(e.to_string().contains("within 0.3 s"), "{e}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_fifo_whose_writer_comes_late_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pw");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            w.write_all(b"from-a-pass").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            w.write_all(b"word-manager\n").unwrap();
        })
    };
    let bytes = read_capped(&fifo, SECRET_FILE_LIMIT, Duration::from_secs(10)).unwrap();
    writer.join().unwrap();
    assert_eq!(bytes, b"from-a-password-manager\n");
}

#[test]
fn a_fifo_that_never_ends_is_cut_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pw");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            // Writes until the reader is gone (EPIPE: Rust ignores SIGPIPE).
            while w.write_all(&[b'y'; 1024]).is_ok() {}
        })
    };
    let bytes = read_capped(&fifo, SECRET_FILE_LIMIT, Duration::from_secs(10)).unwrap();
    assert_eq!(bytes.len(), SECRET_FILE_LIMIT + 1);
    writer.join().unwrap();
}

#[test]
fn a_password_file_under_the_home_directory_is_found_there() {
    let mut f = Fake::default();
    f.env.insert("HOME".into(), "/home/u".into());
    f.files
        .insert(PathBuf::from("/home/u/.db-pw"), b"pw\n".to_vec());
    let text = GOOD.replace(r#"password_env = "DB_PW""#, r#"password_file = "~/.db-pw""#);
    let s = Spec::parse(&text, Path::new("inv.toml"), &f).unwrap();
    assert!(s
        .secrets
        .get(SecretKey::DatabasePassword(crate::secret::SiteRef::ONE))
        .unwrap()
        .is("pw"));
}
