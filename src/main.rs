use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = provision::cli::Cli::parse();
    match provision::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
