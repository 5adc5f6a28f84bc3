//! Every example in the README is run or checked (issue 26), read from the README itself, so an
//! edit to it changes what is tested: the shell blocks as one session in a directory laid out like
//! this repository, the TOML blocks by the inventory reader, the command synopsis against each
//! command's `--help`, and the inventory error it shows reproduced. Nothing here contacts a host:
//! a command that needs one is checked for its flags and its inventory only.

use crate::util::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const README: &str = include_str!("../../README.md");

/// A fenced block of the README: its first line's number (the fence) and its language tag.
struct Block {
    line: usize,
    lang: &'static str,
    text: String,
}

#[derive(PartialEq)]
enum Kind {
    Shell,
    Toml,
    Synopsis,
    Error,
}

impl Block {
    fn kind(&self) -> Kind {
        let mut lines = self.text.lines();
        match self.lang {
            "sh" => Kind::Shell,
            "toml" => Kind::Toml,
            "" if lines.all(|l| l.starts_with("error: ")) => Kind::Error,
            "" if self.text.starts_with("provision ") => Kind::Synopsis,
            _ => panic!(
                "README.md:{}: a block tests/it/readme.rs does not know how to check",
                self.line
            ),
        }
    }

    /// The block's lines with their line numbers in the README.
    fn lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.text
            .lines()
            .enumerate()
            .map(|(i, l)| (self.line + 1 + i, l))
    }
}

fn blocks() -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, l) in README.lines().enumerate() {
        match (open.take(), l.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    line: i + 1,
                    lang,
                    text: String::new(),
                })
            }
            (Some(b), Some("")) => out.push(b),
            (Some(mut b), _) => {
                b.text.push_str(l);
                b.text.push('\n');
                open = Some(b);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README.md: a fenced block is never closed");
    out
}

fn blocks_of(kind: Kind) -> Vec<Block> {
    let found: Vec<Block> = blocks().into_iter().filter(|b| b.kind() == kind).collect();
    assert!(!found.is_empty(), "the README has no block of this kind");
    found
}

/// A copy of `inventories/` at `dest` (without a prepared WordPress, which is not the
/// repository's), so that what the examples write stays out of the checkout.
fn example_tree(dest: &Path) {
    let from = root().join("inventories");
    let mut stack = vec![from.clone()];
    while let Some(d) = stack.pop() {
        let to = dest.join(d.strip_prefix(&from).unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p == from.join("wordpress/wordpress") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// An application directory standing in for one made elsewhere (WordPress from Debian's mirror).
fn stand_in_app(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("index.php"), "<?php echo 'WordPress';\n").unwrap();
}

/// Whether `help` lists `flag` as an option (`-i,`, `--out <FILE>`, `--json`).
fn lists(help: &str, flag: &str) -> bool {
    help.lines().any(|l| {
        l.split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == flag)
    })
}

/// Asserts a run exited 0, naming the README line it stands for.
fn succeeds(at: &str, done: Done) -> Done {
    assert_eq!(done.code(), 0, "{at}:\n{}{}", done.stdout(), done.stderr());
    done
}

fn assert_flags(at: &str, command: &str, flags: &[String]) {
    let help = succeeds(at, Run::new(&[command, "--help"]).output()).stdout();
    for f in flags {
        assert!(
            lists(&help, f),
            "{at}: provision {command} has no {f}:\n{help}"
        );
    }
}

/// The flags among a command line's words.
fn flags<S: AsRef<str>>(words: &[S]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.as_ref().trim_matches(|c| "[]|.".contains(c)))
        .filter(|w| w.len() > 1 && w.starts_with('-'))
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

/// A line's words as sh splits them (quotes, a comment), enough for the README's examples.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '#') if word.is_none() => break,
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    out.extend(word);
    out
}

/// Programs the README's shell blocks run that these tests do not, and why.
const NOT_RUN: &[(&str, &str)] = &[
    ("ssh-keygen", "makes the reader's own key"),
    ("ssh-copy-id", "logs in to the server"),
    ("ssh", "logs in to the server"),
    ("vagrant", "boots a VM"),
    ("tests/run", "the whole suite, as root, with the lab"),
];

/// provision's commands that need no host; any other is checked, not run.
const NO_HOST: &[&str] = &["init", "validate", "render", "man", "completions", "help"];

/// The README's shell blocks run in order, as a reader at the repository's top directory would:
/// `export` sets the environment, `cd` and `cp` act, `$EDITOR` leaves the file as it is.
struct Session {
    top: tempfile::TempDir,
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

impl Session {
    fn new() -> Session {
        let top = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(root()).unwrap() {
            let name = e.unwrap().file_name();
            match name.to_str().unwrap() {
                ".git" | "target" => {}
                "inventories" => example_tree(&top.path().join("inventories")),
                _ => {
                    std::os::unix::fs::symlink(root().join(&name), top.path().join(&name)).unwrap()
                }
            }
        }
        let cwd = top.path().to_path_buf();
        Session {
            top,
            cwd,
            env: Vec::new(),
        }
    }

    /// `/tmp/x` in an example is `x` under the session's own `tmp`.
    fn path(&self, word: &str) -> String {
        match word.strip_prefix("/tmp/") {
            Some(rest) => self.top.path().join("tmp").join(rest).display().to_string(),
            None => word.to_string(),
        }
    }

    fn provision<S: AsRef<str>>(&self, args: &[S]) -> Done {
        let mut run = Run::new(&[]).dir(&self.cwd);
        for a in args {
            run = run.arg(self.path(a.as_ref()));
        }
        for (k, v) in &self.env {
            run = run.env(k, v);
        }
        run.output()
    }

    fn line(&mut self, at: &str, words: &[String]) {
        let Some(program) = words.first() else { return };
        assert!(
            !words
                .iter()
                .any(|w| ["|", "&&", ";", ">", "<"].contains(&w.as_str())),
            "{at}: tests/it/readme.rs runs one command a line"
        );
        if program.contains('/') {
            let meta = std::fs::metadata(self.cwd.join(program))
                .unwrap_or_else(|e| panic!("{at}: {program}: {e}"));
            assert!(meta.permissions().mode() & 0o111 != 0, "{at}: {program}");
        }
        match program.as_str() {
            "provision" => self.command(at, &words[1..]),
            "cargo" => {
                let dashes = words.iter().position(|w| w == "--");
                assert!(words[1] == "run" && dashes.is_some(), "{at}: not cargo run");
                self.command(at, &words[dashes.unwrap() + 1..]);
            }
            "export" => {
                let (k, v) = words[1].split_once('=').unwrap();
                self.env.push((k.to_string(), v.to_string()));
            }
            "cd" => {
                self.cwd = match words[1].as_str() {
                    ".." => self.cwd.parent().unwrap().to_path_buf(),
                    dir => self.cwd.join(dir),
                }
            }
            "cp" => {
                let (to, from) = words[1..].split_last().unwrap();
                for f in from.iter().filter(|f| !f.starts_with('-')) {
                    let status = std::process::Command::new("cp")
                        .args(["-r", f, to])
                        .current_dir(&self.cwd)
                        .status()
                        .unwrap();
                    assert!(status.success(), "{at}: cp {f} {to}");
                }
            }
            "$EDITOR" => {}
            // It fetches WordPress from Debian's mirror: these tests contact nothing.
            "tests/apps/wordpress/prepare" => {
                stand_in_app(&self.cwd.join(&words[1]).join("wordpress"))
            }
            p if NOT_RUN.iter().any(|(n, _)| *n == p) => {}
            p => panic!("{at}: {p}: tests/it/readme.rs does not know how to run it"),
        }
    }

    /// Runs a command that needs no host, expecting success; checks any other one for its flags,
    /// and for an inventory that validates with the environment the README set up.
    fn command(&self, at: &str, args: &[String]) {
        let sub = args[0].as_str();
        if NO_HOST.contains(&sub) {
            succeeds(at, self.provision(args));
            return;
        }
        assert_flags(at, sub, &flags(args));
        let inventory = args.iter().position(|a| a == "-i").map(|i| &args[i + 1]);
        if let Some(inventory) = inventory {
            succeeds(at, self.provision(&["validate", "-i", inventory]));
        }
    }
}

#[test]
fn every_shell_example_runs_in_order_as_a_reader_would() {
    let mut session = Session::new();
    for b in blocks_of(Kind::Shell) {
        for (n, line) in b.lines() {
            session.line(&format!("README.md:{n}: {line}"), &words(line));
        }
    }
    // The files the text after the first example names.
    let spans = README.split('`').skip(1).step_by(2);
    let named: Vec<&str> = spans
        .filter(|s| s.starts_with("/tmp/") && !s.contains('<'))
        .collect();
    assert!(!named.is_empty());
    for path in named {
        assert!(
            Path::new(&session.path(path)).exists(),
            "README.md names {path}, which the examples do not write"
        );
    }
}

/// Makes the files and directories an inventory names that an example cannot ship: its password
/// files and application sources.
fn make_what_it_names(dir: &Path, value: &toml::Value) {
    let missing = |p: &str| Some(dir.join(p)).filter(|p| !p.exists());
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                match (k.as_str(), v.as_str().and_then(missing)) {
                    (k, Some(p)) if k.ends_with("password_file") => {
                        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                        std::fs::write(p, "example password\n").unwrap();
                    }
                    ("source", Some(p)) => stand_in_app(&p),
                    _ => make_what_it_names(dir, v),
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| make_what_it_names(dir, v)),
        _ => {}
    }
}

/// A TOML block with hosts is a whole inventory; one without, a part of one, added to the example
/// of several sites.
#[test]
fn every_toml_example_is_an_inventory_that_validates() {
    for b in blocks_of(Kind::Toml) {
        let table: toml::Table = b
            .text
            .parse()
            .unwrap_or_else(|e| panic!("README.md:{}: {e}", b.line));
        let text = if table.contains_key("hosts") {
            b.text.clone()
        } else if table.contains_key("site") {
            // A part of the one-site form's [site] (its [site.tls]): in the lemp example, in place
            // of that example's own.
            let lemp: String = std::fs::read_to_string(inventory("lemp.toml"))
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("tls = "))
                .map(|l| format!("{l}\n"))
                .collect();
            assert!(lemp.contains("\n[database]"));
            lemp.replacen("\n[database]", &format!("\n{}\n[database]", b.text), 1)
        } else {
            std::fs::read_to_string(inventory("sites.toml")).unwrap() + "\n" + &b.text
        };
        let dir = tempfile::tempdir().unwrap();
        example_tree(dir.path());
        make_what_it_names(dir.path(), &toml::Value::Table(text.parse().unwrap()));
        let path = dir.path().join("readme.toml");
        std::fs::write(&path, &text).unwrap();
        let done = Run::new(&["validate", "-i"]).arg(&path).output();
        succeeds(&format!("README.md:{}", b.line), done);
    }
}

/// The synopsis under "Commands": every flag it gives a command is one the command has, and every
/// command provision has is in it.
#[test]
fn the_command_synopsis_matches_each_commands_help() {
    for b in blocks_of(Kind::Synopsis) {
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        // The commands the line being read adds flags to.
        let mut adding: Vec<usize> = Vec::new();
        for (_, line) in b.lines() {
            let line = line.split('#').next().unwrap();
            if let Some(rest) = line.strip_prefix("provision ") {
                adding.clear();
                for part in rest.split(" / ") {
                    let w: Vec<&str> = part.split_whitespace().collect();
                    adding.push(commands.len());
                    commands.push((w[0].to_string(), flags(&w[1..])));
                }
            } else if let Some((names, rest)) = line
                .trim()
                .strip_prefix("common to ")
                .and_then(|r| r.split_once(':'))
            {
                adding = names
                    .split(", ")
                    .map(|n| commands.iter().position(|(c, _)| c == n).unwrap())
                    .collect();
                let more = flags(&rest.split_whitespace().collect::<Vec<_>>());
                adding
                    .iter()
                    .for_each(|&i| commands[i].1.extend(more.clone()));
            } else {
                let more = flags(&line.split_whitespace().collect::<Vec<_>>());
                adding
                    .iter()
                    .for_each(|&i| commands[i].1.extend(more.clone()));
            }
        }
        for (command, flags) in &commands {
            assert_flags(&format!("README.md:{}", b.line), command, flags);
        }
        let help = Run::new(&["--help"]).output().status(0).stdout();
        let listed = help
            .split("Commands:\n")
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next();
        for name in listed
            .unwrap()
            .lines()
            .filter_map(|l| l.split_whitespace().next())
        {
            assert!(
                name == "help" || commands.iter().any(|(c, _)| c == name),
                "README.md:{}: the synopsis leaves out provision {name}",
                b.line
            );
        }
    }
}

/// The error the README shows, from the inventory it implies: `inventories/lemp.toml` with the
/// key it names set to the value it shows, and as many leading comment lines left out as put that
/// key on the line it names.
#[test]
fn the_inventory_error_shown_is_the_one_provision_gives() {
    for b in blocks_of(Kind::Error) {
        for (n, line) in b.lines() {
            let shown = line.trim_end_matches("...").trim_end();
            let at = format!("README.md:{n}");
            let fields: Vec<&str> = shown["error: ".len()..].splitn(4, ':').collect();
            let [path, row, _, rest] = fields[..] else {
                panic!("{at}: not file:line:column: key: found ...")
            };
            let (key, found) = rest.trim_start().split_once(": found ").unwrap();
            let value = found.split("; ").next().unwrap();
            let (table, key) = key.rsplit_once('.').unwrap();
            let base = std::fs::read_to_string(inventory("lemp.toml")).unwrap();
            let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
            let header = lines
                .iter()
                .position(|l| *l == format!("[{table}]"))
                .unwrap();
            let key_at = header
                + lines[header..]
                    .iter()
                    .position(|l| l.starts_with(&format!("{key} = ")))
                    .unwrap();
            lines[key_at] = format!("{key} = {value}");
            let row: usize = row.parse().unwrap();
            let cut = (key_at + 1).checked_sub(row);
            let cut = cut.filter(|&c| {
                lines[..c]
                    .iter()
                    .all(|l| l.is_empty() || l.starts_with('#'))
            });
            let cut =
                cut.unwrap_or_else(|| panic!("{at}: lemp.toml cannot have {key} on line {row}"));
            let dir = tempfile::tempdir().unwrap();
            example_tree(&dir.path().join("inventories"));
            std::fs::write(dir.path().join(path), lines[cut..].join("\n")).unwrap();
            let done = Run::new(&["validate", "-i", path])
                .dir(dir.path())
                .output()
                .status(4);
            assert!(
                done.stderr().contains(shown),
                "{at}: want {shown:?} in\n{}",
                done.stderr()
            );
        }
    }
}
