//! Reads the parsed TOML tree into the inventory's raw types by hand rather than through serde: every
//! mistake of shape (a string where a number belongs, a table where an array of tables belongs, an
//! unknown or a missing key) becomes an error in the project's words, `key: found X; allowed: Y`,
//! at the value's own position, and all of them are reported in one pass instead of the first only.
//!
//! One file (just over 450 lines with its tests): every reader of a kind of value records its
//! errors through the same `Reader`, with the same key paths and wording; split, that one
//! vocabulary would be spread over several files.

use crate::error::{shown, SourceMap, SpecError};
use std::fmt;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub type Value<'i> = Spanned<DeValue<'i>>;

/// The whole numbers a key accepts. The reader names it when a value is not a number at all, the
/// checker when a number is out of range, so both messages agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: i64,
    pub max: i64,
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from {} to {}", self.min, self.max)
    }
}

/// A TOML table being read: which keys were asked for, so the rest can be reported as unknown.
pub struct Table<'a, 'i> {
    /// Dotted key path, `hosts[0].ssh`; empty for the top level of the file.
    pub path: String,
    pub span: Range<usize>,
    entries: &'a DeTable<'i>,
    asked: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    pub fn root(entries: &'a DeTable<'i>) -> Self {
        Table {
            path: String::new(),
            span: 0..0,
            entries,
            asked: Vec::new(),
        }
    }

    /// Whether the table has `key`, without asking for it.
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.get_ref().as_ref() == key)
    }

    /// Where `key` is written in the file, if it is.
    fn span_of(&self, key: &str) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, v)| {
                if k.span().is_empty() {
                    v.span()
                } else {
                    k.span()
                }
            })
    }

    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn describe(&self) -> String {
        if self.path.is_empty() {
            "the top level of the file".into()
        } else {
            format!("the table {}", self.path)
        }
    }
}

/// Collects the errors of one read.
pub struct Reader<'m> {
    map: &'m SourceMap<'m>,
    pub errors: Vec<SpecError>,
}

impl<'m> Reader<'m> {
    pub fn new(map: &'m SourceMap<'m>) -> Self {
        Reader {
            map,
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, span: Range<usize>, key: &str, message: String) {
        self.errors.push(self.map.error(span, key, message));
    }

    /// A problem of the file as a whole at `span`.
    pub fn fail_at(&mut self, span: Range<usize>, key: &str, message: String) {
        self.fail(span, key, message);
    }

    /// `key` is in `t` beside `other`, which excludes it; `allowed` says what may be written.
    pub fn conflict(&mut self, t: &Table, key: &str, other: &str, allowed: &str) {
        let span = t.span_of(key).unwrap_or_else(|| t.span.clone());
        self.fail(
            span,
            &t.key(key),
            format!("found beside {other}; allowed: {allowed}"),
        );
    }

    fn wrong(&mut self, v: &Value, key: &str, allowed: &str) {
        let found = self.found(v);
        self.fail(v.span(), key, format!("found {found}; allowed: {allowed}"));
    }

    /// How a value of the wrong kind is described: its kind and, for scalars, the value itself.
    fn found(&self, v: &Value) -> String {
        match v.get_ref() {
            DeValue::String(s) => format!("a string {}", shown(s)),
            DeValue::Integer(i) => format!("the whole number {i}"),
            DeValue::Float(x) => format!("the decimal number {x}"),
            DeValue::Boolean(b) => format!("the boolean {b}"),
            DeValue::Datetime(d) => format!("the date-time {d}"),
            DeValue::Array(_) if self.written_as(v, "[[") => "an array of tables ([[...]])".into(),
            DeValue::Array(_) => "an array".into(),
            DeValue::Table(_) => "a table".into(),
        }
    }

    fn written_as(&self, v: &Value, prefix: &str) -> bool {
        self.map
            .text
            .get(v.span())
            .is_some_and(|t| t.starts_with(prefix))
    }

    fn get<'a, 'i>(&mut self, t: &mut Table<'a, 'i>, key: &'static str) -> Option<&'a Value<'i>> {
        t.asked.push(key);
        t.entries
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn missing(&mut self, t: &Table, key: &str, allowed: &str) {
        let message = format!("missing from {}; allowed: {allowed}", t.describe());
        self.fail(t.span.clone(), &t.key(key), message);
    }

    fn string(&mut self, v: &Value, key: &str, allowed: &str) -> Option<Spanned<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Spanned::new(v.span(), s.to_string())),
            _ => {
                self.wrong(v, key, allowed);
                None
            }
        }
    }

    fn int(&mut self, v: &Value, key: &str, bounds: Bounds) -> Option<Spanned<i64>> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Spanned::new(v.span(), n)),
                Err(_) => {
                    self.fail(v.span(), key, format!("found {i}; allowed: {bounds}"));
                    None
                }
            },
            _ => {
                self.wrong(v, key, &bounds.to_string());
                None
            }
        }
    }

    pub fn req_str(
        &mut self,
        t: &mut Table,
        key: &'static str,
        allowed: &str,
    ) -> Option<Spanned<String>> {
        match self.get(t, key) {
            Some(v) => self.string(v, &t.key(key), allowed),
            None => {
                self.missing(t, key, allowed);
                None
            }
        }
    }

    /// `Some(None)` when the key is absent, `None` when it is there but wrong (an error is recorded).
    pub fn opt_str(
        &mut self,
        t: &mut Table,
        key: &'static str,
        allowed: &str,
    ) -> Option<Option<Spanned<String>>> {
        match self.get(t, key) {
            Some(v) => self.string(v, &t.key(key), allowed).map(Some),
            None => Some(None),
        }
    }

    pub fn opt_int(
        &mut self,
        t: &mut Table,
        key: &'static str,
        bounds: Bounds,
    ) -> Option<Option<Spanned<i64>>> {
        match self.get(t, key) {
            Some(v) => self.int(v, &t.key(key), bounds).map(Some),
            None => Some(None),
        }
    }

    pub fn opt_bool(&mut self, t: &mut Table, key: &'static str) -> Option<Option<Spanned<bool>>> {
        match self.get(t, key) {
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Some(Some(Spanned::new(v.span(), *b))),
                _ => {
                    self.wrong(v, &t.key(key), "true or false");
                    None
                }
            },
            None => Some(None),
        }
    }

    /// An array of strings; `item` describes one element.
    pub fn opt_str_list(
        &mut self,
        t: &mut Table,
        key: &'static str,
        item: &str,
    ) -> Option<Option<Spanned<Vec<Spanned<String>>>>> {
        let Some(v) = self.get(t, key) else {
            return Some(None);
        };
        let path = t.key(key);
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong(v, &path, &format!("an array of strings, each {item}"));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, x) in items.iter().enumerate() {
            match self.string(x, &format!("{path}[{i}]"), item) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then(|| Some(Spanned::new(v.span(), out)))
    }

    pub fn req_str_list(
        &mut self,
        t: &mut Table,
        key: &'static str,
        item: &str,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        match self.opt_str_list(t, key, item)? {
            Some(list) => Some(list),
            None => {
                self.missing(t, key, &format!("an array of strings, each {item}"));
                None
            }
        }
    }

    fn table<'a, 'i>(
        &mut self,
        v: &'a Value<'i>,
        path: String,
        allowed: &str,
    ) -> Option<Table<'a, 'i>> {
        match v.get_ref() {
            DeValue::Table(entries) => Some(Table {
                path,
                span: v.span(),
                entries,
                asked: Vec::new(),
            }),
            _ => {
                self.wrong(v, &path, allowed);
                None
            }
        }
    }

    pub fn req_table<'a, 'i>(
        &mut self,
        t: &mut Table<'a, 'i>,
        key: &'static str,
        allowed: &str,
    ) -> Option<Table<'a, 'i>> {
        match self.get(t, key) {
            Some(v) => self.table(v, t.key(key), allowed),
            None => {
                self.missing(t, key, allowed);
                None
            }
        }
    }

    pub fn opt_table<'a, 'i>(
        &mut self,
        t: &mut Table<'a, 'i>,
        key: &'static str,
        allowed: &str,
    ) -> Option<Option<Table<'a, 'i>>> {
        match self.get(t, key) {
            Some(v) => self.table(v, t.key(key), allowed).map(Some),
            None => Some(None),
        }
    }

    /// An array of tables (`[[hosts]]`); absent means empty. Elements that are not tables are
    /// errors; the rest are returned so their own mistakes are reported too.
    pub fn table_list<'a, 'i>(
        &mut self,
        t: &mut Table<'a, 'i>,
        key: &'static str,
        allowed: &str,
    ) -> Option<Vec<Table<'a, 'i>>> {
        let Some(v) = self.get(t, key) else {
            return Some(Vec::new());
        };
        let path = t.key(key);
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong(v, &path, allowed);
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, x) in items.iter().enumerate() {
            match self.table(x, format!("{path}[{i}]"), allowed) {
                Some(table) => out.push(table),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Every key of a table whose keys are the user's own (PHP settings): (key, its span, value).
    pub fn str_map(&mut self, t: Table, item: &str) -> Option<Vec<UserEntry>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (k, v) in t.entries.iter() {
            let name = k.get_ref().as_ref().to_string();
            let span = if k.span().is_empty() {
                v.span()
            } else {
                k.span()
            };
            match self.string(v, &t.key(&segment(&name)), item) {
                Some(s) => out.push((name, span, s)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Reports the keys of `t` nobody asked for, with the ones that are allowed and a suggestion
    /// when one of them is a likely typo.
    pub fn finish(&mut self, t: Table) {
        for (k, v) in t.entries.iter() {
            let name = k.get_ref().as_ref();
            if t.asked.contains(&name) {
                continue;
            }
            let guess = t
                .asked
                .iter()
                .filter(|a| edit_distance(a, name) <= 2.min(a.len() / 2).max(1))
                .min_by_key(|a| edit_distance(a, name))
                .map(|a| format!(" (did you mean {a}?)"))
                .unwrap_or_default();
            let shown_key = segment(name);
            let span = if k.span().is_empty() {
                v.span()
            } else {
                k.span()
            };
            self.fail(
                span,
                &t.key(&shown_key),
                format!(
                    "found an unknown key{guess}; allowed in {}: {}",
                    t.describe(),
                    t.asked.join(", ")
                ),
            );
        }
    }
}

/// A key the user chose, where it is written, and its value.
pub type UserEntry = (String, Range<usize>, Spanned<String>);

/// A key as it appears in a dotted path: bare when it is a bare TOML key, quoted and escaped
/// otherwise, so a key holding a newline or a dot cannot garble the message.
pub fn segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        shown(key)
    }
}

/// Levenshtein distance of two short strings, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().take(64).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(64).enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("port", "prot"), 2);
        assert_eq!(edit_distance("port", "ports"), 1);
        assert_eq!(edit_distance("port", "port"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn odd_keys_are_quoted_in_paths() {
        assert_eq!(segment("port"), "port");
        assert_eq!(segment("a.b"), "\"a.b\"");
        assert_eq!(segment("a\nb"), "\"a\\nb\"");
        assert_eq!(segment(""), "\"\"");
    }
}
