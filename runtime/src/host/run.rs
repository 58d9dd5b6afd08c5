//! `tether-host`: wires the pieces together — instance lock, listeners, relay client,
//! pty daemon supervisor, `/health` and the control API — and runs until told to stop.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use oauth2::CsrfToken;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

use super::control::{control_router, health_router};
use super::hub::Hub;
use super::instance::{self, InstanceInfo, InstancePaths};
use super::oauth_flows::{PendingFlows, FLOW_TTL_MS};
use super::relay::dial::RelayTarget;
use super::relay::reconnect;
use super::service::Service;
use super::state::HostState;
use super::supervisor;
use crate::auth::config_store::ConfigStore;
use crate::auth::credential::Credential;
use crate::auth::refresh::OAuthAccount;
use crate::auth::relay_token::{CredentialSource, RelayTokenProvider};
use crate::auth::retry::RetryPolicy;
use crate::net::http_client;
use crate::settings::Settings;

use tether_contract::environment::FLOW_TTL_ENV;
/// Open connections the `/health` port serves at once; idle ones time out.
const HEALTH_CONNECTIONS: usize = 32;

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
pub async fn run(settings: Settings, org: crate::OrgId, port: u16) -> anyhow::Result<()> {
    // Taken now, before an update can rename the file we run from.
    let exe = std::env::current_exe().context("cannot find this executable's path")?;
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
    let provider = relay_token_provider(&settings, store, &http);
    let hub = Hub::new(Arc::new(HostState::default()));
    let host_id = host_id(&settings.home);
    let service = Arc::new(Service {
        settings: settings.clone(),
        org: org.clone(),
        host_id: host_id.clone(),
        port,
        hub: hub.clone(),
        flows: PendingFlows::with_ttl(flow_ttl_ms()),
        shutdown: Notify::new(),
        stop_ptyd: AtomicBool::new(false),
        restart: AtomicBool::new(false),
        started_at: crate::auth::now_ms(),
        http,
    });

    spawn_flow_completions(&service);
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
    tokio::spawn(reconnect::run(hub.clone(), provider, target));
    tokio::spawn(crate::http_server::serve(
        health_listener,
        health_router(service.clone()),
        HEALTH_CONNECTIONS,
    ));
    let control_app = control_router(service.clone());
    let control_listener = crate::private_socket::SameUserListener(control_listener);
    tokio::spawn(async move { axum::serve(control_listener, control_app).await });

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

    wait_for_shutdown(&service, &hub).await?;
    let _ = std::fs::remove_file(&paths.control_socket);
    let _ = std::fs::remove_file(&paths.state);
    if service.restart.load(Ordering::SeqCst) {
        return Err(reexec(&exe));
    }
    Ok(())
}

/// Replaces this process with the `tether-host` now at `exe`, keeping pid, arguments and
/// environment (the credential included: nobody outside has to read it). Every file and
/// socket is close-on-exec, so the new image takes the lock and the ports afresh; the pty
/// daemon and its terminals are not touched. Returns only on failure.
fn reexec(exe: &std::path::Path) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    tracing::info!(exe = %exe.display(), "restarting in place on the installed binary");
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::anyhow!("cannot re-execute {}: {err}", exe.display())
}

/// The relay token source: the given API key, or the stored OAuth sign-in.
fn relay_token_provider(
    settings: &Settings,
    store: ConfigStore,
    http: &reqwest::Client,
) -> Arc<RelayTokenProvider> {
    let source = match &settings.api_key {
        Some(key) => CredentialSource::Given(Credential::classify(key.clone())),
        None => CredentialSource::Stored(OAuthAccount {
            store,
            api_url: settings.api_url.clone(),
            http: http.clone(),
        }),
    };
    Arc::new(RelayTokenProvider::new(
        http.clone(),
        settings.api_url.clone(),
        source,
        RetryPolicy::default(),
    ))
}

/// How long a `--via-host` login may stay pending: [`FLOW_TTL_ENV`] or 5 minutes.
fn flow_ttl_ms() -> i64 {
    std::env::var(FLOW_TTL_ENV)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .map(|s| s * 1000)
        .unwrap_or(FLOW_TTL_MS)
}

/// Completes each relayed OAuth callback in a task of its own.
fn spawn_flow_completions(service: &Arc<Service>) {
    let (callback_tx, mut callback_rx) = mpsc::unbounded_channel();
    service.hub.oauth.install(callback_tx);
    let service = service.clone();
    tokio::spawn(async move {
        while let Some(callback) = callback_rx.recv().await {
            let service = service.clone();
            tokio::spawn(async move { service.complete_flow(callback).await });
        }
    });
}

/// Waits for a shutdown request, SIGTERM or Ctrl-C; stops the pty daemon only when asked to.
async fn wait_for_shutdown(service: &Service, hub: &Hub) -> anyhow::Result<()> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = service.shutdown.notified() => tracing::info!("shutdown requested"),
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down (terminals keep running in tether-ptyd)"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down (terminals keep running in tether-ptyd)"),
    }
    if service.stop_ptyd.load(Ordering::SeqCst) {
        if let Some(pid) = hub.ptyd.pid() {
            tracing::info!(pid, "stopping tether-ptyd");
            let _ = crate::process::signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    Ok(())
}
