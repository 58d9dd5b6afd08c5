//! `tether`: the CLI. Parses arguments, runs the command, maps errors to exit codes.

use clap::Parser;
use tether::auth::AuthError;
use tether::cli::{self, AuthCommand, Cli, Command, HostCommand};
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
    if uses_the_network(&args.command) {
        // Contract section 9: refuse before any connection, so no token leaves in cleartext.
        for url in [&settings.api_url, &settings.relay_url] {
            if let Err(refused) = tether::net::plaintext::check(url) {
                eprintln!("error: {refused}");
                std::process::exit(2);
            }
        }
    }
    let result = runtime.block_on(run(args.command, &settings));
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        let code = err
            .downcast_ref::<AuthError>()
            .map(AuthError::exit_code)
            .unwrap_or(1);
        std::process::exit(code);
    }
}

/// Whether `command` talks to the API or the relay (doctor reports plaintext itself).
fn uses_the_network(command: &Command) -> bool {
    matches!(
        command,
        Command::Auth(_) | Command::Host(HostCommand::Start { .. } | HostCommand::Install { .. })
    )
}

async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    match command {
        Command::Auth(AuthCommand::Login {
            no_browser,
            via_host,
            device,
            json,
        }) => {
            if via_host {
                cli::auth::login_via_host(settings, no_browser, json).await
            } else {
                cli::auth::login(settings, no_browser, device, json).await
            }
        }
        Command::Auth(AuthCommand::Logout) => cli::auth::logout(settings).await,
        Command::Auth(AuthCommand::Status { json }) => cli::auth::status(settings, json).await,
        Command::Host(HostCommand::Start { daemon, port, org }) => {
            cli::host::start(settings, daemon, port, org).await
        }
        Command::Host(HostCommand::Stop { org }) => cli::host::stop(settings, org).await,
        Command::Host(HostCommand::Status { json, org }) => {
            cli::host::status(settings, json, org).await
        }
        Command::Host(HostCommand::Logs { follow, org }) => {
            cli::host::logs(settings, follow, org).await
        }
        Command::Host(HostCommand::Install {
            org,
            system,
            user,
            print,
        }) => {
            let org = cli::host::resolve_org(settings, org).await?;
            tether::install::install(settings, &org, user.as_deref().filter(|_| system), print)
        }
        Command::Host(HostCommand::Uninstall { org, system }) => {
            let org = cli::host::resolve_org(settings, org).await?;
            tether::install::uninstall(settings, &org, system)
        }
        Command::Doctor { json } => cli::doctor::run(settings, json).await,
        Command::SelfUpdate {
            check,
            version,
            rollback,
        } => {
            let request = cli::self_update::Request {
                check,
                version,
                rollback,
            };
            cli::self_update::run(settings, request).await
        }
        Command::Completions { shell } => {
            use std::io::Write;
            // A reader that goes away early (`| head`) is not an error.
            let _ = std::io::stdout().lock().write_all(&cli::completions(shell));
            Ok(())
        }
        Command::Manpage => {
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(&cli::manpage());
            Ok(())
        }
    }
}
