//! Escaping for every language a value from the inventory can land in: a SQL string literal, a PHP
//! single-quoted string, a POSIX shell word. Pure; used by the templates' filters, the probe and the
//! apply script.

/// A MariaDB string literal. Backslash and quote are escaped with a backslash, which the default
/// sql_mode reads as an escape (the bootstrap SQL makes sure NO_BACKSLASH_ESCAPES is off).
pub fn sql_string(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('\'');
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A PHP single-quoted string: only `\` and `'` are special there, and no `$` interpolation happens.
pub fn php_string(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A value in a MariaDB option file (`password = ...`): double-quoted, so `#`, spaces and quotes are
/// literal; a backslash is the one escape the option-file reader interprets, so it is doubled.
pub fn cnf_string(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\"))
}

/// A POSIX shell word.
pub fn shell_word(v: &str) -> String {
    shell_escape::unix::escape(v.into()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_string_escapes_quotes_and_backslashes() {
        assert_eq!(sql_string(r#"a'b\c"d;$(x)"#), r#"'a\'b\\c"d;$(x)'"#);
    }

    #[test]
    fn php_string_escapes_quotes_and_backslashes_only() {
        assert_eq!(php_string(r#"a'b\c"d$x"#), r#"'a\'b\\c"d$x'"#);
    }

    #[test]
    fn cnf_string_quotes_and_doubles_backslashes() {
        assert_eq!(cnf_string(r#"a"b\c#d e"#), r#""a"b\\c#d e""#);
    }

    #[test]
    fn shell_word_quotes_everything_special() {
        assert_eq!(shell_word("a b'c"), r#"'a b'\''c'"#);
        assert_eq!(shell_word("plain"), "plain");
    }
}
