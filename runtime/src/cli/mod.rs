//! The `tether` command line: clap definitions and one module per command group.

pub mod auth;
pub mod logging;

use clap::{Parser, Subcommand};

use crate::version::LONG_VERSION;

/// tether: open terminals on this machine from anywhere, through a relay.
#[derive(Debug, Parser)]
#[command(name = "tether", version = LONG_VERSION, about, propagate_version = true)]
pub struct Cli {
    /// API key (sk_live_…); wins over the stored sign-in.
    #[arg(
        long,
        global = true,
        env = "TETHER_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

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
}

/// `tether auth …`
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Sign in with your browser (OAuth 2.0 + PKCE).
    Login {
        /// Print the sign-in URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
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
