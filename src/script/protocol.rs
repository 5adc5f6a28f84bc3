//! The lines the host-side script prints for the controller: one typed definition, used on both
//! sides. The shell functions (`ev_phase`, `ev_fail`, ...) are generated from `TAGS`, and `parse`
//! reads the same tags back.

/// Where an apply is; the script announces each one as it enters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Lock,
    Check,
    Packages,
    Accounts,
    Stage,
    Validate,
    Swap,
    Reload,
    Rollback,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Lock,
        Phase::Check,
        Phase::Packages,
        Phase::Accounts,
        Phase::Stage,
        Phase::Validate,
        Phase::Swap,
        Phase::Reload,
        Phase::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Lock => "lock",
            Phase::Check => "check",
            Phase::Packages => "packages",
            Phase::Accounts => "accounts",
            Phase::Stage => "stage",
            Phase::Validate => "validate",
            Phase::Swap => "swap",
            Phase::Reload => "reload",
            Phase::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One line of the script's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Phase(Phase),
    /// The generation this run opened (its first change).
    Generation(String),
    /// A line of a tool's output, shown when the step fails.
    Out(String),
    /// A handler that ran (`reload nginx`).
    Did(String),
    /// Something to tell the user that is not a failure.
    Note(String),
    /// The run stopped; the host is as the message says.
    Fail(String),
    /// Another run holds the lock (who, since when).
    Busy(String),
    /// The host is not as the plan saw it; nothing was changed.
    Stale(String),
    /// The run armed a guard with this token: only a new SSH connection that disarms it keeps the
    /// generation (see `apply.sh`'s `guard_arm`).
    Guard(String),
    /// The run finished.
    Done,
}

impl Event {
    /// The line the shell functions print for this event (for commands that run before the library
    /// is there: the runner).
    pub fn line(&self) -> String {
        let (tag, arg) = match self {
            Event::Phase(p) => ("phase", p.as_str()),
            Event::Generation(a) => ("gen", a.as_str()),
            Event::Out(a) => ("out", a.as_str()),
            Event::Did(a) => ("did", a.as_str()),
            Event::Note(a) => ("note", a.as_str()),
            Event::Fail(a) => ("fail", a.as_str()),
            Event::Busy(a) => ("busy", a.as_str()),
            Event::Stale(a) => ("stale", a.as_str()),
            Event::Guard(a) => ("guard", a.as_str()),
            Event::Done => ("done", ""),
        };
        format!("@{tag} {arg}")
    }
}

/// (tag, shell function) for every event.
const TAGS: [(&str, &str); 10] = [
    ("phase", "ev_phase"),
    ("gen", "ev_gen"),
    ("out", "ev_out"),
    ("did", "ev_did"),
    ("note", "ev_note"),
    ("fail", "ev_fail"),
    ("busy", "ev_busy"),
    ("stale", "ev_stale"),
    ("guard", "ev_guard"),
    ("done", "ev_done"),
];

/// The shell side: one function per event, printing `@TAG ARGS`.
pub fn shell_functions() -> String {
    TAGS.iter()
        .map(|(tag, f)| format!("{f}() {{ printf '@{tag} %s\\n' \"$*\"; }}\n"))
        .collect()
}

/// Reads one line of the script's output; `None` for anything else (a tool writing to the log).
pub fn parse(line: &str) -> Option<Event> {
    let rest = line.strip_prefix('@')?;
    let (tag, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    let arg = arg.to_string();
    Some(match tag {
        "phase" => Event::Phase(Phase::parse(&arg)?),
        "gen" => Event::Generation(arg),
        "out" => Event::Out(arg),
        "did" => Event::Did(arg),
        "note" => Event::Note(arg),
        "fail" => Event::Fail(arg),
        "busy" => Event::Busy(arg),
        "stale" => Event::Stale(arg),
        "guard" => Event::Guard(arg),
        "done" => Event::Done,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_the_shell_prints_parses_back() {
        let script = format!(
            "{}ev_phase swap\nev_gen G000001-x\nev_out 'a b'\nev_did reload nginx\nev_note n\nev_fail f\nev_busy b\nev_stale s\nev_guard G000001-x.1.2\nev_done\n",
            shell_functions()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse)
            .collect();
        let want = [
            Event::Phase(Phase::Swap),
            Event::Generation("G000001-x".into()),
            Event::Out("a b".into()),
            Event::Did("reload nginx".into()),
            Event::Note("n".into()),
            Event::Fail("f".into()),
            Event::Busy("b".into()),
            Event::Stale("s".into()),
            Event::Guard("G000001-x.1.2".into()),
            Event::Done,
        ];
        assert_eq!(events, want);
        // What the shell prints, Rust writes alike.
        let lines: Vec<Event> = want.iter().filter_map(|e| parse(&e.line())).collect();
        assert_eq!(lines, want);
    }

    #[test]
    fn every_phase_the_library_announces_is_known() {
        for line in super::super::LIBRARY.lines() {
            if let Some(rest) = line.trim().strip_prefix("ev_phase ") {
                let name = rest.split_whitespace().next().unwrap_or("");
                assert!(Phase::parse(name).is_some(), "unknown phase {name:?}");
            }
        }
    }
}
