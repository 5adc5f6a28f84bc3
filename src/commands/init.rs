//! `init`, `completions`, `man`: commands that only write text, for a user starting out or
//! packaging provision.

use crate::cli::{Cli, CompletionsArgs, InitArgs};
use anyhow::{Context as _, Result};
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

/// The starter inventory `init` writes; `tests` prove it validates.
pub const STARTER: &str = include_str!("starter.toml");

pub fn init(a: &InitArgs) -> Result<ExitCode> {
    // create_new: an inventory already there is the user's work, never replaced.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&a.file)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::Error::new(crate::exit::Usage(format!(
                    "{} exists; provision init never overwrites a file: name another",
                    a.file.display()
                )))
            } else {
                anyhow::Error::new(e).context(format!("writing {}", a.file.display()))
            }
        })?;
    f.write_all(
        STARTER
            .replace("THIS_FILE", &a.file.to_string_lossy())
            .as_bytes(),
    )
    .with_context(|| format!("writing {}", a.file.display()))?;
    crate::ui::line(&format!(
        "{}: a starter inventory; edit the values marked CHANGE, then: provision validate -i {}",
        a.file.display(),
        a.file.display()
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn completions(a: &CompletionsArgs) -> Result<ExitCode> {
    // Into memory first: clap_complete panics when its writer fails (`| head`).
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut Cli::command(), "provision", &mut out);
    print(&out, "the completion script")
}

pub fn man() -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .context("rendering the manual page")?;
    print(&out, "the manual page")
}

/// Text for a pipe or a file; a reader that stopped early (`| head`) is not an error.
fn print(out: &[u8], what: &str) -> Result<ExitCode> {
    match std::io::stdout().write_all(out) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context(format!("writing {what}")))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
