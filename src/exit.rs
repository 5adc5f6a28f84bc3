//! Exit statuses: what `main` returns, by the phase that failed. Documented in the README
//! ("Exit statuses"), whose table this one copies.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success; `plan`: nothing to change |
//! | 1 | a host failed: its facts, a refused or stale plan, the apply, or its health checks; `check`: a check failed |
//! | 2 | `plan`: there are changes to make (or a host needs attention) |
//! | 3 | a host could not be reached: connection, authentication, host key, or a connection lost mid-run |
//! | 4 | the inventory or the command line is invalid |
//! | 5 | rendering failed: a template, a release that cannot give what the inventory asks, or a config rejected by its validator (`render --check`) |
//!
//! When hosts fail in different ways, 3 wins (an unreachable host is the likeliest cause of the
//! rest); 5 only when every failure is a rendering one; else 1 (`for_outcomes`).

use crate::apply::{HostError, HostOutcome};
use std::process::ExitCode;

pub const FAILED: u8 = 1;
pub const CHANGES: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const INVALID_INPUT: u8 = 4;
pub const RENDER: u8 = 5;

/// A command line that cannot be carried out as given.
#[derive(Debug)]
pub struct Usage(pub String);

/// Rendered configs that their validators rejected.
#[derive(Debug)]
pub struct Invalid(pub String);

macro_rules! message_error {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for $t {}
    };
}
message_error!(Usage);
message_error!(Invalid);

/// The status for an error that ended a command before (or instead of) per-host outcomes.
pub fn for_error(err: &anyhow::Error) -> u8 {
    if err.is::<crate::error::SpecErrors>() || err.is::<Usage>() {
        INVALID_INPUT
    } else if err.is::<crate::render::templates::TemplateError>()
        || err.is::<crate::render::RenderError>()
        || err.is::<Invalid>()
    {
        RENDER
    } else {
        FAILED
    }
}

/// The status of a run over hosts: unreachable hosts first (the most likely cause of the rest),
/// then any other failure.
pub fn for_outcomes(outcomes: &[HostOutcome]) -> Option<ExitCode> {
    let errors: Vec<&HostError> = outcomes.iter().filter_map(|o| o.error.as_ref()).collect();
    if errors.is_empty() {
        None
    } else if errors.iter().any(|e| matches!(e, HostError::Connect(_))) {
        Some(ExitCode::from(UNREACHABLE))
    } else if errors.iter().all(|e| matches!(e, HostError::Render(_))) {
        Some(ExitCode::from(RENDER))
    } else {
        Some(ExitCode::from(FAILED))
    }
}
