//! `tether-host`: the host service. Started by `tether host start`; runs until stopped.

use clap::Parser;
use tether::settings::Settings;
use tether_contract::environment::API_KEY_ENV;

/// tether host service: dials out to the relay and serves terminals from tether-ptyd.
#[derive(Debug, Parser)]
#[command(name = "tether-host", version = tether::version::LONG_VERSION, about)]
struct Args {
    /// Organization to serve (default: the stored one, else the API key's bound org, as
    /// `tether host start` picks it; the container image relies on this).
    #[arg(long)]
    org: Option<String>,
    /// Port for /health on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn main() {
    let args = Args::parse();
    // A terminal's shell runs as our uid: keep it from reading our /proc/<pid>/environ (the
    // API key) and memory. Reset by execve, so tether-ptyd and the shells are unaffected.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("tether-host: warning: cannot mark the process undumpable: {e}");
    }
    // Checked before anything else: a bad `--org` is a usage error, not a network one.
    let org = match args.org.as_deref().map(tether::OrgId::parse).transpose() {
        Ok(org) => org,
        Err(e) => {
            eprintln!("tether-host: {e}");
            std::process::exit(1);
        }
    };
    // The API key comes only from the environment, never argv, so `ps` cannot show it.
    let settings = Settings::from_env(
        std::env::var(API_KEY_ENV)
            .ok()
            .map(tether::auth::Secret::new),
    );
    for url in [&settings.api_url, &settings.relay_url] {
        if let Err(refused) = tether::net::check_plaintext(url) {
            eprintln!("tether-host: {refused}");
            std::process::exit(2);
        }
    }
    tether::daemon::run("tether-host", async move {
        let org = match org {
            Some(org) => org,
            None => tether::cli::resolve_org(&settings, None).await?,
        };
        tether::host::run(settings, org, args.port).await
    });
}
