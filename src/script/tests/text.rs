//! The scripts' text: what each phase writes, in which order, and how `-v` shows it.

use super::*;

#[test]
fn the_library_keeps_its_state_in_the_state_directory() {
    assert!(LIBRARY.contains(&format!("\nP={}\n", crate::host_state::DIR)));
}

#[test]
fn the_library_tells_a_systemd_host_as_the_probe_does() {
    assert!(LIBRARY.contains(&format!("if {}; then", crate::facts::SYSTEMD_TEST)));
}

#[test]
fn every_script_is_valid_sh() {
    let (p, d) = plan();
    sh_n(&apply_script(&p, &d, &runner()));
    sh_n(&rollback_script(
        "G2",
        &["G2".into(), "G1".into()],
        "why",
        &runner(),
    ));
    sh_n(&mark_script("G2", "checked", Some("it's fine"), &runner()));
    sh_n(&wait_script(&runner()));
    sh_n(&runner_command_for_test());
}

fn runner_command_for_test() -> String {
    crate::script::runner()
}

#[test]
fn file_contents_travel_as_base64_and_are_left_out_of_the_display() {
    let (p, d) = plan();
    let script = apply_script(&p, &d, &runner());
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"'password' => 'hunter2'");
    assert!(!script.contains("hunter2"));
    assert!(script.contains(&b64));
    let shown = for_display(&script);
    assert!(!shown.contains(&b64));
    assert!(shown.contains("[file content left out]"));
    assert!(
        !shown.contains("clean_leftovers()"),
        "the library is not shown"
    );
}

#[test]
fn the_script_locks_checks_installs_validates_swaps_then_runs_handlers() {
    let (p, d) = plan();
    let s = apply_script(&p, &d, &runner());
    let at = |needle: &str| {
        s.rfind(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
    };
    assert!(at("take_lock 0") < at("expect_current G000001-x"));
    assert!(at("expect_current") < at("expect_absent"));
    assert!(at("expect_absent") < at("install_packages update nginx php8.2-fpm"));
    assert!(at("install_packages") < at("stage_copy /etc/php/8.2/fpm"));
    assert!(at("validate php-lint") < at("changing apply"));
    assert!(at("\"$P/pending\"") < at("swap_file 0"));
    assert!(
        at("swap_file 0 /etc/provision/sites/foobar.com/config.php 0640 root www-data")
            < at("handler 'start php8.2-fpm'")
    );
    assert!(
        at("handler 'start php8.2-fpm' start php8.2-fpm")
            < at("handler 'run db' run db 'mariadb < /x.sql'")
    );
    assert!(at("handler 'run db'") < at("finish 10"));
}

#[test]
fn a_new_release_travels_after_the_script_and_is_read_back_by_offset() {
    let (mut p, mut d) = plan();
    let (tree, old, delta) = with_a_release(&mut p, &mut d, None);
    let s = apply_script(&p, &d, &runner());
    sh_n(&s);
    let program = s.split_once(PROGRAM).unwrap().1;
    assert!(program.contains(&format!(
        "release_build /var/www/x {} {} \"$RUN.p0\" \"$RUN.p1\" \"$RUN.p2\" \"$RUN.p3\"",
        tree.id, old.id
    )));
    assert!(program.contains(&format!(
        "release_commit /var/www/x {} \"$RUN.p0\" 'php migrate.php'",
        tree.id
    )));
    // Each block, cut out by its offset and length as the host's `payload` does, decodes to what
    // was sent: the manifest, the archive (the changed file only), no removals, the sums.
    let blocks: Vec<Vec<u8>> = program
        .lines()
        .filter_map(|l| l.strip_prefix("payload "))
        .map(|l| {
            let f: Vec<usize> = l.split(' ').map(|n| n.parse().unwrap()).collect();
            let b64 = &s.as_bytes()[f[1] - 1..f[1] - 1 + f[2]];
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        })
        .collect();
    assert_eq!(blocks.len(), 4);
    assert_eq!(blocks[0], tree.manifest().as_bytes());
    assert_eq!(blocks[1], tree.archive(&delta.send).unwrap());
    assert!(blocks[2].is_empty());
    assert_eq!(
        String::from_utf8(blocks[3].clone()).unwrap(),
        format!(
            "{}  index.php\n",
            crate::render::manifest::sha256_hex(b"<?php echo 'v2';\n")
        )
    );
    // The data follows the program's end: the shell never reads it, and -v leaves it out.
    assert!(program.contains("exit 0\n# --- payload\n"));
    assert!(for_display(&s).ends_with("[release data left out]\n"));
}

#[test]
fn a_guarded_handler_arms_the_guard_before_it_runs() {
    let (mut p, mut d) = plan();
    let plain = apply_script(&p, &d, &runner());
    assert!(!plain.contains("guard_arm 60"));
    d.guarded.push(crate::desired::Guarded {
        handler: Handler::reload("ssh"),
        what: "sshd's new settings".into(),
    });
    p.steps.push(crate::plan::PlannedStep {
        handler: Handler::restart("ssh"),
        reason: "its drop-in changed".into(),
    });
    let script = apply_script(&p, &d, &runner());
    sh_n(&script);
    sh_n(&guard_program());
    let at = |needle: &str| script.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("changing apply") < at("guard_arm 60 \"$RUN.p0\""));
    assert!(at("guard_arm") < at("handler 'start php8.2-fpm'"));
}

#[test]
fn accounts_are_made_after_the_packages_and_before_anything_is_staged() {
    let (p, d) = with_an_account();
    let s = apply_script(&p, &d, &runner());
    sh_n(&s);
    let at = |needle: &str| {
        s.rfind(needle)
            .unwrap_or_else(|| panic!("no {needle:?} in\n{s}"))
    };
    assert!(at("install_packages") < at("ev_phase accounts"));
    assert!(
        at("ev_phase accounts")
            < at("account shop /var/www/shop '[provision] site shop.example.com'")
    );
    assert!(at("account shop") < at("ev_phase stage"));
    assert!(summary(&p).starts_with("2 package(s); 1 account(s); 1 path(s)"));
    // The library knows provision's accounts by the mark their GECOS starts with.
    assert!(LIBRARY.contains(&format!("\"{}\"*) return 0", crate::desired::Account::MARK)));
}
