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
pub struct SourceMap<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl SourceMap<'_> {
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
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
