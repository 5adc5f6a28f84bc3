//! The command line, as the user typed it (clap derive). Resolved into settings by `commands`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "provision",
    version,
    about = "Render, plan and apply classic web stacks (Nginx, Apache, PHP-FPM, MariaDB, BIND, HAProxy) over SSH",
    after_help = EXIT_STATUSES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Shown after every `--help`: what scripts around provision test for.
pub const EXIT_STATUSES: &str = "Exit statuses:
  0  success; plan: nothing to change
  1  a host failed: its facts, a refused or stale plan, the apply, or its health checks
  2  plan: there are changes to make (or a host needs attention)
  3  a host could not be reached: connection, authentication, host key, connection lost
  4  the inventory or the command line is invalid
  5  rendering failed: a template, a release that cannot give what is asked, a rejected config";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter inventory (one host: Nginx, PHP-FPM, MariaDB, BIND) to edit.
    #[command(after_help = "Example: provision init site.toml && provision validate -i site.toml")]
    Init(InitArgs),
    /// Check an inventory without contacting any host.
    #[command(after_help = "Example: provision validate -i inventories/lemp.toml")]
    Validate(Common),
    /// Dry run: write every file of every host under DIR/<host>/ plus DIR/manifest.json.
    #[command(
        after_help = "Example: provision render -i inventories/single.toml --out /tmp/foobar --check"
    )]
    Render(RenderArgs),
    /// Show what apply would change on the live hosts. Exit status 0: nothing; 2: changes; 1: error.
    #[command(
        after_help = "Example: provision plan -i inventories/lemp.toml --out lemp.plan  (then: apply --plan lemp.plan)"
    )]
    Plan(PlanArgs),
    /// Change the hosts to match the inventory: packages, validated configs, database, reloads, checks.
    #[command(
        after_help = "Example: provision apply -i inventories/lb.toml --batch 2 --lock-timeout 120"
    )]
    Apply(ApplyArgs),
    /// List the generations recorded on a host: every apply or rollback that changed it.
    #[command(after_help = "Example: provision history -i inventories/lemp.toml --host web-01")]
    History(HistoryArgs),
    /// Put a host back as it was at an earlier generation (default: undo the newest), then check it.
    #[command(
        after_help = "Example: provision rollback -i inventories/lemp.toml --host web-01 --to G000003-20261123T101500Z"
    )]
    Rollback(RollbackArgs),
    /// Check that the live site answers, from this machine: the page through HTTP with the site's Host
    /// header shows the database row, the DNS hosts answer for it; and over SSH (read-only) what the
    /// load balancers and replicas say of themselves.
    #[command(after_help = "Example: provision check -i inventories/lb.toml --host lb-01")]
    Check(CheckArgs),
    /// Make a database replica the primary, with no lost write (a planned switchover): the primary
    /// goes read-only, every replica catches up, the replica becomes writable, the inventory's
    /// roles are swapped in the file, and an apply points the web hosts at the new primary and
    /// makes the old one follow it.
    #[command(after_help = "Example: provision promote -i inventories/lb.toml --host db-02")]
    Promote(PromoteArgs),
    /// Dump the database now on the backup host (the first replica, else the primary): compressed,
    /// into /var/backups/provision, beside the nightly ones ([backup] in the inventory). Prints the
    /// dump's path.
    #[command(after_help = "Example: provision backup -i inventories/lemp.toml")]
    Backup(BackupArgs),
    /// Load a dump from the backup host into the database primary (the replicas follow it). The
    /// primary is dumped first (label before-restore), so a restore can itself be undone.
    #[command(
        after_help = "Example: provision restore -i inventories/lemp.toml --from /var/backups/provision/foobar-nightly-20261123T031500Z.sql.gz"
    )]
    Restore(RestoreArgs),
    /// Delete what a site that left the inventory still holds: its document root (with its
    /// uploads), its database and its database user's accounts, its Unix user. Each is backed up
    /// first into /var/backups/provision (the document root on each web host that kept it, the
    /// database on the primary); the backups' paths are printed.
    #[command(
        after_help = "Example: provision delete-site -i inventories/sites.toml --domain blog.example"
    )]
    DeleteSite(DeleteSiteArgs),
    /// Print a shell completion script: `provision completions bash > /etc/bash_completion.d/provision`.
    #[command(after_help = "Example: provision completions zsh > ~/.zfunc/_provision")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), generated from these definitions: `provision man | man -l -`.
    #[command(after_help = "Example: provision man > /usr/local/share/man/man1/provision.1")]
    Man,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it; an existing file is never overwritten.
    #[arg(value_name = "FILE", default_value = "provision.toml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub common: Common,
    /// The replica to promote (a host with the "db-replica" role).
    #[arg(long = "host", value_name = "H")]
    pub host: String,
    /// How long each replica may take to catch up with the read-only primary, in seconds; after
    /// that the primary is made writable again and nothing else is changed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub catch_up: u64,
    /// Accept and record the host key of a host that is not in known_hosts yet.
    #[arg(long)]
    pub trust_new_hosts: bool,
    /// Show every remote command (secrets masked).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: Common,
    /// Accept and record the host key of a host that is not in known_hosts yet.
    #[arg(long)]
    pub trust_new_hosts: bool,
    /// Show every remote command (secrets masked).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct DeleteSiteArgs {
    #[command(flatten)]
    pub common: Common,
    /// The site's domain: a site the inventory no longer has, applied without it.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// Accept and record the host key of a host that is not in known_hosts yet.
    #[arg(long)]
    pub trust_new_hosts: bool,
    /// Show every remote command (secrets masked).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: Common,
    /// The dump on the backup host, as `backup` printed it (a file in /var/backups/provision).
    #[arg(long, value_name = "FILE")]
    pub from: String,
    /// Accept and record the host key of a host that is not in known_hosts yet.
    #[arg(long)]
    pub trust_new_hosts: bool,
    /// Show every remote command (secrets masked).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// How long each check may keep failing before it counts as failed, in seconds.
    #[arg(long, default_value_t = 5)]
    pub patience: u64,
    /// Only the checks from this machine (HTTP, DNS); without it, hosts whose services report on
    /// themselves (load balancers' backends and floating address, replicas) are read over SSH.
    #[arg(long)]
    pub no_ssh: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Also write the whole plan to FILE, for `apply --plan FILE` (no secret, no plain hash of a
    /// file that holds one).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// Execute exactly this saved plan: refused, with every host untouched, when the inventory, the
    /// templates or a host's state differ from what it was made against.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Wait up to SECS for another apply's lock on a host instead of refusing at once.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lock_timeout: u64,
    /// Web hosts behind load balancers change this many at a time, each drained first.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: u16,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub hosts: HostArgs,
    /// The generation to go back to (see `history`); default: undo the newest one.
    #[arg(long, value_name = "GEN")]
    pub to: Option<String>,
    /// Wait up to SECS for another apply's lock on a host instead of refusing at once.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub lock_timeout: u64,
}

#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only this host (repeatable).
    #[arg(long = "host", value_name = "H")]
    pub hosts: Vec<String>,
    /// Print the plan (or the apply report) as JSON on stdout, and no progress.
    #[arg(long)]
    pub json: bool,
    /// Accept and record the host key of a host that is not in known_hosts yet (trust on first use).
    /// A changed key is refused whatever this says.
    #[arg(long)]
    pub trust_new_hosts: bool,
    /// Run on this machine instead of over SSH (needs exactly one host selected).
    #[arg(long)]
    pub local: bool,
    /// Show every remote command (secrets masked, file contents left out).
    #[arg(short, long)]
    pub verbose: bool,
    /// How many hosts are worked on at once, at most.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,
    /// Reuse SSH connections: go through OpenSSH's `ssh` with a control master per host that
    /// stays up SECS seconds after its last use, so runs within that time skip connecting and
    /// authenticating (as Ansible's ControlPersist). The host key is checked when the master
    /// connects, not again while it lives; its socket, in a directory only you can open
    /// ($XDG_RUNTIME_DIR or ~/.cache, provision-ssh/), is as good as a logged-in session.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86400))]
    pub ssh_reuse: Option<u32>,
}

#[derive(Debug, Clone, Args)]
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
    /// Render every host for this release (`trixie`, `bookworm`, `debian 13`, ...) instead of its
    /// `hosts.release` or the current stable Debian.
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
}
