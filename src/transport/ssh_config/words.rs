//! The words of an ssh_config line: splitting a line, host patterns, `Match` criteria, `Include`
//! globs, `%` tokens, and ProxyJump lists.

use super::Cond;
use std::path::{Path, PathBuf};

/// Why a word of an ssh_config line, or a value of the inventory read the same way, is refused.
/// The message is what follows `file:line: keyword: ` (or the inventory's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordError {
    UnterminatedQuote,
    /// `Match host` or `Match originalhost` with no patterns after it.
    NoPatterns {
        criterion: String,
    },
    NotYesNo {
        found: String,
    },
    /// A `%` token OpenSSH has and provision does not expand.
    UnsupportedToken {
        word: String,
        token: char,
    },
    LonePercent {
        word: String,
    },
    /// A ProxyJump list that is not one: what is allowed.
    Jumps,
}

impl std::fmt::Display for WordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WordError::UnterminatedQuote => f.write_str("an unterminated quote"),
            WordError::NoPatterns { criterion } => write!(f, "{criterion} without patterns"),
            WordError::NotYesNo { found } => write!(f, "found {found:?}; allowed: yes or no"),
            WordError::UnsupportedToken { word, token } => {
                write!(f, "{word:?}: the token %{token} is not supported")
            }
            WordError::LonePercent { word } => write!(f, "{word:?}: a lone % at the end"),
            WordError::Jumps => f.write_str(JUMPS_ALLOWED),
        }
    }
}

impl std::error::Error for WordError {}

/// One line as (keyword, arguments): `Keyword value`, `Keyword=value`, double-quoted arguments,
/// a word starting with `#` ends the line. `None` for blank lines and comments.
pub(super) fn split_line(line: &str) -> Result<Option<(String, Vec<String>)>, WordError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_string();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '#' {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c == '"' {
                quoted = !quoted;
            } else if c.is_whitespace() && !quoted {
                break;
            } else {
                word.push(c);
            }
            chars.next();
        }
        if quoted {
            return Err(WordError::UnterminatedQuote);
        }
        args.push(word);
    }
    Ok(Some((keyword, args)))
}

pub(super) fn patterns(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| p.to_ascii_lowercase())
        .collect()
}

pub(super) fn match_conds(args: &[String]) -> Result<Vec<Cond>, WordError> {
    let mut conds = Vec::new();
    let mut it = args.iter();
    while let Some(criterion) = it.next() {
        match criterion.to_ascii_lowercase().as_str() {
            "all" => {}
            "host" | "originalhost" => {
                let list = it.next().ok_or_else(|| WordError::NoPatterns {
                    criterion: criterion.clone(),
                })?;
                let p = patterns(std::slice::from_ref(list));
                conds.push(if criterion.eq_ignore_ascii_case("host") {
                    Cond::MatchHost(p)
                } else {
                    Cond::MatchOriginalHost(p)
                });
            }
            // exec, user, localuser, canonical, final, tagged, localnetwork, negations...: not
            // evaluated, so the section applies to no host (skip the argument, if it has one).
            other => {
                if !matches!(other, "canonical" | "final") {
                    it.next();
                }
                conds.push(Cond::Never);
            }
        }
    }
    Ok(conds)
}

pub(super) fn yes_no(v: &str) -> Result<bool, WordError> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(WordError::NotYesNo {
            found: v.to_string(),
        }),
    }
}

/// OpenSSH's pattern lists: some positive pattern matches and no negated one does.
pub(super) fn matches_list(patterns: &[String], name: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if wildcard(neg.as_bytes(), name.as_bytes()) => return false,
            Some(_) => {}
            None => hit |= wildcard(p.as_bytes(), name.as_bytes()),
        }
    }
    hit
}

/// `*` any run of characters, `?` exactly one.
pub(crate) fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Files matching `pattern`, whose last component may hold `*`/`?`; sorted, as glob(3) sorts.
pub(super) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if pattern.exists() {
            vec![pattern.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with('.') && wildcard(name.as_bytes(), n.as_bytes())
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
}

pub fn expand_tilde(s: &str, home: &Path) -> String {
    match s.strip_prefix('~') {
        Some("") => home.display().to_string(),
        Some(rest) if rest.starts_with('/') => format!("{}{rest}", home.display()),
        _ => s.to_string(),
    }
}

/// What `%` tokens stand for in IdentityFile and UserKnownHostsFile.
pub struct Tokens<'a> {
    /// `%h`: the host name connected to (HostName); `%n`: the name as given.
    pub host: &'a str,
    pub original: &'a str,
    pub port: u16,
    pub remote_user: &'a str,
    pub local_user: &'a str,
    pub home: &'a Path,
}

/// `~` and `%` tokens; an unknown token is an error, as in OpenSSH.
pub fn expand(s: &str, t: &Tokens) -> Result<String, WordError> {
    let s = expand_tilde(s, t.home);
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(t.host),
            Some('n') => out.push_str(t.original),
            Some('p') => out.push_str(&t.port.to_string()),
            Some('r') => out.push_str(t.remote_user),
            Some('u') => out.push_str(t.local_user),
            Some('d') => out.push_str(&t.home.display().to_string()),
            // SAFETY: getuid cannot fail.
            Some('i') => out.push_str(&unsafe { libc::getuid() }.to_string()),
            Some(token) => return Err(WordError::UnsupportedToken { word: s, token }),
            None => return Err(WordError::LonePercent { word: s }),
        }
    }
    Ok(out)
}

/// One jump host of a ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

const JUMPS_ALLOWED: &str =
    "\"none\" or comma-separated jump hosts, each [user@]host[:port] (an address in [ ] for IPv6)";

/// A ProxyJump value: `none` is no jump at all.
pub fn parse_jumps(v: &str) -> Result<Vec<Jump>, WordError> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    v.split(',').map(parse_jump).collect()
}

fn parse_jump(s: &str) -> Result<Jump, WordError> {
    let s = s.strip_prefix("ssh://").unwrap_or(s);
    let (user, hostport) = match s.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, s),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(WordError::Jumps)?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(WordError::Jumps),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(WordError::Jumps)?,
        ),
        None => None,
    };
    let plain = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:%".contains(&b))
    };
    if !plain(host)
        || user
            .as_deref()
            .is_some_and(|u| !plain(u) || u.contains(':'))
    {
        return Err(WordError::Jumps);
    }
    Ok(Jump {
        user,
        host: host.to_string(),
        port,
    })
}
