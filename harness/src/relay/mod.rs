//! The reference relay: hosts dial in at `/hosts/connect` with a JWT it verifies against
//! the authorization server's JWKS; it tells a connection `tokenExpired` when its JWT
//! expires, forwards terminals, `http.request` and `oauth.callback`, and gives tests a
//! client side ([`Relay::open_terminal`]) to use a host through it (contract section 4).

mod debug;
pub mod terminal;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tether::host::relay_protocol::{
    decode_binary, encode_binary, parse_control, Control, KIND_INPUT, KIND_OUTPUT, TOKEN_EXPIRED,
};
use tokio::sync::{mpsc, oneshot, watch, Notify};

pub use terminal::{Terminal, TerminalEvent};
use verify::{Refusal, Verifier};

use crate::tls::accept::TlsListener;
use crate::tls::Tls;

/// One handshake the relay saw.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    /// Connection number, in arrival order.
    pub id: u64,
    /// `organizationId` asked for.
    pub org: String,
    /// `hostId` announced.
    pub host_id: String,
    /// The bearer token presented.
    pub token: String,
    /// `101` accepted, or the refusal status.
    pub status: u16,
}

#[derive(Default)]
struct HostEntry {
    current: Option<(u64, mpsc::UnboundedSender<Message>)>,
    hello: Option<Value>,
    terminals: HashMap<String, mpsc::UnboundedSender<TerminalEvent>>,
    http: HashMap<String, oneshot::Sender<Value>>,
    /// `error`s the host sent about no terminal in particular, in order.
    errors: Vec<String>,
}

pub(crate) struct Shared {
    verifier: Verifier,
    hosts: Mutex<HashMap<(String, String), HostEntry>>,
    connections: Mutex<Vec<ConnRecord>>,
    changed: Notify,
    next_conn: AtomicU64,
    stop: watch::Receiver<bool>,
    /// How long a connection told `tokenExpired` may stay open.
    expiry_grace: Duration,
    ping_every: Duration,
    /// False while the relay plays a peer that stopped reading what hosts send.
    reading: watch::Sender<bool>,
}

impl Shared {
    fn hosts(&self) -> MutexGuard<'_, HashMap<(String, String), HostEntry>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a message to a host's current connection.
    pub(crate) fn to_host(&self, org: &str, host: &str, message: Message) -> anyhow::Result<()> {
        let hosts = self.hosts();
        let (_, tx) = hosts
            .get(&(org.to_string(), host.to_string()))
            .and_then(|e| e.current.as_ref())
            .ok_or_else(|| anyhow!("host {host} of {org} is not connected"))?;
        tx.send(message)
            .map_err(|_| anyhow!("host {host} of {org} just disconnected"))
    }

    pub(crate) fn to_host_json(
        &self,
        org: &str,
        host: &str,
        control: &Control,
    ) -> anyhow::Result<()> {
        self.to_host(org, host, Message::text(serde_json::to_string(control)?))
    }

    /// True when the relay has seen a terminal named `session` on this host.
    pub(crate) fn knows_terminal(&self, org: &str, host: &str, session: &str) -> bool {
        self.hosts()
            .get(&(org.to_string(), host.to_string()))
            .is_some_and(|e| e.terminals.contains_key(session))
    }

    pub(crate) fn register_terminal(
        &self,
        org: &str,
        host: &str,
        session: &str,
    ) -> mpsc::UnboundedReceiver<TerminalEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.hosts()
            .entry((org.into(), host.into()))
            .or_default()
            .terminals
            .insert(session.into(), tx);
        rx
    }
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
    task: Option<tokio::task::JoinHandle<()>>,
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
        });
        let app = Router::new()
            .route("/hosts/connect", get(connect))
            .route("/oauth/callback/{org}/{host}", get(oauth_callback))
            .route("/health", get(|| async { "ok" }))
            .route("/debug/exec", axum::routing::post(debug::exec))
            .route("/debug/connections", get(debug::connections))
            .with_state(shared.clone());
        let mut stopped = stop_rx;
        let tls_failures = Arc::new(AtomicU32::new(0));
        let failures = tls_failures.clone();
        let task = crate::server_runtime::spawn(async move {
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
        });
        Ok(Relay {
            addr,
            tls,
            tls_failures,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// `wss://127.0.0.1:PORT` (`ws://` without TLS): the `TETHER_RELAY_URL`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.tls.ws_scheme(), self.addr)
    }

    /// Breaks relay rules on purpose (the broken-server tests of the `server.*` checks).
    pub fn break_rules(&self, broken: verify::BrokenRelay) {
        *self
            .shared
            .verifier
            .broken
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = broken;
    }

    /// TLS handshakes that failed so far (a client refused the certificate).
    pub fn tls_failures(&self) -> u32 {
        self.tls_failures.load(Ordering::SeqCst)
    }

    /// Stops listening and drops every connection, as a crashed relay would.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Every handshake so far.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The handshakes the relay accepted (`101`), in arrival order.
    pub fn accepted(&self) -> Vec<ConnRecord> {
        self.connections()
            .into_iter()
            .filter(|c| c.status == 101)
            .collect()
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
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            let found = self
                .shared
                .hosts()
                .get(&(org.to_string(), host.to_string()))
                .and_then(|e| {
                    let (id, _) = e.current.as_ref()?;
                    (*id > after)
                        .then(|| e.hello.clone().map(|h| (*id, h)))
                        .flatten()
                });
            if let Some(found) = found {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                anyhow::bail!("host {host} of {org} did not reconnect within {limit:?}");
            }
        }
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
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            let errors = self
                .shared
                .hosts()
                .get(&(org.to_string(), host.to_string()))
                .map(|e| e.errors.clone())
                .unwrap_or_default();
            if errors.len() >= n {
                return Ok(errors);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!(
                    "the host sent {} of {n} errors within {limit:?}: {errors:?}",
                    errors.len()
                );
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

    /// How many times the relay fetched the JWKS.
    pub fn jwks_fetches(&self) -> u32 {
        self.shared.verifier.fetches.load(Ordering::SeqCst)
    }
}

/// Waits until a host of `org` is connected and has said hello.
pub(crate) async fn wait_host(
    shared: &Arc<Shared>,
    org: &str,
    limit: Duration,
) -> anyhow::Result<(String, Value)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let notified = shared.changed.notified();
        let found = shared.hosts().iter().find_map(|((o, h), e)| {
            (o == org && e.current.is_some())
                .then(|| e.hello.clone().map(|hello| (h.clone(), hello)))
                .flatten()
        });
        if let Some(found) = found {
            return Ok(found);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            anyhow::bail!("no host of {org} connected to the relay within {limit:?}");
        }
    }
}

/// Opens a terminal on a host and waits for `session.opened`.
pub(crate) async fn open_terminal(
    shared: &Arc<Shared>,
    org: &str,
    host: &str,
    command: Option<&str>,
    session: Option<&str>,
) -> anyhow::Result<Terminal> {
    let session = session
        .map(str::to_string)
        .unwrap_or_else(|| format!("term_{}", shared.next_conn.fetch_add(1, Ordering::SeqCst)));
    let rx = shared.register_terminal(org, host, &session);
    let open = Control::SessionOpen {
        session_id: session.clone(),
        cols: 80,
        rows: 24,
        command: command.map(str::to_string),
    };
    shared.to_host_json(org, host, &open)?;
    let mut terminal = Terminal::new(shared.clone(), org, host, &session, rx);
    terminal.wait_opened(Duration::from_secs(10)).await?;
    Ok(terminal)
}

fn record(shared: &Shared, org: &str, host: &str, token: &str, status: u16) -> u64 {
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    shared
        .connections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ConnRecord {
            id,
            org: org.into(),
            host_id: host.into(),
            token: token.into(),
            status,
        });
    id
}

async fn connect(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let (Some(org), Some(host)) = (
        query.get("organizationId").cloned(),
        query.get("hostId").cloned(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "organizationId and hostId are required",
        )
            .into_response();
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let claims = match shared.verifier.verify(&token, &org).await {
        Ok(claims) => claims,
        Err(Refusal::Unauthorized(why)) => {
            record(&shared, &org, &host, &token, 401);
            return (StatusCode::UNAUTHORIZED, why).into_response();
        }
        Err(Refusal::Forbidden(why)) => {
            record(&shared, &org, &host, &token, 403);
            return (StatusCode::FORBIDDEN, why).into_response();
        }
    };
    let id = record(&shared, &org, &host, &token, 101);
    ws.on_upgrade(move |socket| serve_host(shared, socket, org, host, claims.exp, id))
}

async fn serve_host(
    shared: Arc<Shared>,
    socket: WebSocket,
    org: String,
    host: String,
    exp: i64,
    id: u64,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    {
        let mut hosts = shared.hosts();
        let entry = hosts.entry((org.clone(), host.clone())).or_default();
        entry.current = Some((id, tx.clone()));
        entry.hello = None;
    }
    let key = (org.clone(), host.clone());
    let until_exp = Duration::from_secs((exp - now_s()).max(0) as u64);
    let expiry = tokio::time::sleep(until_exp);
    tokio::pin!(expiry);
    let mut expired_at: Option<tokio::time::Instant> = None;
    let mut ping = tokio::time::interval(shared.ping_every);
    ping.tick().await;
    let mut stop = shared.stop.clone();
    let mut reading = shared.reading.subscribe();
    loop {
        let read_now = *reading.borrow_and_update();
        let grace = async {
            match expired_at {
                Some(at) => tokio::time::sleep_until(at + shared.expiry_grace).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            out = rx.recv() => match out {
                Some(message) => {
                    let mut result = sink.feed(message).await;
                    while result.is_ok() {
                        let Ok(next) = rx.try_recv() else { break };
                        result = sink.feed(next).await;
                    }
                    if result.is_err() || sink.flush().await.is_err() { break }
                }
                None => break,
            },
            _ = reading.changed() => {}
            incoming = stream.next(), if read_now => match incoming {
                Some(Ok(Message::Text(text))) => from_host(&shared, &key, text.as_str()),
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some((KIND_OUTPUT, session, payload)) = decode_binary(&bytes) {
                        let hosts = shared.hosts();
                        if let Some(tx) = hosts.get(&key).and_then(|e| e.terminals.get(session)) {
                            let _ = tx.send(TerminalEvent::Output(payload.to_vec()));
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = &mut expiry, if expired_at.is_none() => {
                let text = serde_json::to_string(&Control::Error { session_id: None, error: TOKEN_EXPIRED.into() }).unwrap_or_default();
                if sink.send(Message::text(text)).await.is_err() { break }
                expired_at = Some(tokio::time::Instant::now());
            }
            _ = grace => break,
            _ = ping.tick() => {
                if sink.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() { break }
            }
            _ = stop.changed() => break,
        }
    }
    let _ = sink.close().await;
    let mut hosts = shared.hosts();
    if let Some(entry) = hosts.get_mut(&key) {
        if entry
            .current
            .as_ref()
            .is_some_and(|(current, _)| *current == id)
        {
            entry.current = None;
        }
    }
    drop(hosts);
    shared.changed.notify_waiters();
}

fn from_host(shared: &Shared, key: &(String, String), text: &str) {
    let Ok(Some(control)) = parse_control(text) else {
        return;
    };
    let mut hosts = shared.hosts();
    let entry = hosts.entry(key.clone()).or_default();
    let to_terminal = |entry: &HostEntry, session: &str, event: TerminalEvent| {
        if let Some(tx) = entry.terminals.get(session) {
            let _ = tx.send(event);
        }
    };
    match control {
        Control::Hello { .. } => {
            entry.hello = serde_json::from_str(text).ok();
            drop(hosts);
            shared.changed.notify_waiters();
        }
        Control::SessionOpened { session_id, pid } => {
            to_terminal(entry, &session_id, TerminalEvent::Opened(pid))
        }
        Control::SessionExit { session_id, code } => {
            to_terminal(entry, &session_id, TerminalEvent::Exit(code))
        }
        Control::Error {
            session_id: Some(session_id),
            error,
        } => to_terminal(entry, &session_id, TerminalEvent::Error(error)),
        Control::Error {
            session_id: None,
            error,
        } => {
            entry.errors.push(error);
            drop(hosts);
            shared.changed.notify_waiters();
        }
        Control::HttpResponse { ref id, .. } => {
            if let Some(tx) = entry.http.remove(id) {
                let _ = tx.send(serde_json::from_str(text).unwrap_or_default());
            }
        }
        _ => {}
    }
}

async fn oauth_callback(
    State(shared): State<Arc<Shared>>,
    Path((org, host)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let callback = Control::OAuthCallback {
        state: query.get("state").cloned().unwrap_or_default(),
        code: query.get("code").cloned(),
        error: query.get("error").cloned(),
    };
    match shared.to_host_json(&org, &host, &callback) {
        Ok(()) => Html("Signed in to tether. You can close this window.").into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// Encodes keystrokes for a terminal.
pub(crate) fn input_frame(session: &str, bytes: &[u8]) -> Option<Message> {
    encode_binary(KIND_INPUT, session, bytes).map(Message::binary)
}
