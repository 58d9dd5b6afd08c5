//! `tether-harness`: run the reference servers by hand, or the conformance suite.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tether_harness::authserver::AuthServer;
use tether_harness::relay::Relay;
use tether_harness::{report, scenarios};

/// tether's conformance harness.
#[derive(Debug, Parser)]
#[command(name = "tether-harness", version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference authorization server and relay until interrupted.
    Serve {
        /// Address for the authorization server.
        #[arg(long, default_value = "127.0.0.1:0")]
        api_listen: String,
        /// Address for the relay.
        #[arg(long, default_value = "127.0.0.1:0")]
        relay_listen: String,
    },
    /// Run the conformance scenarios and print a verdict table.
    E2e {
        /// Only scenarios whose id contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Only the scenarios that need no server-side knobs.
        #[arg(long)]
        black_box: bool,
        /// Scenarios run at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Command::Serve {
            api_listen,
            relay_listen,
        } => serve(&api_listen, &relay_listen).await,
        Command::E2e {
            filter,
            junit,
            black_box,
            parallel,
        } => {
            let selected: Vec<_> = scenarios::all()
                .into_iter()
                .filter(|s| filter.as_deref().is_none_or(|f| s.id.contains(f)))
                .filter(|s| !black_box || s.black_box)
                .collect();
            if selected.is_empty() {
                anyhow::bail!("no scenario matches");
            }
            let outcomes = report::run_all(selected, parallel).await;
            print!("{}", report::table(&outcomes));
            if let Some(path) = junit {
                std::fs::write(&path, report::junit(&outcomes))?;
                eprintln!("JUnit report: {}", path.display());
            }
            if outcomes.iter().any(|o| o.failure.is_some()) {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn serve(api_listen: &str, relay_listen: &str) -> anyhow::Result<()> {
    let auth = AuthServer::start_on(std::net::TcpListener::bind(api_listen)?).await?;
    let relay = Relay::start_on(std::net::TcpListener::bind(relay_listen)?, &auth.uri()).await?;
    auth.state()
        .extra_redirect_prefixes
        .push(format!("http://{}/oauth/callback/", relay.addr));
    let (key, session) = {
        let mut state = auth.state();
        (
            state.issue_api_key("user_alice", "org_a"),
            state.issue_session("user_alice"),
        )
    };
    println!("TETHER_API_URL={}", auth.uri());
    println!("TETHER_RELAY_URL={}", relay.url());
    println!("# alice (org_a, org_b) signs in at /oauth2/authorize without a password prompt");
    println!("# API key bound to org_a: TETHER_API_KEY={key}");
    println!("# session token of alice: {session}");
    println!("# Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
