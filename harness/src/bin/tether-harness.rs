//! `tether-harness`: run the reference servers by hand, or the conformance suite.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tether_harness::authserver::AuthServer;
use tether_harness::relay::Relay;
use tether_harness::tls::{Pki, Tls};
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
        /// The API URL clients use, when it differs from the listen address (a container's name).
        #[arg(long)]
        public_api_url: Option<String>,
        /// The relay URL clients use, when it differs from the listen address.
        #[arg(long)]
        public_relay_url: Option<String>,
        /// Another name the servers' certificate covers (a container's name); repeatable.
        #[arg(long = "tls-name")]
        tls_names: Vec<String>,
        /// Keep the CA key here and reuse it, so a restarted harness keeps its CA.
        #[arg(long)]
        ca_dir: Option<std::path::PathBuf>,
        /// Serve plain http:// and ws:// (only loopback clients accept that).
        #[arg(long)]
        plaintext: bool,
        /// Serve the files under this directory at <api>/releases/<path> (release directories
        /// for install.sh and tether self-update).
        #[arg(long)]
        files: Option<std::path::PathBuf>,
    },
    /// Loopback benchmarks of the runtime; prints numbers next to their targets.
    Bench {
        /// Size of the file `cat` pushes through the relay, in MiB.
        #[arg(long, default_value_t = 100)]
        mib: usize,
        /// Keystroke echo samples.
        #[arg(long, default_value_t = 1000)]
        samples: usize,
        /// Terminals in the burst (`session.open` every 2 ms); 0 skips it.
        #[arg(long, default_value_t = 1000)]
        terminals: usize,
        /// Where the results file goes.
        #[arg(long, default_value = "target/bench/results.json")]
        results: std::path::PathBuf,
    },
    /// The soak: the real binaries for N minutes with chaos on a seeded schedule.
    Soak {
        /// How long, in minutes.
        #[arg(long, default_value_t = 2.0)]
        minutes: f64,
        /// The chaos schedule's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where soak.json and soak.svg go.
        #[arg(long, default_value = "target/soak")]
        report: std::path::PathBuf,
    },
    /// Run the conformance scenarios and print a verdict table.
    E2e {
        /// Only scenarios whose id contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write the conformance report here: index.html, results.json, junit.xml.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Only the scenarios that need no server-side knobs.
        #[arg(long)]
        black_box: bool,
        /// Scenarios run at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Run the whole suite this many times and report, per scenario, how many runs failed.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Which side to test: the servers (`server.*`), the client (everything else), or both.
        #[arg(long, value_enum, default_value_t = TargetProfile::All)]
        target_profile: TargetProfile,
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
            public_api_url,
            public_relay_url,
            tls_names,
            ca_dir,
            plaintext,
            files,
        } => {
            let pki = tether_harness::tls::pki_with(&tls_names, ca_dir.as_deref())?;
            let tls = if plaintext { Tls::Off } else { Tls::Good };
            serve(
                &api_listen,
                &relay_listen,
                public_api_url,
                public_relay_url,
                tls,
                pki,
                files.as_deref(),
            )
            .await
        }
        Command::Bench {
            mib,
            samples,
            terminals,
            results,
        } => {
            let options = tether_harness::bench::Options {
                mib,
                samples,
                terminals,
                results,
            };
            tether_harness::bench::run(options).await
        }
        Command::Soak {
            minutes,
            seed,
            report,
        } => {
            let options = tether_harness::soak::Options {
                minutes,
                seed,
                report,
            };
            tether_harness::soak::run(options).await
        }
        Command::E2e {
            filter,
            junit,
            report: report_dir,
            black_box,
            parallel,
            repeat,
            target_profile,
        } => {
            let selected: Vec<_> = scenarios::all()
                .into_iter()
                .filter(|s| filter.as_deref().is_none_or(|f| s.id.contains(f)))
                .filter(|s| !black_box || s.black_box)
                .filter(|s| target_profile.includes(s))
                .collect();
            if selected.is_empty() {
                anyhow::bail!("no scenario matches");
            }
            e2e(selected, parallel, repeat, report_dir, junit).await
        }
    }
}

/// Runs the selected scenarios `repeat` times, prints each run's table (and, repeated,
/// the failures per scenario), writes the reports asked for; exits 1 if any failed.
async fn e2e(
    selected: Vec<scenarios::Scenario>,
    parallel: usize,
    repeat: u32,
    report_dir: Option<PathBuf>,
    junit: Option<PathBuf>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut runs = Vec::new();
    for run in 1..=repeat {
        if repeat > 1 {
            println!("run {run} of {repeat}");
        }
        let outcomes = report::run_all(selected.clone(), parallel).await;
        print!("{}", report::table(&outcomes));
        runs.push(outcomes);
    }
    if repeat > 1 {
        print!("{}", report::failures_per_scenario(&runs));
    }
    if let Some(dir) = report_dir {
        let facts = report::files::RunFacts::of_this_run(started.elapsed());
        report::files::write(&dir, &report::one_per_scenario(&runs), &facts)?;
    }
    let outcomes: Vec<_> = runs.into_iter().flatten().collect();
    if let Some(path) = junit {
        std::fs::write(&path, report::junit(&outcomes))?;
        eprintln!("JUnit report: {}", path.display());
    }
    if outcomes.iter().any(|o| o.failure.is_some()) {
        std::process::exit(1);
    }
    Ok(())
}

/// Which side of the contract `e2e` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TargetProfile {
    /// The authorization server and relay (`server.*`).
    Server,
    /// tether itself, against the servers.
    Client,
    /// Both.
    All,
}

impl TargetProfile {
    fn includes(self, scenario: &scenarios::Scenario) -> bool {
        let server = matches!(scenario.run, scenarios::Run::ServerCheck);
        match self {
            TargetProfile::Server => server,
            TargetProfile::Client => !server,
            TargetProfile::All => true,
        }
    }
}

async fn serve(
    api_listen: &str,
    relay_listen: &str,
    public_api_url: Option<String>,
    public_relay_url: Option<String>,
    tls: Tls,
    pki: &Pki,
    files: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let auth = AuthServer::start_tls(std::net::TcpListener::bind(api_listen)?, tls).await?;
    if let Some(dir) = files {
        serve_files(&auth, dir).await?;
    }
    let api_url = public_api_url.unwrap_or_else(|| auth.uri());
    auth.state().issuer = api_url.clone();
    let relay = Relay::start_tls(std::net::TcpListener::bind(relay_listen)?, &api_url, tls).await?;
    let relay_url = public_relay_url.unwrap_or_else(|| relay.url());
    let relay_http = tether_contract::relay_protocol::relay_http_url(&relay_url);
    auth.state()
        .extra_redirect_prefixes
        .push(format!("{relay_http}/oauth/callback/"));
    let (key, session) = {
        let mut state = auth.state();
        (
            state.issue_api_key("user_alice", "org_a"),
            state.issue_session("user_alice"),
        )
    };
    // Written without println!: a reader that went away must not stop the servers.
    let trust = if tls == Tls::Off {
        String::new()
    } else {
        format!(
            "SSL_CERT_FILE={}\n# the harness CA (trust it with SSL_CERT_FILE; curl --cacert):\n{}",
            pki.ca_file().display(),
            pki.ca_pem()
        )
    };
    let text = format!(
        "{trust}TETHER_API_URL={api_url}\nTETHER_RELAY_URL={relay_url}\nTETHER_API_KEY={key}\n\
         # the API key is alice's, bound to org_a; alice signs in at /oauth2/authorize without a prompt\n\
         # a session token of alice: {session}\n\
         # open a terminal on a connected host: POST {relay_http}/debug/exec {{\"organizationId\":\"org_a\",\"input\":\"echo hi\",\"expect\":\"hi\"}}\n\
         # Ctrl-C to stop\n"
    );
    let mut stdout = std::io::stdout();
    let _ = std::io::Write::write_all(&mut stdout, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// Mounts every file under `root` at `/releases/<path relative to root>`.
async fn serve_files(auth: &AuthServer, root: &std::path::Path) -> anyhow::Result<()> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot read --files {}: {e}", dir.display()))?;
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let bytes = std::fs::read(&path)?;
                let url_path = format!("/releases/{}", rel.display());
                auth.serve_file(&url_path, bytes).await;
            }
        }
    }
    Ok(())
}
