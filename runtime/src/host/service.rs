//! The running host service's state and what it does for the control API: its status
//! document, stopping, and `--via-host` logins. `run.rs` wires it up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::sync::Notify;

use super::control::api::FlowStatus;
use super::control::api::{FlowStarted, StatusDocument};
use super::hub::{Hub, OAuthCallback};
use super::oauth_flows::PendingFlows;
use crate::auth::config_store::ConfigStore;
use crate::auth::discovery::discover;
use crate::auth::login::{authorize_url, check_iss, save_sign_in, SignIn};
use crate::auth::token_endpoint::exchange_code;
use crate::auth::{now_ms, printable};
use crate::settings::Settings;

/// One running host service.
pub struct Service {
    /// Where its state is and which servers it talks to.
    pub settings: Settings,
    /// Organization served.
    pub org: crate::OrgId,
    /// Host id announced to the relay.
    pub host_id: String,
    /// Health port.
    pub port: u16,
    /// The switchboard.
    pub hub: Arc<Hub>,
    /// Pending `--via-host` logins.
    pub flows: PendingFlows,
    /// Notified when the control API asks the service to stop.
    pub(super) shutdown: Notify,
    /// Whether stopping also stops the pty daemon.
    pub(super) stop_ptyd: AtomicBool,
    /// Whether stopping re-executes the service in place.
    pub(super) restart: AtomicBool,
    /// When the service started, unix ms.
    pub(super) started_at: i64,
    /// HTTP client for the API.
    pub(super) http: reqwest::Client,
}

impl Service {
    /// The control API's `/status`.
    pub fn status(&self) -> StatusDocument {
        StatusDocument {
            pid: std::process::id(),
            port: self.port,
            organization_id: self.org.to_string(),
            host_id: self.host_id.clone(),
            version: crate::version::VERSION.into(),
            ptyd_pid: self.hub.ptyd.pid(),
            ptyd_version: self.hub.ptyd.version(),
            ptyd_exe: self.hub.ptyd.pid().and_then(exe_of),
            manager: super::control::api::Manager::of_this_process(),
            started_at: self.started_at,
            state: self.hub.state.snapshot(),
            metrics: crate::metrics::global().snapshot(),
        }
    }

    /// Upgrades the pty daemon in place to the `tether-ptyd` beside this service, unless it
    /// already runs that version from that file; waits (at most 8 s) for the outcome.
    pub async fn upgrade_ptyd(&self) -> Result<super::control::api::PtydUpgraded, String> {
        let ours = crate::version::VERSION;
        let current = |hub: &Hub| {
            let pid = hub.ptyd.pid()?;
            let exe = exe_of(pid);
            let replaced = exe
                .as_deref()
                .is_none_or(|e| e.ends_with(" (deleted)") || e.ends_with(".old"));
            (hub.ptyd.version().as_deref() == Some(ours) && !replaced).then(|| {
                super::control::api::PtydUpgraded {
                    pid,
                    version: ours.to_string(),
                    exe,
                }
            })
        };
        // A service that has just started, or that is upgrading an older daemon on its own,
        // gets its daemon back first (at most 8 s): a second upgrade meanwhile would fail.
        let settle = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
        while (self.hub.ptyd.pid().is_none() || self.hub.upgrade_in_progress())
            && tokio::time::Instant::now() < settle
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        if let Some(done) = current(&self.hub) {
            return Ok(done);
        }
        let path = super::supervisor::resolve_ptyd().map_err(|e| e.to_string())?;
        self.hub.upgrade_ptyd(&path);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if let Some(why) = self.hub.upgrade_refusal() {
                return Err(why);
            }
            // Done once the old image's connection has ended and the new one is connected
            // (right after `execve` the old connection still names the same pid).
            if let Some(done) = current(&self.hub).filter(|_| !self.hub.upgrade_in_progress()) {
                return Ok(done);
            }
            if tokio::time::Instant::now() > deadline {
                return Err("tether-ptyd did not come back upgraded within 8 s".into());
            }
        }
    }

    /// Asks the service to stop; with `stop_ptyd`, the pty daemon (and its terminals) too.
    pub fn request_shutdown(&self, request: &super::control::api::ShutdownRequest) {
        self.stop_ptyd.store(request.stop_ptyd, Ordering::SeqCst);
        self.restart
            .store(request.restart && !request.stop_ptyd, Ordering::SeqCst);
        self.shutdown.notify_one();
    }

    /// The relay's URL for browser redirects to this host (docs/PROTOCOL.md).
    fn callback_url(&self) -> String {
        let http = tether_contract::relay_protocol::relay_http_url(&self.settings.relay_url);
        format!("{http}/oauth/callback/{}/{}", self.org, self.host_id)
    }

    /// Starts a `--via-host` login: PKCE and state kept here, the URL handed to the CLI.
    pub async fn start_flow(&self) -> anyhow::Result<FlowStarted> {
        let endpoints = discover(&self.http, &self.settings.api_url).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random().secret().clone();
        let redirect_uri = self.callback_url();
        let url = authorize_url(
            &endpoints,
            &self.settings.api_url,
            &redirect_uri,
            &state,
            challenge.as_str(),
        )?;
        let now = now_ms();
        self.flows
            .insert(state.clone(), verifier.secret().clone(), redirect_uri, now);
        Ok(FlowStarted {
            state,
            url,
            expires_at: now + self.flows.ttl_ms(),
        })
    }

    /// Completes a flow from its `oauth.callback`.
    pub(super) async fn complete_flow(&self, callback: OAuthCallback) {
        let (verifier, redirect_uri) = match self.flows.claim(&callback.state, now_ms()) {
            Ok(claimed) => claimed,
            Err(why) => {
                tracing::warn!("ignoring an oauth.callback: {why}");
                return;
            }
        };
        let outcome = async {
            // Checked before the error and the code, as in the loopback flow.
            let endpoints = discover(&self.http, &self.settings.api_url).await?;
            let expected = endpoints
                .issuer
                .as_deref()
                .unwrap_or(&self.settings.api_url);
            check_iss(callback.iss.as_deref(), expected, endpoints.iss_in_response)
                .map_err(anyhow::Error::msg)?;
            if let Some(error) = callback.error {
                // The relay passes the browser's redirect on: anyone's input.
                anyhow::bail!("the authorization server answered {}", printable(&error));
            }
            let code = callback
                .code
                .context("the callback carried neither a code nor an error")?;
            let tokens = exchange_code(
                &self.http,
                &endpoints.token,
                &code,
                &redirect_uri,
                &verifier,
                &self.settings.api_url,
            )
            .await
            .map_err(|f| anyhow::anyhow!("code exchange failed: {f}"))?;
            let sign_in = SignIn::from_response(tokens, now_ms());
            save_sign_in(
                &ConfigStore::new(&self.settings.home),
                &self.settings.api_url,
                &sign_in,
                &self.http,
                &endpoints,
            )
            .await?;
            anyhow::Ok(())
        }
        .await;
        let status = match outcome {
            Ok(()) => FlowStatus::Complete,
            Err(e) => FlowStatus::Error {
                error: format!("{e:#}"),
            },
        };
        tracing::info!(?status, "login via host finished");
        self.flows.finish(&callback.state, status);
    }
}

/// The binary `pid` runs from, as `/proc/<pid>/exe` names it.
fn exe_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.display().to_string())
}
