use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match provision::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with 0; a usage error is an invalid command line (not
        // clap's own 2, which `plan` uses for "changes").
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                provision::exit::INVALID_INPUT
            } else {
                0
            });
        }
    };
    match provision::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(provision::exit::for_error(&err))
        }
    }
}
