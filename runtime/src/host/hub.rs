//! The switchboard between the relay connection and the pty daemon: whichever
//! connection is current on each side, messages go to it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::relay_protocol::{encode_binary, Control, HelloSession, KIND_OUTPUT};
use super::state::HostState;
use crate::ptyd::client::PtydClient;
use crate::ptyd::protocol::{Event, Request, SessionInfo};
use crate::sync::lock;

/// Shared by the relay client, the supervisor and the APIs.
pub struct Hub {
    /// What `/health` and `host status` report.
    pub state: Arc<HostState>,
    ptyd: Mutex<Option<PtydClient>>,
    relay: Mutex<Option<RelayOut>>,
    list_waiters: Mutex<VecDeque<oneshot::Sender<Vec<SessionInfo>>>>,
    oauth_callbacks: Mutex<Option<mpsc::UnboundedSender<OAuthCallback>>>,
    ptyd_ready: tokio::sync::watch::Sender<bool>,
    replay_pending: std::sync::atomic::AtomicBool,
    /// Terminals open (or being opened) through this host, for the contract's limits.
    open: Mutex<std::collections::HashSet<String>>,
}

/// The current relay connection's outbound queues, both bounded.
#[derive(Debug, Clone)]
pub struct RelayOut {
    /// Terminal output: a full queue makes output wait (and so ptyd pause the pty).
    pub data: mpsc::Sender<Message>,
    /// Control messages: a full queue drops new ones.
    pub control: mpsc::Sender<Message>,
}

/// An `oauth.callback` from the relay.
#[derive(Debug, Clone)]
pub struct OAuthCallback {
    /// The flow's state.
    pub state: String,
    /// The authorization code, on success.
    pub code: Option<String>,
    /// The error, on failure.
    pub error: Option<String>,
    /// The issuer the authorization server named (RFC 9207), when it did.
    pub iss: Option<String>,
}

impl Hub {
    /// A hub with neither side connected.
    pub fn new(state: Arc<HostState>) -> Arc<Self> {
        Arc::new(Hub {
            state,
            ptyd: Mutex::new(None),
            relay: Mutex::new(None),
            list_waiters: Mutex::new(VecDeque::new()),
            oauth_callbacks: Mutex::new(None),
            ptyd_ready: tokio::sync::watch::Sender::new(false),
            replay_pending: std::sync::atomic::AtomicBool::new(false),
            open: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// Installs (or clears) the current pty daemon connection.
    pub fn set_ptyd(&self, client: Option<PtydClient>) {
        let connected = client.is_some();
        *lock(&self.ptyd) = client;
        if !connected {
            lock(&self.list_waiters).clear();
        }
        self.ptyd_ready.send_replace(connected);
    }

    /// Marks that the next relay connection should get every terminal's scrollback.
    pub fn request_replay(self: &Arc<Self>) {
        self.replay_pending
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if lock(&self.relay).is_some() {
            self.replay_if_requested();
        }
    }

    /// Once a relay connection is installed: if a replay is pending, re-subscribe to every
    /// live terminal with replay so the relay can redraw what it missed.
    pub fn replay_if_requested(self: &Arc<Self>) {
        if !self
            .replay_pending
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            for session in hub.sessions().await {
                let request = Request::Subscribe {
                    id: session.session_id.clone(),
                    replay: true,
                };
                if hub.to_ptyd(&request, &[]).is_err() {
                    return;
                }
                tracing::info!(session = %session.session_id, "replayed scrollback to the relay");
            }
        });
    }

    /// Claims `id` for a new terminal, or says which limit refuses it (the relay's error code).
    pub fn claim_session(&self, id: &str, max: usize) -> Result<(), &'static str> {
        if !crate::ptyd::protocol::valid_session_id(id) {
            return Err("invalid_session_id");
        }
        let mut open = lock(&self.open);
        if open.contains(id) {
            return Err("session_exists");
        }
        if open.len() >= max {
            return Err("too_many_sessions");
        }
        open.insert(id.to_string());
        Ok(())
    }

    /// Forgets a terminal that ended, was closed, or failed to open.
    pub fn release_session(&self, id: &str) {
        lock(&self.open).remove(id);
    }

    /// Waits until the pty daemon is connected, at most `limit`; false if it never was.
    pub async fn wait_for_ptyd(&self, limit: std::time::Duration) -> bool {
        let mut ready = self.ptyd_ready.subscribe();
        tokio::time::timeout(limit, ready.wait_for(|connected| *connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The current pty daemon connection's pid, if any.
    pub fn ptyd_pid(&self) -> Option<u32> {
        lock(&self.ptyd).as_ref().map(|c| c.daemon_pid)
    }

    /// Where `oauth.callback`s go.
    pub fn set_oauth_callbacks(&self, tx: mpsc::UnboundedSender<OAuthCallback>) {
        *lock(&self.oauth_callbacks) = Some(tx);
    }

    /// Hands an `oauth.callback` to the flow that waits for it.
    pub fn oauth_callback(&self, callback: OAuthCallback) {
        match lock(&self.oauth_callbacks).as_ref() {
            Some(tx) => {
                let _ = tx.send(callback);
            }
            None => {
                tracing::warn!("an oauth.callback arrived but no login flow handler is installed")
            }
        }
    }

    /// Installs the current relay connection's outbound queues.
    pub fn set_relay(&self, out: Option<RelayOut>) {
        *lock(&self.relay) = out;
    }

    /// Sends a control message to the relay, if connected.
    pub fn to_relay(&self, control: &Control) {
        match serde_json::to_string(control) {
            Ok(text) => self.to_relay_raw(Message::text(text)),
            Err(e) => tracing::error!("cannot encode {control:?}: {e}"),
        }
    }

    fn to_relay_raw(&self, message: Message) {
        if let Some(out) = lock(&self.relay).as_ref() {
            // Debug, not warn: a relay flooding pings while reading nothing would fill the log.
            if out.control.try_send(message).is_err() {
                tracing::debug!("the relay is not reading: a control message was dropped");
            }
        }
    }

    /// Queues terminal output for the relay, waiting while the queue is full; without a
    /// relay connection the output is dropped (ptyd's scrollback replays it later).
    async fn output_to_relay(&self, message: Message) {
        let data = lock(&self.relay).as_ref().map(|out| out.data.clone());
        if let Some(data) = data {
            let _ = data.send(message).await;
        }
    }

    /// Sends a request to the pty daemon; fails when it is not connected.
    pub fn to_ptyd(&self, request: &Request, payload: &[u8]) -> anyhow::Result<()> {
        match lock(&self.ptyd).as_ref() {
            Some(client) => client.send(request, payload),
            None => anyhow::bail!("tether-ptyd is not running"),
        }
    }

    /// The terminals the pty daemon holds, as `hello` announces them.
    pub async fn sessions(&self) -> Vec<HelloSession> {
        let (tx, rx) = oneshot::channel();
        lock(&self.list_waiters).push_back(tx);
        if self.to_ptyd(&Request::List, &[]).is_err() {
            return Vec::new();
        }
        match tokio::time::timeout(std::time::Duration::from_secs(5), rx).await {
            Ok(Ok(list)) => list
                .into_iter()
                .filter(|s| s.alive)
                .inspect(|s| {
                    lock(&self.open).insert(s.id.clone());
                })
                .map(|s| HelloSession {
                    session_id: s.id,
                    pid: s.pid,
                    cols: s.cols,
                    rows: s.rows,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Routes one event from the pty daemon; output waits for room in the relay's queue.
    pub async fn from_ptyd(&self, event: Event, payload: Vec<u8>) {
        match event {
            Event::Output { id } => match encode_binary(KIND_OUTPUT, &id, &payload) {
                Some(frame) => self.output_to_relay(Message::binary(frame)).await,
                None => {
                    tracing::warn!(session = %id, "session id longer than 255 bytes: output dropped")
                }
            },
            Event::OpenOk { id, pid } => self.to_relay(&Control::SessionOpened {
                session_id: id,
                pid,
            }),
            Event::Exit { id, code, signal } => {
                self.release_session(&id);
                let code = code.or_else(|| signal.map(|_| -1));
                self.to_relay(&Control::SessionExit {
                    session_id: id,
                    code,
                });
            }
            Event::ListReply { sessions } => {
                if let Some(waiter) = lock(&self.list_waiters).pop_front() {
                    let _ = waiter.send(sessions);
                }
            }
            Event::Error { id, code, message } => {
                tracing::warn!(session = ?id, %code, "tether-ptyd: {message}");
                if let (Some(id), "ESPAWN" | "EEXIST") = (&id, code.as_str()) {
                    self.release_session(id);
                }
                if id.is_some() {
                    self.to_relay(&Control::Error {
                        session_id: id,
                        error: format!("{code}: {message}"),
                    });
                }
            }
            Event::Closed { id } => self.release_session(&id),
            Event::HelloAck { .. } => {}
        }
    }
}
