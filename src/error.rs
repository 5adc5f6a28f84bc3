//! Errors of the inventory phase: each names the file, line, column and key, what was found and what
//! is allowed. Secret values never reach these messages: callers pass a description instead.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem has no position (a file that cannot be read).
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `hosts[1].ssh.port`; empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems found in one inventory, in file order, so a user fixes them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// One problem of the whole file (no line: it cannot be read, or cannot be edited).
    pub fn whole_file(file: &std::path::Path, message: String) -> SpecErrors {
        SpecErrors(vec![SpecError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        }])
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Maps byte offsets of a source text to 1-based line and column (in characters).
///
/// Line starts are found once, so each lookup is a binary search plus a walk along one line: an
/// inventory with tens of thousands of errors is located in linear time, not quadratic.
pub struct SourceMap<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    /// Byte offset of the first byte of each line; the first is always 0.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceMap {
            file,
            text,
            line_starts,
        }
    }

    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // The last line start at or before the offset.
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        // Characters, not bytes: count the bytes that begin a UTF-8 sequence. Working on bytes also
        // keeps an offset that is not on a character boundary from panicking.
        let column = self.text.as_bytes()[start..offset]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count()
            + 1;
        (line, column)
    }

    /// The number of lines, counting a last line without a newline.
    pub fn lines(&self) -> usize {
        self.line_starts.len()
    }

    pub fn error(&self, span: std::ops::Range<usize>, key: &str, message: String) -> SpecError {
        let (line, column) = self.position(span.start);
        SpecError {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message,
        }
    }
}

/// How a user-written value is shown in an error: quoted, with control characters made visible, and
/// cut short so a pasted blob does not flood the terminal.
pub fn shown(value: &str) -> String {
    let mut s = String::new();
    for c in value.chars().take(80) {
        if c.is_control() || c == '"' || c == '\\' {
            s.extend(c.escape_debug());
        } else {
            s.push(c);
        }
    }
    if value.chars().count() > 80 {
        s.push('…');
    }
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\néé = 1\n\nlast";
        let map = SourceMap::new(Path::new("f"), text);
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(2), (1, 3));
        assert_eq!(map.position(3), (2, 1));
        // After two 2-byte characters: column 3.
        assert_eq!(map.position(7), (2, 3));
        assert_eq!(map.position(text.len()), (4, 5));
        assert_eq!(map.position(text.len() + 10), (4, 5));
        assert_eq!(map.lines(), 4);
    }

    #[test]
    fn an_offset_inside_a_character_does_not_panic() {
        let map = SourceMap::new(Path::new("f"), "é");
        assert_eq!(map.position(1), (1, 2));
    }
}

/// What a value may be, as an error of a parser of inventory values: the "allowed: ..." text of
/// the located error the caller makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed(pub String);

impl From<String> for Allowed {
    fn from(s: String) -> Allowed {
        Allowed(s)
    }
}

impl From<&str> for Allowed {
    fn from(s: &str) -> Allowed {
        Allowed(s.to_string())
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Allowed {}

impl std::ops::Deref for Allowed {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}
