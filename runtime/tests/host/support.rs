//! A small scripted relay, the harness's reference authorization server, and helpers to
//! run the real `tether-host` (with `tether-ptyd` beside it) against them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tether::host::{read_info, InstancePaths};
use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, HOME_ENV, LOG_ENV, RELAY_URL_ENV};
use tether_contract::relay_protocol::{decode_binary, encode_binary, KIND_INPUT, KIND_OUTPUT};
use tether_harness::authserver::AuthServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const API_KEY: &str = "sk_live_HOSTTESTabcdefghijklmnopqrstuvwxyz";
pub const ORG: &str = "org_a";
const WAIT: Duration = Duration::from_secs(10);

/// One accepted host connection.
pub struct RelayConn {
    pub authorization: String,
    pub uri: String,
    pub ws: WebSocketStream<TcpStream>,
    /// The output offset `resume` names for every terminal (`None`: the host's own, as a
    /// relay that got everything says; `Some(0)`: a relay that lost it all).
    pub resume_from: Option<u64>,
}

impl RelayConn {
    /// The next JSON control message (skipping binary frames).
    pub async fn next_json(&mut self) -> Value {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("relay message in time")
            {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("json")
                }
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// Waits for a control message of `kind`.
    /// Reads messages until one of type `kind`. A protocol-2 `hello` is answered with
    /// `resume` at once, naming each terminal at the offset the host announced (this relay
    /// keeps no output of its own).
    pub async fn expect_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next_json().await;
            if message["type"] == "hello" && message["protocol"] == 2 {
                let sessions: Vec<Value> = message["sessions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let offset = self
                            .resume_from
                            .map_or(s["outputOffset"].clone(), Value::from);
                        json!({"sessionId": s["sessionId"], "outputOffset": offset})
                    })
                    .collect();
                self.send_json(json!({"type": "resume", "sessions": sessions}))
                    .await;
            }
            if message["type"] == kind {
                return message;
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .expect("send");
    }

    pub async fn input(&mut self, session: &str, bytes: &[u8]) {
        let frame = encode_binary(KIND_INPUT, session, bytes).expect("frame");
        self.ws
            .send(Message::binary(frame))
            .await
            .expect("send input");
    }

    /// Reads output frames of `session` until they contain `needle`.
    pub async fn output_until(&mut self, session: &str, needle: &str) -> String {
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no {needle:?} in output; saw {:?}",
                        String::from_utf8_lossy(&seen)
                    )
                }) {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Some((KIND_OUTPUT, id, payload)) = decode_binary(&bytes) {
                        if id == session {
                            seen.extend_from_slice(payload);
                        }
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended: {other:?}"),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    /// Opens a shell and waits for `session.opened`.
    pub async fn open_shell(&mut self, session: &str) {
        self.send_json(
            json!({"type": "session.open", "sessionId": session, "cols": 80, "rows": 24}),
        )
        .await;
        let opened = self.expect_type("session.opened").await;
        assert_eq!(opened["sessionId"], session);
    }
}

/// A relay that hands every host connection to the test; `refuse` answers handshakes with that status instead.
pub struct MiniRelay {
    pub url: String,
    pub conns: mpsc::UnboundedReceiver<RelayConn>,
    pub refuse: Arc<AtomicU16>,
}

impl MiniRelay {
    pub async fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.expect("bind")).await
    }

    // The handshake callback's signature is tungstenite's, large error type included.
    #[allow(clippy::result_large_err)]
    pub async fn start_on(listener: TcpListener) -> Self {
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let (tx, conns) = mpsc::unbounded_channel();
        let refuse = Arc::new(AtomicU16::new(0));
        let refuse2 = refuse.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let refuse = refuse2.clone();
                tokio::spawn(async move {
                    let mut seen = (String::new(), String::new());
                    let callback =
                        |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                            seen.0 = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            seen.1 = req.uri().to_string();
                            match refuse.load(Ordering::SeqCst) {
                                0 => Ok(resp),
                                status => {
                                    let mut error = ErrorResponse::new(None);
                                    *error.status_mut() =
                                        tokio_tungstenite::tungstenite::http::StatusCode::from_u16(
                                            status,
                                        )
                                        .expect("status");
                                    Err(error)
                                }
                            }
                        };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
                        let _ = tx.send(RelayConn {
                            authorization: seen.0,
                            uri: seen.1,
                            ws,
                            resume_from: None,
                        });
                    }
                });
            }
        });
        MiniRelay { url, conns, refuse }
    }

    /// The next host connection.
    pub async fn accept(&mut self) -> RelayConn {
        tokio::time::timeout(WAIT, self.conns.recv())
            .await
            .expect("a host connection in time")
            .expect("relay running")
    }

    /// Asserts no host connection arrives within `quiet`.
    pub async fn assert_no_connection(&mut self, quiet: Duration) {
        if let Ok(Some(conn)) = tokio::time::timeout(quiet, self.conns.recv()).await {
            panic!("unexpected connection with {}", conn.authorization);
        }
    }
}

/// The harness's reference authorization server, with [`API_KEY`] bound to [`ORG`].
pub struct Api {
    pub auth: AuthServer,
}

impl Api {
    pub async fn start() -> Self {
        let auth = AuthServer::start().await.expect("reference server");
        auth.state().add_api_key(API_KEY, "user_alice", ORG);
        Api { auth }
    }

    /// The `TETHER_API_URL`.
    pub fn uri(&self) -> String {
        self.auth.uri()
    }

    /// Lets the server redirect to `relay`'s OAuth callback (as a deployment registers it).
    pub fn accept_relay_callback(&self, relay: &str) {
        let callback = tether_contract::relay_protocol::relay_http_url(relay);
        self.auth
            .state()
            .extra_redirect_prefixes
            .push(format!("{callback}/oauth/callback/"));
    }

    /// How many relay JWTs were minted.
    pub async fn mints(&self) -> usize {
        self.auth.requests_to("/api/auth/token").await.len()
    }
}

/// Plays the browser at the reference server's authorize URL: the code its redirect carries.
pub async fn authorization_code(authorize_url: &str) -> String {
    let answer = tether_harness::tls::http_client(None)
        .get(authorize_url)
        .send()
        .await
        .expect("authorize");
    assert_eq!(answer.status(), 302, "authorize did not redirect");
    let location = answer.headers()["location"].to_str().expect("ascii");
    let location = url::Url::parse(location).expect("redirect URL");
    location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code in the redirect")
}

/// The claims of the JWT in a `Bearer` header.
pub fn bearer_claims(authorization: &str) -> Option<Value> {
    use base64::Engine;
    let token = authorization.strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A `TETHER_HOME` and the host service running in it.
pub struct Host {
    pub home: tempfile::TempDir,
    pub child: Option<Child>,
    pub api: String,
    pub relay: String,
}

pub fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "tether" => env!("CARGO_BIN_EXE_tether"),
        "tether-host" => env!("CARGO_BIN_EXE_tether-host"),
        _ => env!("CARGO_BIN_EXE_tether-ptyd"),
    })
}

impl Host {
    pub fn new(api: &str, relay: &str) -> Self {
        Host {
            home: tempfile::tempdir().expect("tempdir"),
            child: None,
            api: api.into(),
            relay: relay.into(),
        }
    }

    pub fn paths(&self) -> InstancePaths {
        InstancePaths::new(self.home.path(), &tether::OrgId::parse(ORG).expect("org"))
    }

    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(HOME_ENV, self.home.path())
            .env(API_URL_ENV, &self.api)
            .env(RELAY_URL_ENV, &self.relay)
            .env(API_KEY_ENV, API_KEY)
            .env(LOG_ENV, "info,tether=debug")
            .env("HOME", self.home.path());
        // The reference server's certificate is from the harness's private CA.
        if let Ok(pki) = tether_harness::tls::pki() {
            cmd.env("SSL_CERT_FILE", pki.ca_file());
        }
        cmd
    }

    /// Runs the `tether` CLI with this host's environment.
    pub fn tether(&self, args: &[&str]) -> std::process::Output {
        self.command(&bin("tether"))
            .args(args)
            .output()
            .expect("run tether")
    }

    /// Starts `tether-host` in the foreground of this test and waits for its state file.
    pub fn start(&mut self) -> u32 {
        let child = self
            .command(&bin("tether-host"))
            .args(["--org", ORG])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tether-host");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while read_info(&self.paths()).is_none_or(|i| i.pid != pid) {
            assert!(
                Instant::now() < deadline,
                "tether-host did not write its state file"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        pid
    }

    /// `GET /health`.
    pub async fn health(&self) -> Value {
        let port = read_info(&self.paths()).expect("state file").port;
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .expect("health")
            .json()
            .await
            .expect("json")
    }

    /// Polls `/health` until `field` equals `want`.
    pub async fn wait_health(&self, field: &str, want: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let health = self.health().await;
            if health[field] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "health never had {field}={want}: {health}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The control API's `/status`.
    pub async fn status(&self) -> Value {
        let doc = tether::host::control_status(&self.paths().control_socket)
            .await
            .expect("status");
        serde_json::to_value(doc).expect("status as JSON")
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// True while `pid` runs; the CLI's own check, which counts a zombie as gone.
pub fn alive(pid: u32) -> bool {
    tether::process::running(pid)
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill9();
        // A host started with `host start --daemon` is not our child: a test that failed
        // before stopping it must not leave it running (its supervisor would also restart
        // the pty daemon killed below).
        // Only if that pid is still a host of this test's home (pids are reused).
        let home = format!("{HOME_ENV}={}", self.home.path().display());
        let ours = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == home.as_bytes()))
        };
        if let Some(info) = read_info(&self.paths()).filter(|info| ours(info.pid)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(info.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Stop the pty daemon this test's host started (found by its socket's owner).
        let socket = self.paths().ptyd_socket;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&*socket.to_string_lossy()) {
                if let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// The common start: an API, a relay, a running host service, its connection greeted.
pub async fn connected_host() -> (Api, MiniRelay, Host, RelayConn) {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    let mut conn = relay.accept().await;
    conn.expect_type("hello").await;
    (api, relay, host, conn)
}
