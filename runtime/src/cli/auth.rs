//! `tether auth login | logout | status`.

use super::status_report::{current_status, StatusReport};
use crate::auth::config_store::ConfigStore;
use crate::auth::credential::Credential;
use crate::auth::device::{self, no_browser_reason};
use crate::auth::discovery::discover;
use crate::auth::error::ConfigError;
use crate::auth::login::{login as browser_login, save_sign_in, SignIn};
use crate::auth::token_endpoint::revoke;
use crate::auth::{now_ms, printable, AuthError};
use crate::net::http_client;
use crate::settings::Settings;

/// `tether auth status [--json]`.
pub async fn status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let report = current_status(settings).await?;
    print_report(&report, json, "Signed in");
    Ok(())
}

fn print_report(report: &StatusReport, json: bool, headline: &str) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_else(|_| "{}".into())
        );
        return;
    }
    match &report.user {
        Some(user) => {
            // Server text: printable only (contract section 1).
            let who = printable(user.email.as_deref().unwrap_or(&user.id));
            println!("{headline} as {who} (user {})", printable(&user.id));
        }
        None => println!("{headline} (the server does not say as whom)"),
    }
    println!("  method:        {}", report.method);
    println!(
        "  organization:  {}",
        report.organization_id.as_deref().unwrap_or("(none)")
    );
    println!("  organizations: {}", report.organization_ids.join(", "));
    match report.expires_at {
        Some(ms) => {
            let left = (ms - now_ms()) / 1000;
            println!(
                "  expires:       in {}m{:02}s (unix ms {ms})",
                left.max(0) / 60,
                left.max(0) % 60
            );
        }
        None => println!("  expires:       never (API key)"),
    }
}

/// `tether auth login [--no-browser] [--device] [--json]`.
pub async fn login(
    settings: &Settings,
    no_browser: bool,
    device: bool,
    json: bool,
) -> anyhow::Result<()> {
    let store = ConfigStore::new(&settings.home);
    match store.load() {
        Ok(_) => {}
        Err(ConfigError::Corrupt { path, cause }) => {
            let aside = store.move_aside(now_ms())?;
            eprintln!(
                "{} was corrupt ({cause}); moved it to {}",
                path.display(),
                aside.display()
            );
        }
        Err(e) => return Err(e.into()),
    }
    let http = http_client();
    let endpoints = discover(&http, &settings.api_url).await?;
    // --no-browser asks for the URL to copy; otherwise a machine that cannot open a
    // browser signs in with a device code.
    let chosen = match (device, no_browser) {
        (true, _) => Some(None),
        (false, false) => no_browser_reason(|name| std::env::var(name).ok()).map(Some),
        (false, true) => None,
    };
    let sign_in = match chosen {
        Some(reason) => {
            if let Some(reason) = reason {
                eprintln!(
                    "No browser can open here ({reason}): signing in with a device code instead."
                );
            }
            device_login(&http, &settings.api_url, &endpoints).await?
        }
        None => {
            let show = |url: &str| {
                if no_browser {
                    eprintln!("Open this URL in a browser to sign in:\n\n  {url}\n");
                } else {
                    eprintln!(
                        "Opening your browser to sign in. If it does not open, visit:\n\n  {url}\n"
                    );
                }
            };
            browser_login(
                &http,
                &settings.api_url,
                &endpoints,
                !no_browser,
                show,
                now_ms,
            )
            .await?
        }
    };
    let identity = save_sign_in(&store, &settings.api_url, &sign_in, &http, &endpoints).await?;
    let report = StatusReport {
        method: Credential::classify(sign_in.auth.access_token.clone()).method(),
        user: identity.user,
        organization_id: identity.organization_id,
        organization_ids: identity.organization_ids,
        expires_at: Some(sign_in.auth.expires_at),
    };
    print_report(&report, json, "Signed in");
    Ok(())
}

/// The device flow with its instructions on stderr (a QR code too on a terminal).
async fn device_login(
    http: &reqwest::Client,
    api: &str,
    endpoints: &crate::auth::discovery::Endpoints,
) -> Result<SignIn, AuthError> {
    use std::io::IsTerminal;
    let started = device::start(http, api, endpoints).await?;
    eprintln!(
        "To sign in, open {} on any device and enter the code:\n\n  {}\n",
        printable(&started.verification_uri),
        printable(&started.user_code)
    );
    if let Some(complete) = &started.verification_uri_complete {
        eprintln!("Or open {}", printable(complete));
        if std::io::stderr().is_terminal() {
            if let Some(qr) = device::qr_code(complete) {
                eprintln!("{qr}");
            }
        }
    }
    eprintln!(
        "Waiting for approval (the code expires in {} min)...",
        started.expires_in.div_ceil(60)
    );
    device::wait_for_approval(http, api, endpoints, &started, now_ms).await
}

/// `tether auth logout`: revoke the refresh token (best effort), then forget the tokens.
pub async fn logout(settings: &Settings) -> anyhow::Result<()> {
    let store = ConfigStore::new(&settings.home);
    let _lock = store.lock_async().await?;
    let mut config = store.load()?;
    let Some(auth) = config.auth.take() else {
        eprintln!("Not signed in.");
        return Ok(());
    };
    if let Some(refresh_token) = &auth.refresh_token {
        let api = config
            .api_url
            .clone()
            .unwrap_or_else(|| settings.api_url.clone());
        let http = http_client();
        let outcome = match discover(&http, &api).await {
            Ok(endpoints) => match endpoints.revocation {
                Some(url) => revoke(&http, &url, refresh_token)
                    .await
                    .map_err(|e| format!("{url}: {e}")),
                None => Err("the server advertises no revocation endpoint".into()),
            },
            Err(e) => Err(e.to_string()),
        };
        if let Err(why) = outcome {
            eprintln!(
                "warning: could not revoke the refresh token ({why}); it was forgotten locally"
            );
        }
    }
    store.save(&config)?;
    eprintln!("Signed out.");
    Ok(())
}

/// `tether auth login --via-host`: the running host service keeps the flow and receives
/// the callback through the relay; this process opens the URL and polls until it ends.
pub async fn login_via_host(
    settings: &Settings,
    no_browser: bool,
    json: bool,
) -> anyhow::Result<()> {
    use crate::host::control;
    use crate::host::control::api::FlowStatus;
    use crate::host::instance::{is_running, InstancePaths};

    let org = super::host::resolve_org(settings, None).await?;
    let paths = InstancePaths::new(&settings.home, &org);
    if !is_running(&paths) {
        anyhow::bail!(
            "no host service is running for {org}: start one with `tether host start --daemon`"
        );
    }
    let started = control::client::start_flow(&paths.control_socket).await?;
    if no_browser {
        eprintln!(
            "Open this URL in a browser to sign in:\n\n  {}\n",
            started.url
        );
    } else {
        eprintln!(
            "Opening your browser to sign in. If it does not open, visit:\n\n  {}\n",
            started.url
        );
        if let Err(e) = webbrowser::open(&started.url) {
            eprintln!("could not open a browser ({e}); open the URL above by hand");
        }
    }
    let outcome = loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let progress =
            control::client::flow_progress(&paths.control_socket, &started.state).await?;
        if progress.status != FlowStatus::Pending {
            break progress.status;
        }
    };
    if outcome == FlowStatus::Complete {
        let report = current_status(settings).await?;
        print_report(&report, json, "Signed in");
        return Ok(());
    }
    let status = outcome.word();
    if json {
        let answer = serde_json::json!({"status": status, "error": outcome.error()});
        println!("{answer}");
    }
    let why = outcome
        .error()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    anyhow::bail!("login via the host service ended {status}{why}")
}
