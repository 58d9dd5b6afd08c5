//! The `tether` command line: clap definitions and one module per command group.

pub(crate) mod auth;
mod dispatch;
pub(crate) mod doctor;
pub(crate) mod host;
mod install;
pub(crate) mod self_update;
pub(crate) mod status_report;

pub use dispatch::{run, uses_the_network};
pub use host::resolve_org;
pub use self_update::restart_hosts;

use clap::{Parser, Subcommand};
use tether_contract::environment::API_KEY_ENV;

use crate::version::LONG_VERSION;

/// tether: open terminals on this machine from anywhere, through a relay.
#[derive(Debug, Parser)]
#[command(name = "tether", version = LONG_VERSION, about, propagate_version = true)]
pub struct Cli {
    /// API key (sk_live_…); wins over the stored sign-in.
    #[arg(
        long,
        global = true,
        env = API_KEY_ENV,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<crate::auth::secret::Secret>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in, sign out, and show who you are.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Run the host service that lets remote clients open terminals here.
    #[command(subcommand)]
    Host(HostCommand),
    /// Check the installation, the configuration, the sign-in and the servers.
    Doctor {
        /// Print exactly one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Update tether from its signed releases ($TETHER_DOWNLOAD_URL).
    #[command(disable_version_flag = true)]
    SelfUpdate {
        /// Only say whether a newer release is available.
        #[arg(long, conflicts_with = "rollback")]
        check: bool,
        /// Install exactly this version (older ones included).
        #[arg(long, value_name = "V", conflicts_with = "rollback")]
        version: Option<String>,
        /// Put back the files the last update replaced.
        #[arg(long)]
        rollback: bool,
    },
    /// Print the shell completion script (e.g. `tether completions bash > /etc/bash_completion.d/tether`).
    Completions {
        /// The shell.
        shell: CompletionShell,
    },
    /// Print the man page, tether(1), in roff (the packages install it).
    #[command(hide = true)]
    Manpage,
}

/// Shells `tether completions` writes for (contract section 11).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// The completion script for `shell` of the whole `tether` command line.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    use clap::CommandFactory;
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tether", &mut script);
    script
}

/// The man page tether(1) in roff, from the same definition as `--help`.
pub fn manpage() -> Vec<u8> {
    use clap::CommandFactory;
    let mut page = Vec::new();
    // Into memory, like the completions; writing to a Vec cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut page);
    page
}

/// `tether host …`
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Start the host service for an organization.
    Start {
        /// Run in the background; output goes to $TETHER_HOME/logs/host-<org>.log.
        #[arg(long)]
        daemon: bool,
        /// Port for /health on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Organization to serve (default: the signed-in one).
        #[arg(long)]
        org: Option<String>,
    },
    /// Stop the host service and its terminals.
    Stop {
        /// Organization (default: the signed-in one).
        #[arg(long)]
        org: Option<String>,
    },
    /// Show each organization's host service: running or not, relay and pty daemon state.
    Status {
        /// Print exactly one JSON document on stdout.
        #[arg(long)]
        json: bool,
        /// Only this organization.
        #[arg(long)]
        org: Option<String>,
    },
    /// Install the host service as a system service (systemd, launchd) and start it.
    Install {
        /// Organization (default: the signed-in one).
        #[arg(long)]
        org: Option<String>,
        /// A system unit instead of a user unit (needs --user and root).
        #[arg(long, requires = "user")]
        system: bool,
        /// The user a system unit runs as.
        #[arg(long, requires = "system")]
        user: Option<String>,
        /// Print what would be written and change nothing.
        #[arg(long)]
        print: bool,
    },
    /// Stop and remove what `host install` wrote.
    Uninstall {
        /// Organization (default: the signed-in one).
        #[arg(long)]
        org: Option<String>,
        /// The system unit instead of the user unit.
        #[arg(long)]
        system: bool,
    },
    /// Print the host service's log.
    Logs {
        /// Keep printing as the log grows.
        #[arg(short, long)]
        follow: bool,
        /// Organization (default: the signed-in one).
        #[arg(long)]
        org: Option<String>,
    },
}

/// `tether auth …`
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in with your browser (OAuth 2.0 + PKCE).
    Login {
        /// Print the sign-in URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Let the running host service receive the browser's callback through the relay.
        #[arg(long, conflicts_with = "device")]
        via_host: bool,
        /// Sign in with a code typed on another device (RFC 8628); chosen by itself when
        /// no browser can open here (no display, or an SSH session).
        #[arg(long)]
        device: bool,
        /// Print exactly one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Revoke the refresh token and forget the stored sign-in.
    Logout,
    /// Show who you are signed in as, in which organization, and until when.
    Status {
        /// Print exactly one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn the_api_key_never_shows_in_debug_output() {
        let cli = super::Cli::parse_from([
            "tether",
            "--api-key",
            "sk_live_debugsecret123456789",
            "doctor",
        ]);
        let debug = format!("{cli:?}");
        assert!(!debug.contains("debugsecret123456789"), "{debug}");
    }
}
