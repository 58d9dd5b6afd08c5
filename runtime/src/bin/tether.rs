//! `tether`: the CLI. Parses arguments, runs the command, maps errors to exit codes.

use clap::Parser;
use tether::auth::AuthError;
use tether::cli::{self, Cli};
use tether::settings::Settings;

fn main() {
    let args = Cli::parse();
    tether::logging::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let settings = Settings::from_env(args.api_key.clone());
    if cli::uses_the_network(&args.command) {
        // Contract section 9: refuse before any connection, so no token leaves in cleartext.
        for url in [&settings.api_url, &settings.relay_url] {
            if let Err(refused) = tether::net::check_plaintext(url) {
                eprintln!("error: {refused}");
                std::process::exit(2);
            }
        }
    }
    let result = runtime.block_on(cli::run(args.command, &settings));
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        let code = err
            .downcast_ref::<AuthError>()
            .map(AuthError::exit_code)
            .unwrap_or(1);
        std::process::exit(code);
    }
}
