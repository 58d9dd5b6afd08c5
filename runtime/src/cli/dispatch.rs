//! Which function runs each command of the `tether` CLI.

use super::{auth, doctor, host, self_update, AuthCommand, Command, HostCommand};
use crate::settings::Settings;

/// Whether `command` talks to the API or the relay (doctor reports plaintext itself).
pub fn uses_the_network(command: &Command) -> bool {
    matches!(
        command,
        Command::Auth(_) | Command::Host(HostCommand::Start { .. } | HostCommand::Install { .. })
    )
}

/// Runs one parsed command of the `tether` CLI.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    match command {
        Command::Auth(AuthCommand::Login {
            no_browser,
            via_host,
            device,
            json,
        }) => {
            if via_host {
                auth::login_via_host(settings, no_browser, json).await
            } else {
                auth::login(settings, no_browser, device, json).await
            }
        }
        Command::Auth(AuthCommand::Logout) => auth::logout(settings).await,
        Command::Auth(AuthCommand::Status { json }) => auth::status(settings, json).await,
        Command::Host(HostCommand::Start { daemon, port, org }) => {
            host::start(settings, daemon, port, org).await
        }
        Command::Host(HostCommand::Stop { org }) => host::stop(settings, org).await,
        Command::Host(HostCommand::Status { json, org }) => host::status(settings, json, org).await,
        Command::Host(HostCommand::Logs { follow, org }) => host::logs(settings, follow, org).await,
        Command::Host(HostCommand::Install {
            org,
            system,
            user,
            print,
        }) => {
            let org = host::resolve_org(settings, org).await?;
            super::install::install(settings, &org, user.as_deref().filter(|_| system), print)
        }
        Command::Host(HostCommand::Uninstall { org, system }) => {
            let org = host::resolve_org(settings, org).await?;
            super::install::uninstall(settings, &org, system)
        }
        Command::Doctor { json } => doctor::run(settings, json).await,
        Command::SelfUpdate {
            check,
            version,
            rollback,
        } => {
            let request = self_update::Request {
                check,
                version,
                rollback,
            };
            self_update::run(settings, request).await
        }
        Command::Completions { shell } => {
            use std::io::Write;
            // A reader that goes away early (`| head`) is not an error.
            let _ = std::io::stdout()
                .lock()
                .write_all(&super::completions(shell));
            Ok(())
        }
        Command::Manpage => {
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(&super::manpage());
            Ok(())
        }
    }
}
