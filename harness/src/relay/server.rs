//! The relay's HTTP side: the routes, the handshake at `/hosts/connect`, one task per host
//! connection, and what hosts send.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tether_contract::relay_protocol::{
    decode_binary, parse_control, Control, KIND_OUTPUT, TOKEN_EXPIRED,
};
use tokio::sync::mpsc;

use super::debug;
use super::shared::TerminalEvent;
use super::shared::{HostEntry, Shared};
use super::verify::Refusal;
use crate::clock::now_s;

/// Every route of the relay.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/hosts/connect", get(connect))
        .route("/oauth/callback/{org}/{host}", get(oauth_callback))
        .route("/health", get(|| async { "ok" }))
        .route("/debug/exec", axum::routing::post(debug::exec))
        .route("/debug/connections", get(debug::connections))
        .with_state(shared)
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
    if shared.refusing.load(std::sync::atomic::Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "the relay is down").into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let claims = match shared.verifier.verify(&token, &org).await {
        Ok(claims) => claims,
        Err(Refusal::Unauthorized(why)) => {
            shared.record(&org, &host, &token, 401);
            return (StatusCode::UNAUTHORIZED, why).into_response();
        }
        Err(Refusal::Forbidden(why)) => {
            shared.record(&org, &host, &token, 403);
            return (StatusCode::FORBIDDEN, why).into_response();
        }
    };
    let id = shared.record(&org, &host, &token, 101);
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
    let key = (org, host);
    let _own_sender = connected(&shared, &key, id, tx);
    let mut dropping = shared.drop_connection.subscribe();
    let mut clean = true;
    let until_exp = Duration::from_secs((exp - now_s()).max(0) as u64);
    let expiry = tokio::time::sleep(until_exp);
    tokio::pin!(expiry);
    let mut expired_at: Option<tokio::time::Instant> = None;
    let mut ping = tokio::time::interval(shared.ping_every);
    ping.tick().await;
    let mut stop = shared.stop.clone();
    // Only a stop from now on ends this connection (the relay may have restarted before).
    stop.mark_unchanged();
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
                Some(message) => if !send_queued(&shared, id, &mut sink, &mut rx, message).await { break },
                None => break,
            },
            _ = reading.changed() => {}
            incoming = stream.next(), if read_now => match incoming {
                Some(Ok(message)) => {
                    shared.record_frame("from_host", id, &message);
                    match message {
                        Message::Text(text) => from_host(&shared, &key, id, text.as_str()),
                        Message::Binary(bytes) => output_from_host(&shared, &key, &bytes),
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
                None | Some(Err(_)) => break,
            },
            _ = &mut expiry, if expired_at.is_none() => {
                let message = Message::text(token_expired());
                shared.record_frame("to_host", id, &message);
                if sink.send(message).await.is_err() { break }
                expired_at = Some(tokio::time::Instant::now());
            }
            _ = grace => break,
            _ = ping.tick() => {
                if sink.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() { break }
            }
            _ = stop.changed() => break,
            _ = dropping.changed() => {
                if let Some((conn, with_close)) = *dropping.borrow_and_update() {
                    if conn == id {
                        clean = with_close;
                        break;
                    }
                }
            }
        }
    }
    if clean {
        let _ = sink.close().await;
    }
    // Without a close frame the socket just goes, as when a relay process dies.
    drop(sink);
    drop(stream);
    disconnected(&shared, &key, id);
}

/// Sends `first` and whatever else is queued for the host, then flushes: `false` once
/// the socket has failed.
async fn send_queued(
    shared: &Shared,
    id: u64,
    sink: &mut SplitSink<WebSocket, Message>,
    rx: &mut mpsc::UnboundedReceiver<Message>,
    first: Message,
) -> bool {
    shared.record_frame("to_host", id, &first);
    let mut result = sink.feed(first).await;
    while result.is_ok() {
        let Ok(next) = rx.try_recv() else { break };
        shared.record_frame("to_host", id, &next);
        result = sink.feed(next).await;
    }
    result.is_ok() && sink.flush().await.is_ok()
}

/// The relay's `tokenExpired` error, as text.
fn token_expired() -> String {
    serde_json::to_string(&Control::Error {
        session_id: None,
        error: TOKEN_EXPIRED.into(),
    })
    .unwrap_or_default()
}

/// Connection `id` becomes the host's current one, with no `hello` yet. Returns the sender
/// for the connection's own task to hold: a newer connection of the same host becoming
/// current then leaves this one's queue open (it only stops getting new frames).
fn connected(
    shared: &Shared,
    key: &(String, String),
    id: u64,
    tx: mpsc::UnboundedSender<Message>,
) -> mpsc::UnboundedSender<Message> {
    let mut hosts = shared.hosts();
    let entry = hosts.entry(key.clone()).or_default();
    entry.current = Some((id, tx.clone()));
    entry.hello = None;
    entry.open.insert(id);
    tx
}

/// Connection `id` has ended: no longer open, nor current; waiters are told.
fn disconnected(shared: &Shared, key: &(String, String), id: u64) {
    let mut hosts = shared.hosts();
    if let Some(entry) = hosts.get_mut(key) {
        entry.open.remove(&id);
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

/// A binary frame from a host: terminal output is counted and goes to the terminal's reader.
fn output_from_host(shared: &Shared, key: &(String, String), bytes: &[u8]) {
    if let Some((KIND_OUTPUT, session, payload)) = decode_binary(bytes) {
        let mut hosts = shared.hosts();
        let Some(entry) = hosts.get_mut(key) else {
            return;
        };
        entry
            .streams
            .entry(session.into())
            .or_default()
            .output_offset += payload.len() as u64;
        if let Some(tx) = entry.terminals.get(session) {
            let _ = tx.send(TerminalEvent::Output(payload.to_vec()));
        }
    }
}

fn from_host(shared: &Arc<Shared>, key: &(String, String), conn: u64, text: &str) {
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
        Control::Hello {
            protocol, sessions, ..
        } => {
            entry.hello = serde_json::from_str(text).ok();
            drop(hosts);
            super::resume::on_hello(shared, key.clone(), conn, protocol, sessions);
            shared.changed.notify_waiters();
        }
        Control::InputAck {
            session_id,
            input_offset,
        } => {
            if let Some(stream) = entry.streams.get_mut(&session_id) {
                stream.acknowledge(input_offset);
            }
        }
        Control::SessionGap {
            session_id,
            from,
            to,
        } => {
            let stream = entry.streams.entry(session_id.clone()).or_default();
            stream.gaps.push((from, to));
            stream.output_offset = stream.output_offset.max(to);
            to_terminal(entry, &session_id, TerminalEvent::Gap(from, to));
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
        iss: query.get("iss").cloned(),
    };
    match shared.to_host_json(&org, &host, &callback) {
        Ok(()) => Html("Signed in to tether. You can close this window.").into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
