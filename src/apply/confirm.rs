//! Confirming a guarded generation: what can lock the operator out (a ruleset, sshd's settings)
//! stays live only once a new SSH connection gets through.

use super::{as_root, Context};
use crate::spec::Host;

/// How long new SSH connections are tried to confirm a guarded generation.
const CONFIRM_SECS: u64 = 15;

/// Why a guarded generation (`what`) could not be confirmed by a new connection. The texts it
/// carries from the host are redacted.
#[derive(Debug)]
pub(super) enum ConfirmError {
    /// The host's guard is gone (it undid the generation already): retrying cannot bring it back.
    GuardGone { what: String, output: String },
    /// No new connection got through in time; `last` says why the last try failed.
    NoNewConnection { what: String, last: String },
}

impl std::fmt::Display for ConfirmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfirmError::GuardGone { what, output } => {
                write!(f, "{what} could not be confirmed: {output}")
            }
            ConfirmError::NoNewConnection { what, last } => write!(
                f,
                "{what} let no new SSH connection through within {CONFIRM_SECS} s ({last}); the host rolls it back by itself {} s after the apply ended",
                crate::host_state::GUARD_SECS
            ),
        }
    }
}

impl std::error::Error for ConfirmError {}

/// `what` (a ruleset, sshd's settings) just went live on the host, guarded: only a NEW connection
/// (a new TCP handshake and authentication, which neither the old connection's conntrack entry
/// and sshd process nor a kept control master vouch for: see `apply::connect_new`) proves the
/// operator can still get in, and it disarms the guard armed with `token`. When none gets
/// through, the caller undoes the generation through the old connection, and the host's guard
/// does it anyway if the controller is gone.
pub(super) fn confirm_new_connection(
    ctx: &Context,
    host: &Host,
    what: &str,
    token: &str,
) -> Result<(), ConfirmError> {
    let command = crate::host_state::confirm_guard(token);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(CONFIRM_SECS);
    loop {
        let why = match super::connect_new(ctx, host) {
            Ok(mut t) => match t.exec(&as_root(ctx, host, &command), b"") {
                Ok(out) if out.status == 0 => {
                    ctx.reporter.note(
                        &host.name,
                        &format!("a new SSH connection got through: {what} confirmed"),
                    );
                    return Ok(());
                }
                // The guard is gone: retrying cannot bring it back.
                Ok(out) if out.status == 1 => {
                    return Err(ConfirmError::GuardGone {
                        what: what.to_string(),
                        output: ctx.redactor.redact(out.text().trim()),
                    })
                }
                Ok(out) => format!("the confirmation failed: {}", out.text().trim()),
                Err(e) => e.to_string(),
            },
            Err(e) => e.message().to_string(),
        };
        if std::time::Instant::now() >= deadline {
            return Err(ConfirmError::NoNewConnection {
                what: what.to_string(),
                last: ctx.redactor.redact(&why),
            });
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
