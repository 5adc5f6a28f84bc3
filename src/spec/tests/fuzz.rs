//! A deterministic mutation fuzzer over the example inventories: thousands of broken and hostile
//! variants, each of which must give either a valid `Spec` whose values are safe to write into
//! configs, or errors that are well formed and point inside the text. Never a panic.

use super::*;
use crate::names::parse_host_path;
use crate::spec::site::document_root_problem;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: small, fast, and the same sequence on every machine, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What a hostile user or a broken editor puts into a file.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "\"; rm -rf / #",
        "$(id)",
        "`id`",
        "'",
        "\\",
        "\"",
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "\n",
        "\r\n",
        "\t",
        "\0",
        "\u{7f}",
        "\u{202e}",
        "\u{feff}",
        "é",
        "日本",
        "🦀",
        "ﬁ",
        ";",
        "#",
        "@",
        "*",
        "..",
        "../../etc/passwd",
        "/etc",
        "/",
        "[[hosts]]",
        "[site]",
        "[dns]\n",
        "= 1",
        "'''",
        "\"\"\"",
        "{ a = 1 }",
        "[1, [2]]",
        "99999999999999999999999",
        "-9223372036854775808",
        "0x7fffffffffffffff",
        "1e400",
        "nan",
        "-0",
        "1979-05-27T07:32:00Z",
        "true",
        "root",
        "mysql",
        "CNAME",
        "www",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(300));
    v.push(format!("{}.com", "b".repeat(63)));
    v.push(vec!["c".repeat(63); 4].join("."));
    v.push("x".repeat(5000));
    v
}

/// `s` as the inside of a TOML basic string, so the hostile value reaches the checker.
fn escaped(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => "\\\"".to_string(),
            '\\' => "\\\\".to_string(),
            c if c.is_control() => format!("\\u{:04X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// The byte ranges inside every `"..."` on one line.
fn string_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut open = None;
    for (i, b) in text.bytes().enumerate() {
        match (b, open) {
            (b'"', None) => open = Some(i + 1),
            (b'"', Some(s)) => {
                out.push((s, i));
                open = None;
            }
            (b'\n', _) => open = None,
            _ => {}
        }
    }
    out
}

fn char_boundary(text: &[u8], mut at: usize) -> usize {
    while at < text.len() && (text[at] & 0xC0) == 0x80 {
        at += 1;
    }
    at.min(text.len())
}

/// One random change to the inventory's bytes: a bit flipped, a line dropped, doubled or swapped
/// with another, a hostile text inserted, a string or a number replaced.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, hostile: &[String]) {
    match rng.below(8) {
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        1 => {
            let ls = line_spans(bytes);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                bytes.drain(s..e);
            }
        }
        2 => {
            let ls = line_spans(bytes);
            if !ls.is_empty() {
                let (s, e) = *rng.pick(&ls);
                let line = bytes[s..e].to_vec();
                bytes.splice(e..e, line);
            }
        }
        3 => {
            let at = char_boundary(bytes, rng.below(bytes.len() + 1));
            let h = rng.pick(hostile).clone();
            bytes.splice(at..at, h.into_bytes());
        }
        4 | 5 => replace_string(rng, bytes, hostile),
        6 => replace_number(rng, bytes),
        _ => swap_lines(rng, bytes),
    }
}

/// Each line's (start, end), its newline included.
fn line_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

/// Replaces a string's content, escaped half the time so it is still valid TOML.
fn replace_string(rng: &mut Rng, bytes: &mut Vec<u8>, hostile: &[String]) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let spans = string_spans(&text);
    if !spans.is_empty() && text.len() == bytes.len() {
        let (s, e) = *rng.pick(&spans);
        let h = rng.pick(hostile);
        let new = if rng.below(2) == 0 {
            escaped(h)
        } else {
            format!("{}{}", &text[s..e], escaped(h))
        };
        bytes.splice(s..e, new.into_bytes());
    }
}

/// Replaces a digit with an extreme number.
fn replace_number(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let digits: Vec<usize> = text
        .match_indices(|c: char| c.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    if !digits.is_empty() && text.len() == bytes.len() {
        let at = *rng.pick(&digits);
        let big = rng.pick(&["99999999999999999999", "-1", "0", "4294967296", "65536"]);
        bytes.splice(at..at + 1, big.bytes());
    }
}

fn swap_lines(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let ls = line_spans(bytes);
    if ls.len() >= 2 {
        let (a, b) = (rng.below(ls.len()), rng.below(ls.len()));
        let (a, b) = (a.min(b), a.max(b));
        if a != b {
            let (la, lb) = (ls[a], ls[b]);
            let second = bytes[lb.0..lb.1].to_vec();
            let first = bytes[la.0..la.1].to_vec();
            bytes.splice(lb.0..lb.1, first);
            bytes.splice(la.0..la.1, second);
        }
    }
}

const SECRET: &str = "S3cret-Value'\"$x";

/// Answers every read, so mutated inventories get past their secrets and application files.
struct Lenient;

impl Sources for Lenient {
    fn env_var(&self, name: &str) -> Option<String> {
        (name != "HOME").then(|| SECRET.to_string())
    }
    fn read_file(&self, _: &Path, _: usize) -> std::io::Result<Vec<u8>> {
        Ok(format!("{SECRET}\n").into_bytes())
    }
    fn read_tree(&self, _: &Path) -> std::io::Result<Vec<TreeFile>> {
        Ok(vec![TreeFile {
            path: "index.php".into(),
            key: FileKey {
                real: PathBuf::from("/app/index.php"),
                inode: None,
            },
            content: b"<?php\n".to_vec(),
            executable: false,
        }])
    }
    fn file_key(&self, _: &Path) -> std::io::Result<FileKey> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

fn safe(s: &str, extra: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.as_bytes().contains(&b))
}

/// What a valid spec guarantees about the values render writes into configs, SQL and commands.
fn assert_safe(s: &Spec, label: &str) {
    let site = &s.sites[0];
    assert!(
        safe(site.domain.as_str(), ".-"),
        "{label}: domain {:?}",
        site.domain
    );
    if let Some(limit) = crate::component::domain_limit(site.stack.name()) {
        assert!(site.domain.as_str().len() <= limit.max, "{label}");
    }
    for n in site
        .server_names
        .iter()
        .chain(s.sites[0].dns.records.iter().map(|r| &r.name))
    {
        assert!(safe(n, ".-@"), "{label}: name {n:?}");
    }
    for f in site.fqdns() {
        assert!(f.len() <= 253, "{label}: {f}");
    }
    assert!(parse_host_path(&site.document_root).is_ok(), "{label}");
    assert!(
        document_root_problem(&site.document_root).is_none(),
        "{label}"
    );
    assert!(
        safe(site.php_version.as_deref().unwrap_or(""), "."),
        "{label}"
    );
    if let App::Files(files) = &site.app {
        for f in files {
            assert!(parse_host_path(&format!("/{}", f.path)).is_ok(), "{label}");
        }
    }
    let db = &s.sites[0].database;
    for ident in [&db.name, &db.user]
        .into_iter()
        .chain(s.replication.as_ref().map(|r| &r.user))
    {
        assert!(
            ident
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{label}: {ident:?}"
        );
    }
    for r in &s.sites[0].dns.records {
        assert!(
            !r.value.chars().any(char::is_control),
            "{label}: {:?}",
            r.value
        );
        assert!(
            !(r.kind == RecordKind::CNAME && r.name == "@"),
            "{label}: CNAME at the apex"
        );
    }
    assert!(safe(&s.sites[0].dns.soa_contact, ".-_"), "{label}");
    for h in &s.hosts {
        assert!(safe(&h.name, "-"), "{label}: host {:?}", h.name);
        assert!(safe(&h.ssh.user, "-_"), "{label}");
        assert!(
            safe(&h.ssh.address, ".-:") || h.ssh.address.parse::<IpAddr>().is_ok(),
            "{label}"
        );
    }
}

/// The error invariants: a message, a position inside the text, one line each, no secret.
fn assert_well_formed(errs: &SpecErrors, bytes: &[u8], label: &str) {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(!errs.0.is_empty(), "{label}: an empty error list");
    for e in &errs.0 {
        assert!(!e.message.trim().is_empty(), "{label}: empty message {e:?}");
        assert!(!e.to_string().contains('\n'), "{label}: {e:?}");
        assert!(
            !e.to_string().contains(SECRET),
            "{label}: the secret shows in {e}"
        );
        assert!(e.line > 0, "{label}: no position in {e}");
        assert!(e.line <= lines.len(), "{label}: line past the end: {e}");
        let width = lines[e.line - 1].chars().count();
        assert!(
            e.column >= 1 && e.column <= width + 1,
            "{label}: column past the line: {e}"
        );
    }
    let positions: Vec<(usize, usize)> = errs.0.iter().map(|e| (e.line, e.column)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]),
        "{label}: not in file order"
    );
}

fn run(bytes: &[u8], path: &Path, label: &str) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| match syntax::decode(bytes, path) {
        Err(e) => Err(SpecErrors(vec![e])),
        Ok(text) => Spec::parse(text, path, &Lenient),
    }));
    match outcome {
        Err(panic) => {
            eprintln!("{label}: panicked on {:?}", String::from_utf8_lossy(bytes));
            std::panic::resume_unwind(panic);
        }
        Ok(Ok(spec)) => {
            assert_safe(&spec, label);
            true
        }
        Ok(Err(errs)) => {
            assert_well_formed(&errs, bytes, label);
            false
        }
    }
}

#[test]
fn mutated_inventories_never_panic_and_fail_with_located_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "examples in {}", dir.display());
    let hostile = hostile();
    let (mut valid, mut total) = (0, 0);
    for (n, file) in files.iter().enumerate() {
        let original = std::fs::read(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            run(&original, Path::new(&name), &name),
            "{name} itself is invalid"
        );
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (n as u64 + 1));
        for i in 0..400 {
            let mut bytes = original.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut rng, &mut bytes, &hostile);
            }
            valid += usize::from(run(&bytes, Path::new(&name), &format!("{name} #{i}")));
            total += 1;
        }
    }
    eprintln!("fuzz: {valid} of {total} variants valid");
    // Most variants break something, but enough stay valid for their invariants to be checked.
    assert!(
        valid > total / 20,
        "only {valid} of {total} variants were valid"
    );
    assert!(valid < total, "no variant was refused");
}
