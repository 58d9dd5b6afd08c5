//! `tether-host`: wires the pieces together and runs until told to stop.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

use super::control::{control_router, health_router, FlowStarted, StatusDocument};
use super::hub::{Hub, OAuthCallback};
use super::instance::{self, InstanceInfo, InstancePaths};
use super::oauth_flows::{FlowStatus, PendingFlows, FLOW_TTL_MS};

/// Overrides the 5-minute lifetime of `--via-host` logins, in seconds (for tests and slow setups).
pub const FLOW_TTL_ENV: &str = "TETHER_HOST_FLOW_TTL_SECS";
/// Open connections the `/health` port serves at once; idle ones time out.
const HEALTH_CONNECTIONS: usize = 32;
use super::relay_client::{self, RelayTarget};
use super::state::HostState;
use super::supervisor;
use crate::auth::config_store::ConfigStore;
use crate::auth::credential::Credential;
use crate::auth::discovery::discover;
use crate::auth::login::{authorize_url, save_sign_in, SignIn};
use crate::auth::refresh::OAuthAccount;
use crate::auth::relay_token::{CredentialSource, RelayTokenProvider};
use crate::auth::retry::RetryPolicy;
use crate::auth::token_endpoint::exchange_code;
use crate::auth::{http_client, now_ms};
use crate::settings::Settings;

/// One running host service.
pub struct Service {
    /// Environment.
    pub settings: Settings,
    /// Organization served.
    pub org: String,
    /// Host id announced to the relay.
    pub host_id: String,
    /// Health port.
    pub port: u16,
    /// The switchboard.
    pub hub: Arc<Hub>,
    /// Pending `--via-host` logins.
    pub flows: PendingFlows,
    shutdown: Notify,
    stop_ptyd: AtomicBool,
    http: reqwest::Client,
}

impl Service {
    /// The control API's `/status`.
    pub fn status(&self) -> StatusDocument {
        StatusDocument {
            pid: std::process::id(),
            port: self.port,
            organization_id: self.org.clone(),
            host_id: self.host_id.clone(),
            version: crate::version::VERSION.into(),
            ptyd_pid: self.hub.ptyd_pid(),
            manager: crate::install::manager().into(),
            state: self.hub.state.snapshot(),
        }
    }

    /// Asks the service to stop; with `stop_ptyd`, the pty daemon (and its terminals) too.
    pub fn request_shutdown(&self, stop_ptyd: bool) {
        self.stop_ptyd.store(stop_ptyd, Ordering::SeqCst);
        self.shutdown.notify_one();
    }

    /// The relay's URL for browser redirects to this host (docs/PROTOCOL.md).
    fn callback_url(&self) -> String {
        let http = crate::settings::relay_http_url(&self.settings.relay_url);
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
    async fn complete_flow(&self, callback: OAuthCallback) {
        let (verifier, redirect_uri) = match self.flows.claim(&callback.state, now_ms()) {
            Ok(claimed) => claimed,
            Err(why) => {
                tracing::warn!("ignoring an oauth.callback: {why}");
                return;
            }
        };
        let outcome = async {
            if let Some(error) = callback.error {
                anyhow::bail!("the authorization server answered {error}");
            }
            let code = callback
                .code
                .context("the callback carried neither a code nor an error")?;
            let endpoints = discover(&self.http, &self.settings.api_url).await?;
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

/// A stable id for this machine's host service, kept in `$TETHER_HOME/host-id`.
fn host_id(home: &Path) -> String {
    let path = home.join("host-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if !id.is_empty() {
            return id;
        }
    }
    let id = format!(
        "host_{}",
        CsrfToken::new_random()
            .secret()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect::<String>()
    );
    let _ = std::fs::write(&path, &id);
    id
}

/// Runs the host service for `org` until shutdown.
pub async fn run(settings: Settings, org: String, port: u16) -> anyhow::Result<()> {
    let store = ConfigStore::new(&settings.home);
    store.ensure_home()?;
    let paths = InstancePaths::new(&settings.home, &org);
    let _lock = instance::try_lock(&paths)?;
    let ptyd = supervisor::resolve_ptyd()?;

    let health_listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} for /health"))?;
    let port = health_listener.local_addr()?.port();
    // We hold the instance lock, so an existing control socket is stale.
    let _ = std::fs::remove_file(&paths.control_socket);
    let control_listener = crate::private_socket::bind(&paths.control_socket)
        .with_context(|| format!("cannot listen on {}", paths.control_socket.display()))?;

    let http = http_client();
    let source = match &settings.api_key {
        Some(key) => CredentialSource::Given(Credential::classify(key.clone())),
        None => CredentialSource::Stored(OAuthAccount {
            store,
            api_url: settings.api_url.clone(),
            http: http.clone(),
        }),
    };
    let provider = Arc::new(RelayTokenProvider::new(
        http.clone(),
        settings.api_url.clone(),
        source,
        RetryPolicy::default(),
    ));
    let hub = Hub::new(Arc::new(HostState::default()));
    let host_id = host_id(&settings.home);
    let service = Arc::new(Service {
        settings: settings.clone(),
        org: org.clone(),
        host_id: host_id.clone(),
        port,
        hub: hub.clone(),
        flows: PendingFlows::with_ttl(
            std::env::var(FLOW_TTL_ENV)
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
                .map(|s| s * 1000)
                .unwrap_or(FLOW_TTL_MS),
        ),
        shutdown: Notify::new(),
        stop_ptyd: AtomicBool::new(false),
        http,
    });

    let (callback_tx, mut callback_rx) = mpsc::unbounded_channel();
    hub.set_oauth_callbacks(callback_tx);
    let flows_service = service.clone();
    tokio::spawn(async move {
        while let Some(callback) = callback_rx.recv().await {
            let service = flows_service.clone();
            tokio::spawn(async move { service.complete_flow(callback).await });
        }
    });
    tokio::spawn(supervisor::supervise(
        hub.clone(),
        ptyd,
        paths.ptyd_socket.clone(),
    ));
    let target = RelayTarget {
        relay_url: settings.relay_url.clone(),
        organization_id: org.clone(),
        host_id: host_id.clone(),
    };
    tokio::spawn(relay_client::run(hub.clone(), provider, target));
    let health_app = health_router(service.clone());
    tokio::spawn(crate::http_server::serve(
        health_listener,
        health_app,
        HEALTH_CONNECTIONS,
    ));
    let control_app = control_router(service.clone());
    tokio::spawn(async move {
        axum::serve(
            crate::private_socket::SameUserListener(control_listener),
            control_app,
        )
        .await
    });

    instance::write_info(
        &paths,
        &InstanceInfo {
            pid: std::process::id(),
            port,
            organization_id: org.clone(),
            host_id,
            version: crate::version::VERSION.into(),
        },
    )
    .with_context(|| format!("cannot write {}", paths.state.display()))?;
    tracing::info!(org = %org, port, pid = std::process::id(), "tether-host running");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = service.shutdown.notified() => tracing::info!("shutdown requested"),
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down (terminals keep running in tether-ptyd)"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down (terminals keep running in tether-ptyd)"),
    }
    if service.stop_ptyd.load(Ordering::SeqCst) {
        if let Some(pid) = hub.ptyd_pid() {
            tracing::info!(pid, "stopping tether-ptyd");
            let _ = crate::process::signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    let _ = std::fs::remove_file(&paths.control_socket);
    let _ = std::fs::remove_file(&paths.state);
    Ok(())
}
