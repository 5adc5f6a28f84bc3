//! The command line, as the user typed it (clap derive). Resolved into settings by `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "provision",
    version,
    about = "Render, plan and apply classic web stacks (Nginx, Apache, PHP-FPM, MariaDB, BIND, HAProxy) over SSH"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an inventory without contacting any host.
    Validate(Common),
    /// Dry run: write every file of every host under DIR/<host>/ plus DIR/manifest.json.
    Render(RenderArgs),
}

#[derive(Debug, Args)]
pub struct Common {
    /// The inventory file (TOML).
    #[arg(short, long, value_name = "INV")]
    pub inventory: PathBuf,
    /// A directory of template overrides, laid out like templates/ (e.g. DIR/nginx/site.conf).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub common: Common,
    /// Output directory; created if missing. An earlier render there is replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write real secret values into the files instead of placeholders.
    #[arg(long)]
    pub reveal_secrets: bool,
    /// Also validate every rendered config with the real tools installed on this machine
    /// (nginx, apache2, php-fpm, named-checkconf, haproxy, mariadbd), against a staged copy of this
    /// machine's config directories.
    #[arg(long)]
    pub check: bool,
}
