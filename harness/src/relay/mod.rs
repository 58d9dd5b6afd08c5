//! The reference relay: hosts dial in at `/hosts/connect` with a JWT it verifies against
//! the authorization server's JWKS; it tells a connection `tokenExpired` when its JWT
//! expires, forwards terminals, `http.request` and `oauth.callback`, and gives tests a
//! client side ([`Relay::open_terminal`]) to use a host through it (contract section 4).

mod debug;
pub mod resume;
mod server;
mod shared;
mod stream;
pub mod terminal;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tether_contract::relay_protocol::{Control, TOKEN_EXPIRED};
use tokio::sync::{oneshot, watch, Notify};

pub use shared::ConnRecord;
pub use shared::TerminalEvent;
use shared::{wait_host, Hosts, Shared};
use terminal::open_terminal;
pub use terminal::Terminal;
use verify::Verifier;

use crate::lock::lock;
use crate::tls::accept::TlsListener;
use crate::tls::Tls;

/// Serves the relay's routes on `listener` until `stopped` turns true.
fn serve(
    listener: tokio::net::TcpListener,
    shared: &Arc<Shared>,
    server_config: Option<Arc<rustls::ServerConfig>>,
    failures: Arc<AtomicU32>,
    mut stopped: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = server::router(shared.clone());
    crate::server_runtime::spawn(async move {
        // Handshakes run concurrently; terminal traffic is many small frames, so the
        // accepted sockets have no Nagle delay (set in `accept::wrap`).
        let Ok(listener) = TlsListener::new(listener, server_config, failures) else {
            return;
        };
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
    })
}

/// Binds `addr` again once the previous listener has let go of it.
pub async fn bind_again(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    for _ in 0..100 {
        if let Ok(listener) = std::net::TcpListener::bind(addr) {
            return Ok(listener);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("cannot bind {addr} again")
}

/// A running relay.
pub struct Relay {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The certificate it presents.
    pub tls: Tls,
    tls_failures: Arc<AtomicU32>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Relay {
    /// Starts on a free loopback port over WSS, trusting tokens from the API at `api_url`.
    pub async fn start(api_url: &str) -> anyhow::Result<Relay> {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0")?, api_url).await
    }

    /// Starts on `listener` over WSS (a fixed port, or the same port again after [`Relay::stop`]).
    pub async fn start_on(listener: std::net::TcpListener, api_url: &str) -> anyhow::Result<Relay> {
        Self::start_tls(listener, api_url, Tls::Good).await
    }

    /// Starts on `listener` presenting a certificate of kind `tls`.
    pub async fn start_tls(
        listener: std::net::TcpListener,
        api_url: &str,
        tls: Tls,
    ) -> anyhow::Result<Relay> {
        let server_config = crate::tls::pki()?.server_config(tls)?;
        let listener = crate::server_runtime::listener(listener)?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            verifier: Verifier::new(api_url),
            hosts: Mutex::new(HashMap::new()),
            connections: Mutex::new(Vec::new()),
            changed: Notify::new(),
            next_conn: AtomicU64::new(1),
            stop: stop_rx.clone(),
            expiry_grace: Duration::from_secs(30),
            ping_every: Duration::from_secs(30),
            reading: watch::Sender::new(true),
            protocol_1: std::sync::atomic::AtomicBool::new(false),
            drop_connection: watch::Sender::new(None),
            refusing: std::sync::atomic::AtomicBool::new(false),
            transcript: crate::transcript::current(),
        });
        let tls_failures = Arc::new(AtomicU32::new(0));
        let task = serve(
            listener,
            &shared,
            server_config,
            tls_failures.clone(),
            stop_rx,
        );
        Ok(Relay {
            addr,
            tls,
            tls_failures,
            shared,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stops the relay (every connection closes, as at a deployment), waits `down`, and
    /// starts it again on the same port with the same state: the terminals, their counters
    /// and the unacknowledged input survive, as they would in a relay's shared store.
    pub async fn restart_keeping_state(&self, down: Duration) -> anyhow::Result<()> {
        self.stop_serving().await;
        tokio::time::sleep(down).await;
        self.stop.send_replace(false);
        let listener = crate::server_runtime::listener(bind_again(self.addr).await?)?;
        let server_config = crate::tls::pki()?.server_config(self.tls)?;
        *lock(&self.task) = Some(serve(
            listener,
            &self.shared,
            server_config,
            self.tls_failures.clone(),
            self.stop.subscribe(),
        ));
        Ok(())
    }

    /// `wss://127.0.0.1:PORT` (`ws://` without TLS): the `TETHER_RELAY_URL`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.tls.ws_scheme(), self.addr)
    }

    /// Breaks relay rules on purpose (the broken-server tests of the `server.*` checks).
    pub fn break_rules(&self, broken: verify::BrokenRelay) {
        *lock(&self.shared.verifier.broken) = broken;
    }

    /// TLS handshakes that failed so far (a client refused the certificate).
    pub fn tls_failures(&self) -> u32 {
        self.tls_failures.load(Ordering::SeqCst)
    }

    /// Stops listening and drops every connection, as a crashed relay would.
    pub async fn stop(&mut self) {
        self.stop_serving().await;
    }

    async fn stop_serving(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Every handshake so far.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.shared.connections()
    }

    /// The handshakes the relay accepted (`101`), in arrival order.
    pub fn accepted(&self) -> Vec<ConnRecord> {
        self.connections()
            .into_iter()
            .filter(|c| c.status == 101)
            .collect()
    }

    /// The first WebSocket upgrade the relay accepted.
    pub fn first_accepted(&self) -> anyhow::Result<ConnRecord> {
        self.accepted()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("the relay accepted no connection"))
    }

    /// Waits until a host of `org` is connected and has said hello; returns its id and hello.
    pub async fn wait_host(&self, org: &str, limit: Duration) -> anyhow::Result<(String, Value)> {
        wait_host(&self.shared, org, limit).await
    }

    /// Waits until `(org, host)` has a current connection numbered above `after`.
    pub async fn wait_reconnect(
        &self,
        org: &str,
        host: &str,
        after: u64,
        limit: Duration,
    ) -> anyhow::Result<(u64, Value)> {
        let key = (org.to_string(), host.to_string());
        let found = self.shared.wait_for(limit, |hosts| {
            let entry = hosts.get(&key)?;
            let (id, _) = entry.current.as_ref()?;
            (*id > after)
                .then(|| entry.hello.clone().map(|h| (*id, h)))
                .flatten()
        });
        found
            .await
            .with_context(|| format!("host {host} of {org} did not reconnect within {limit:?}"))
    }

    /// The number of the current connection of `(org, host)`.
    pub fn current_connection(&self, org: &str, host: &str) -> Option<u64> {
        self.shared
            .hosts()
            .get(&(org.to_string(), host.to_string()))
            .and_then(|e| e.current.as_ref().map(|(id, _)| *id))
    }

    /// Opens a terminal on a host (no `command`: the login shell) and waits for `session.opened`.
    pub async fn open_terminal(
        &self,
        org: &str,
        host: &str,
        command: Option<&str>,
    ) -> anyhow::Result<Terminal> {
        open_terminal(&self.shared, org, host, command, None).await
    }

    /// Sends `session.open` with the id given, however hostile, without waiting for an answer.
    pub fn request_terminal(
        &self,
        org: &str,
        host: &str,
        session: &str,
        command: Option<&str>,
    ) -> anyhow::Result<Terminal> {
        let rx = self.shared.register_terminal(org, host, session);
        self.shared.to_host_json(
            org,
            host,
            &Control::SessionOpen {
                session_id: session.into(),
                cols: 80,
                rows: 24,
                command: command.map(str::to_string),
            },
        )?;
        Ok(Terminal::new(self.shared.clone(), org, host, session, rx))
    }

    /// Waits until the host has sent at least `n` errors about no terminal; returns them all.
    pub async fn wait_unscoped_errors(
        &self,
        org: &str,
        host: &str,
        n: usize,
        limit: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let key = (org.to_string(), host.to_string());
        let errors = |hosts: &Hosts| {
            hosts
                .get(&key)
                .map(|e| e.errors.clone())
                .unwrap_or_default()
        };
        let enough = self
            .shared
            .wait_for(limit, |hosts| Some(errors(hosts)).filter(|e| e.len() >= n));
        match enough.await {
            Some(errors) => Ok(errors),
            None => {
                let errors = errors(&self.shared.hosts());
                bail!(
                    "the host sent {} of {n} errors within {limit:?}: {errors:?}",
                    errors.len()
                )
            }
        }
    }

    /// Attaches to a terminal that already exists on the host (after a reconnect).
    pub fn attach(&self, org: &str, host: &str, session: &str) -> Terminal {
        let rx = self.shared.register_terminal(org, host, session);
        Terminal::new(self.shared.clone(), org, host, session, rx)
    }

    /// Sends an `http.request` to a host and returns its `http.response`.
    pub async fn http_request(
        &self,
        org: &str,
        host: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Value> {
        let id = format!(
            "req_{}",
            self.shared.next_conn.fetch_add(1, Ordering::SeqCst)
        );
        let (tx, rx) = oneshot::channel();
        self.shared
            .hosts()
            .entry((org.into(), host.into()))
            .or_default()
            .http
            .insert(id.clone(), tx);
        let request = Control::HttpRequest {
            id,
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
        };
        self.shared.to_host_json(org, host, &request)?;
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .context("no http.response within 10 s")?
            .context("host went away")
    }

    /// Tells a host's current connection `tokenExpired` now.
    pub fn expire_now(&self, org: &str, host: &str) -> anyhow::Result<()> {
        self.shared.to_host_json(
            org,
            host,
            &Control::Error {
                session_id: None,
                error: TOKEN_EXPIRED.into(),
            },
        )
    }

    /// Stops (false) or resumes (true) reading what every host sends, as a stalled peer would.
    pub fn set_reading(&self, on: bool) {
        self.shared.reading.send_replace(on);
    }

    /// Refuses every handshake with `503` (true), as a relay that is down would, keeping
    /// its state for when it comes back (false).
    pub fn set_refusing(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    /// Plays a protocol-1 relay (true): `hello` is not answered with `resume`.
    pub fn set_protocol_1(&self, on: bool) {
        self.shared.protocol_1.store(on, Ordering::SeqCst);
    }

    /// Ends a host's current connection now: with a close frame (`clean`), or as a crash
    /// would, with none.
    pub fn drop_connection(&self, org: &str, host: &str, clean: bool) -> anyhow::Result<()> {
        let id = self
            .current_connection(org, host)
            .with_context(|| format!("host {host} of {org} is not connected"))?;
        self.shared.drop_connection.send_replace(Some((id, clean)));
        Ok(())
    }

    /// The output offset the relay has reached for a terminal, and the gaps announced.
    pub fn stream(&self, org: &str, host: &str, session: &str) -> Option<(u64, Vec<(u64, u64)>)> {
        self.shared
            .hosts()
            .get(&(org.to_string(), host.to_string()))
            .and_then(|e| e.streams.get(session))
            .map(|s| (s.output_offset, s.gaps.clone()))
    }

    /// How many times the relay fetched the JWKS.
    pub fn jwks_fetches(&self) -> u32 {
        self.shared.verifier.fetches.load(Ordering::SeqCst)
    }
}
