//! From bytes to a TOML tree: the encoding check, then TOML syntax errors turned into the project's
//! form. A duplicate key gets its full dotted path (toml only points at the last segment), and
//! every syntax error of the file is reported, not just the first.

use super::reader::segment;
use crate::error::{shown, SourceMap, SpecError};
use std::ops::Range;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// The text of an inventory file: UTF-8, with a UTF-8 byte order mark (which some Windows editors
/// write) skipped. Anything else is refused at the first byte that is not UTF-8, with its line and
/// column, and UTF-16/32 files are named as such since their bytes alone make a poor message.
pub fn decode<'b>(bytes: &'b [u8], file: &Path) -> Result<&'b str, SpecError> {
    let at_start = |message: &str| SpecError {
        file: file.to_path_buf(),
        line: 1,
        column: 1,
        key: String::new(),
        message: message.to_string(),
    };
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) || bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Err(at_start("the file is UTF-32; allowed: UTF-8"));
    }
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(at_start(
            "the file is UTF-16; allowed: UTF-8 (convert it with iconv -f UTF-16 -t UTF-8)",
        ));
    }
    let body = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    // ASCII text in UTF-16 without a byte order mark is valid UTF-8 full of NULs; say what it is
    // rather than let the TOML parser complain about a NUL.
    if body.len() >= 4
        && body[..4]
            .iter()
            .step_by(2)
            .zip(body[1..4].iter().step_by(2))
            .all(|(a, b)| (*a == 0) != (*b == 0))
    {
        return Err(at_start(
            "the file looks like UTF-16 (every other byte is NUL); allowed: UTF-8 (convert it with iconv -f UTF-16 -t UTF-8)",
        ));
    }
    std::str::from_utf8(body).map_err(|e| {
        let good = e.valid_up_to();
        let prefix = std::str::from_utf8(&body[..good]).unwrap_or_default();
        let (line, column) = SourceMap::new(file, prefix).position(good);
        let message = match e.error_len() {
            Some(_) => format!(
                "found the byte 0x{:02X}, which is not UTF-8 (a file saved as Latin-1 or \
                 Windows-1252?); allowed: UTF-8 text",
                body[good]
            ),
            None => "the file ends in the middle of a UTF-8 character; allowed: UTF-8 text".into(),
        };
        SpecError {
            file: file.to_path_buf(),
            line,
            column,
            key: String::new(),
            message,
        }
    })
}

/// Parses the text as TOML, or returns every syntax error found.
pub fn parse<'i>(map: &SourceMap<'i>) -> Result<DeTable<'i>, Vec<SpecError>> {
    let (root, errors) = DeTable::parse_recoverable(map.text);
    let root = root.into_inner();
    if errors.is_empty() {
        return Ok(root);
    }
    let mut out: Vec<SpecError> = errors
        .iter()
        .map(|e| {
            let span = e.span().unwrap_or(0..0);
            if e.message() == "duplicate key" {
                duplicate(map, &root, span)
            } else {
                syntax(map, e.message(), span)
            }
        })
        .collect();
    out.sort_by_key(|e| (e.line, e.column));
    out.dedup();
    Err(out)
}

/// toml's "unclosed table, expected `]`" as "invalid TOML: unclosed table; allowed: `]`".
fn syntax(map: &SourceMap, message: &str, span: Range<usize>) -> SpecError {
    let (what, expected) = message.split_once(", expected ").unwrap_or((message, ""));
    let mut text = format!("invalid TOML: {}", what.trim());
    match map.text.get(span.clone()) {
        Some(found) if !found.is_empty() => text.push_str(&format!("; found {}", shown(found))),
        _ => {}
    }
    if !expected.is_empty() && expected != "nothing" {
        text.push_str(&format!("; allowed: {expected}"));
    }
    map.error(span, "", text)
}

fn duplicate(map: &SourceMap, root: &DeTable, span: Range<usize>) -> SpecError {
    let text = map.text;
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let line_start = text
        .get(..start)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let before = text.get(line_start..start).unwrap_or_default();
    let (line, _) = map.position(start);
    if before.trim_start().starts_with('[') {
        // A `[a.b]` or `[[a.b]]` header: its path is the header's keys up to this one.
        let header = dotted(text.get(line_start..end).unwrap_or_default());
        let path = display(&header);
        let first = first_header(text, line_start, &header);
        let message = format!(
            "found a second definition of this table{}; allowed: each table once (add keys to the first one, or use [[...]] for a list of tables)",
            first_at(first, line)
        );
        return map.error(span, &path, message);
    }
    let (base, table) = enclosing(root, text, start);
    // The key as written, from the start of the key/value pair (`b.c` in `b.c = 1` or in an
    // inline table `{ a = 1, b.c = 2 }`) up to the duplicated segment.
    let key_from = before.rfind(['{', ',']).map_or(0, |i| i + 1);
    let keys = dotted(text.get(line_start + key_from..end).unwrap_or_default());
    let path = match (base.is_empty(), display(&keys)) {
        (true, k) => k,
        (false, k) => format!("{base}.{k}"),
    };
    let first = table
        .and_then(|t| first_key(t, &keys))
        .map(|o| map.position(o).0);
    let message = format!(
        "found a second definition of this key{}; allowed: each key once per table",
        first_at(first, line)
    );
    map.error(span, &path, message)
}

fn first_at(first: Option<usize>, line: usize) -> String {
    match first {
        Some(l) if l != line => format!(" (the first is at line {l})"),
        _ => String::new(),
    }
}

/// The line of the first header naming the same table, searched in the text before `before`.
fn first_header(text: &str, before: usize, keys: &[String]) -> Option<usize> {
    let head = text.get(..before)?;
    head.split('\n')
        .position(|l| {
            l.trim_start().starts_with('[')
                && l.split('#').next().map(dotted).as_deref() == Some(keys)
        })
        .map(|i| i + 1)
}

/// The offset of the first definition of `keys` below `table`.
fn first_key(table: &DeTable, keys: &[String]) -> Option<usize> {
    let (last, parents) = keys.split_last()?;
    let mut t = table;
    for k in parents {
        match t
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == k.as_str())?
            .1
            .get_ref()
        {
            DeValue::Table(sub) => t = sub,
            _ => return None,
        }
    }
    let (key, _) = t
        .iter()
        .find(|(key, _)| key.get_ref().as_ref() == last.as_str())?;
    Some(key.span().start)
}

/// The table a key/value pair at `offset` belongs to: the innermost inline table around it, or else
/// the last `[header]` table before it, or else the top level. Returns its display path.
fn enclosing<'a, 'i>(
    root: &'a DeTable<'i>,
    text: &str,
    offset: usize,
) -> (String, Option<&'a DeTable<'i>>) {
    let mut all = Vec::new();
    containers(root, String::new(), &mut all, 0);
    let written = |r: &Range<usize>, c: char| text.get(r.clone()).is_some_and(|t| t.starts_with(c));
    let inline = all
        .iter()
        .filter(|(_, r, _)| written(r, '{') && r.start < offset && offset < r.end)
        .max_by_key(|(_, r, _)| r.start);
    let header = || {
        all.iter()
            .filter(|(_, r, _)| written(r, '[') && r.start <= offset)
            .max_by_key(|(_, r, _)| r.start)
    };
    match inline.or_else(header) {
        Some((path, _, t)) => (path.clone(), Some(*t)),
        None => (String::new(), Some(root)),
    }
}

type Container<'a, 'i> = (String, Range<usize>, &'a DeTable<'i>);

fn containers<'a, 'i>(
    t: &'a DeTable<'i>,
    path: String,
    out: &mut Vec<Container<'a, 'i>>,
    depth: usize,
) {
    // toml itself refuses deeper nesting; the bound only keeps this walk's stack small.
    if depth > 128 {
        return;
    }
    for (k, v) in t.iter() {
        let p = if path.is_empty() {
            segment(k.get_ref())
        } else {
            format!("{path}.{}", segment(k.get_ref()))
        };
        match v.get_ref() {
            DeValue::Table(sub) => {
                out.push((p.clone(), v.span(), sub));
                containers(sub, p, out, depth + 1);
            }
            DeValue::Array(items) => {
                for (i, x) in items.iter().enumerate() {
                    if let DeValue::Table(sub) = x.get_ref() {
                        let pi = format!("{p}[{i}]");
                        out.push((pi.clone(), x.span(), sub));
                        containers(sub, pi, out, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The segments of a dotted key as written (`a . "b.c"` is `a`, `b.c`), brackets and spaces dropped.
fn dotted(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None => match c {
                '"' | '\'' => quote = Some(c),
                '.' => out.push(std::mem::take(&mut cur)),
                '[' | ']' => {}
                c if c.is_whitespace() => {}
                c => cur.push(c),
            },
        }
    }
    out.push(cur);
    out
}

fn display(keys: &[String]) -> String {
    keys.iter()
        .map(|k| segment(k))
        .collect::<Vec<_>>()
        .join(".")
}
