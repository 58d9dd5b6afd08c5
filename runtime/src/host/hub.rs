//! The switchboard between the relay connection and the pty daemon: whichever
//! connection is current on each side, messages go to it, and each terminal's output
//! reaches the relay exactly once across reconnects (`streams.rs`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::relay_protocol::{encode_binary, Control, HelloSession, ResumeSession, KIND_OUTPUT};
use super::state::HostState;
use super::streams::{admit, resume_point, Mode, Stream};
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
    /// Terminals open (or being opened) through this host, for the contract's limits,
    /// with where their streams stand on the current relay connection.
    terminals: Mutex<HashMap<String, Stream>>,
    /// How output flows on the current relay connection.
    mode: Mutex<Mode>,
    /// The output offsets the relay named in this connection's `resume`, for terminals
    /// the host learns of only afterwards (a pty daemon that was slow to come back).
    listed: Mutex<HashMap<String, u64>>,
    /// Whether "resume is off for this relay" was logged already.
    said_protocol_1: AtomicBool,
    /// An `upgrade` was sent to ptyd and has not ended yet.
    upgrading: AtomicBool,
    /// Input kept back while ptyd upgrades (`Some` from the `upgrade` until the new image
    /// is connected or the upgrade is refused): what ptyd has not read when it execs is gone.
    held_input: Mutex<Option<Vec<HeldInput>>>,
    /// Why the last upgrade of ptyd was refused (`EUPGRADE`), if it was.
    upgrade_refused: Mutex<Option<String>>,
}

/// Input for one terminal (its id, the bytes) kept back while ptyd upgrades.
type HeldInput = (String, Vec<u8>);

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
            terminals: Mutex::new(HashMap::new()),
            mode: Mutex::new(Mode::Holding),
            listed: Mutex::new(HashMap::new()),
            said_protocol_1: AtomicBool::new(false),
            upgrading: AtomicBool::new(false),
            held_input: Mutex::new(None),
            upgrade_refused: Mutex::new(None),
        })
    }

    /// Installs (or clears) the current pty daemon connection.
    pub fn set_ptyd(&self, client: Option<PtydClient>) {
        let connected = client.is_some();
        *lock(&self.ptyd) = client;
        // Replies to the previous connection's `list`s will never come.
        lock(&self.list_waiters).clear();
        self.ptyd_ready.send_replace(connected);
    }

    /// The relay answered `hello` with `resume`: each listed terminal's output goes on
    /// from the relay's offset (ptyd replays it), the others' from the offset `hello` named.
    pub fn resume(&self, listed: Vec<ResumeSession>) {
        let listed: HashMap<String, u64> = listed
            .into_iter()
            .map(|s| (s.session_id, s.output_offset))
            .collect();
        let mut subscribe = Vec::new();
        {
            let mut terminals = lock(&self.terminals);
            for (id, stream) in terminals.iter_mut() {
                // Listed: from the relay's offset. Opened on this connection: from where its
                // output was held back. Otherwise the relay does not know it: from `hello` on.
                match listed.get(id) {
                    Some(offset) => stream.next_output = Some(*offset),
                    None if stream.next_output.is_none() => stream.next_output = stream.at_hello,
                    None => {}
                }
                subscribe.push((id.clone(), stream.next_output));
            }
            *lock(&self.mode) = Mode::Resumed;
        }
        let replayed = !listed.is_empty();
        *lock(&self.listed) = listed;
        if replayed {
            crate::metrics::global().resume_replayed();
        }
        for (id, from) in subscribe {
            let request = Request::Subscribe {
                id: id.clone(),
                replay: false,
                from,
            };
            if self.to_ptyd(&request, &[]).is_err() {
                return;
            }
            tracing::debug!(session = %id, ?from, "resuming output");
        }
    }

    /// Stops following every terminal while no relay connection has resumed: ptyd keeps
    /// their output in its replay buffers, and a terminal that ends meanwhile stays until
    /// its exit (after its last bytes) can reach the relay.
    fn unsubscribe_all(&self) {
        let ids: Vec<String> = lock(&self.terminals).keys().cloned().collect();
        for id in ids {
            if self.to_ptyd(&Request::Unsubscribe { id }, &[]).is_err() {
                return;
            }
        }
    }

    /// No `resume` within 5 s of `hello`: a protocol-1 relay gets output from the offsets
    /// `hello` named (and the terminals it opened on this connection from the start).
    pub fn resume_timed_out(&self) {
        if *lock(&self.mode) != Mode::Holding || lock(&self.relay).is_none() {
            return;
        }
        if !self.said_protocol_1.swap(true, Ordering::Relaxed) {
            tracing::warn!("the relay did not answer hello with resume: it speaks protocol 1, so output after a reconnect may be lost or repeated (resume is off for this relay)");
        }
        self.resume(Vec::new());
    }

    /// After (re)connecting to ptyd: follow every terminal from where the relay connection
    /// stands, once it has resumed (until then `resume` does it).
    pub async fn resubscribe_all(&self) {
        // Ended ones too: their last bytes and their exit have yet to reach the relay.
        let sessions = self.list().await;
        let resumed = *lock(&self.mode) == Mode::Resumed;
        if !resumed {
            return;
        }
        for session in sessions {
            let from = {
                let listed = lock(&self.listed);
                let mut terminals = lock(&self.terminals);
                let stream = terminals.entry(session.id.clone()).or_default();
                resume_point(stream, listed.get(&session.id).copied())
            };
            let request = Request::Subscribe {
                id: session.id.clone(),
                replay: false,
                from,
            };
            if self.to_ptyd(&request, &[]).is_err() {
                return;
            }
            tracing::info!(session = %session.id, "re-attached to terminal");
        }
    }

    /// Counts input handed to ptyd for `id`; acknowledges at once after 64 KiB.
    pub fn input_forwarded(&self, id: &str, n: usize) {
        crate::metrics::global().input(n);
        let ack = lock(&self.terminals).get_mut(id).and_then(|stream| {
            stream.forwarded(n);
            stream.ack_due(Instant::now(), false)
        });
        if let Some(input_offset) = ack {
            self.to_relay(&Control::InputAck {
                session_id: id.to_string(),
                input_offset,
            });
        }
    }

    /// Sends the `input.ack`s that are due (called every 50 ms on a live connection).
    pub fn flush_acks(&self) {
        let now = Instant::now();
        let due: Vec<(String, u64)> = lock(&self.terminals)
            .iter_mut()
            .filter_map(|(id, stream)| stream.ack_due(now, true).map(|o| (id.clone(), o)))
            .collect();
        for (session_id, input_offset) in due {
            self.to_relay(&Control::InputAck {
                session_id,
                input_offset,
            });
        }
    }

    /// Claims `id` for a new terminal, or says which limit refuses it (the relay's error code).
    pub fn claim_session(&self, id: &str, max: usize) -> Result<(), &'static str> {
        if !crate::ptyd::protocol::valid_session_id(id) {
            return Err("invalid_session_id");
        }
        let mut terminals = lock(&self.terminals);
        if terminals.contains_key(id) {
            return Err("session_exists");
        }
        if terminals.len() >= max {
            return Err("too_many_sessions");
        }
        // A new terminal's output starts at 0 on this connection.
        let stream = Stream {
            next_output: Some(0),
            ..Stream::default()
        };
        terminals.insert(id.to_string(), stream);
        crate::metrics::global().set_terminals(terminals.len());
        Ok(())
    }

    /// Forgets a terminal that ended, was closed, or failed to open.
    pub fn release_session(&self, id: &str) {
        let mut terminals = lock(&self.terminals);
        terminals.remove(id);
        crate::metrics::global().set_terminals(terminals.len());
    }

    /// Waits until the pty daemon is connected, at most `limit`; false if it never was.
    pub async fn wait_for_ptyd(&self, limit: std::time::Duration) -> bool {
        let mut ready = self.ptyd_ready.subscribe();
        tokio::time::timeout(limit, ready.wait_for(|connected| *connected))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Asks ptyd to become the binary at `path`, keeping every terminal; the connection
    /// then drops and the supervisor reconnects to the same pid.
    pub fn upgrade_ptyd(&self, path: &std::path::Path) {
        // Under the input lock: no input goes after the `upgrade` on this connection.
        let mut held = lock(&self.held_input);
        self.upgrading.store(true, Ordering::SeqCst);
        *lock(&self.upgrade_refused) = None;
        tracing::info!(path = %path.display(), "upgrading tether-ptyd in place");
        let request = Request::Upgrade {
            path: path.display().to_string(),
        };
        match self.to_ptyd(&request, &[]) {
            Ok(()) => {
                held.get_or_insert_with(Vec::new);
            }
            Err(e) => {
                self.upgrading.store(false, Ordering::SeqCst);
                *lock(&self.upgrade_refused) = Some(e.to_string());
            }
        }
    }

    /// Hands input for terminal `id` to ptyd: `Ok(true)` when sent, `Ok(false)` when kept
    /// back until an upgrade of ptyd is over.
    pub fn input_to_ptyd(&self, id: &str, chunk: &[u8]) -> anyhow::Result<bool> {
        let mut held = lock(&self.held_input);
        if let Some(held) = held.as_mut() {
            held.push((id.to_string(), chunk.to_vec()));
            return Ok(false);
        }
        self.to_ptyd(&Request::Input { id: id.to_string() }, chunk)?;
        Ok(true)
    }

    /// Sends the input kept back during an upgrade, in order (the new image is connected,
    /// or the old one refused and goes on).
    pub fn release_held_input(&self) {
        let mut held = lock(&self.held_input);
        let input = held.take().unwrap_or_default();
        if !input.is_empty() {
            let bytes: usize = input.iter().map(|(_, chunk)| chunk.len()).sum();
            tracing::info!(bytes, "sending the input held back during the ptyd upgrade");
        }
        for (id, chunk) in input {
            if self
                .to_ptyd(&Request::Input { id: id.clone() }, &chunk)
                .is_ok()
            {
                self.input_forwarded(&id, chunk.len());
            }
        }
    }

    /// True (once) when the connection that ended had been asked to upgrade.
    pub fn upgrade_ended(&self) -> bool {
        self.upgrading.swap(false, Ordering::SeqCst)
    }

    /// Whether an `upgrade` was sent to ptyd and has not ended yet.
    pub fn upgrade_in_progress(&self) -> bool {
        self.upgrading.load(Ordering::SeqCst)
    }

    /// Why the last upgrade was refused, if it was.
    pub fn upgrade_refusal(&self) -> Option<String> {
        lock(&self.upgrade_refused).clone()
    }

    /// The current pty daemon's version, if connected.
    pub fn ptyd_version(&self) -> Option<String> {
        lock(&self.ptyd).as_ref().map(|c| c.daemon_version.clone())
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

    /// Installs the current relay connection's outbound queues (`hello` has been sent on
    /// it): output is held until the relay answers with `resume`.
    pub fn set_relay(&self, out: Option<RelayOut>) {
        *lock(&self.relay) = out;
        *lock(&self.mode) = Mode::Holding;
        lock(&self.listed).clear();
        self.unsubscribe_all();
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
    /// relay connection the output is dropped (ptyd's replay buffer resends it later).
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

    /// The terminals for a new connection's `hello`: where each stands is that
    /// connection's to learn from `resume`.
    pub async fn sessions_for_hello(&self) -> Vec<HelloSession> {
        let sessions = self.sessions().await;
        let mut terminals = lock(&self.terminals);
        for session in &sessions {
            if let Some(stream) = terminals.get_mut(&session.session_id) {
                stream.next_output = None;
                stream.at_hello = Some(session.output_offset);
            }
        }
        sessions
    }

    /// The live terminals the pty daemon holds, with their offsets, for `hello`.
    async fn sessions(&self) -> Vec<HelloSession> {
        self.list()
            .await
            .into_iter()
            // `hello` names the live ones; an ended one is followed after `resume` for its
            // last bytes and its exit.
            .filter(|s| s.alive)
            .map(|s| HelloSession {
                session_id: s.id,
                pid: s.pid,
                cols: s.cols,
                rows: s.rows,
                output_offset: s.output_offset,
                input_offset: s.input_offset,
            })
            .collect()
    }

    /// Every terminal the pty daemon holds, ended ones included; each becomes one of ours.
    /// A daemon that goes away before it answers (an upgrade execs it) is asked again once
    /// it is back (within 5 s); one that is not connected gets no question.
    async fn list(&self) -> Vec<SessionInfo> {
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            {
                // Queued only once sent (a waiter for a `list` that never went would take
                // the next reply), and under the lock, so the reply cannot come first.
                let mut waiters = lock(&self.list_waiters);
                if self.to_ptyd(&Request::List, &[]).is_err() {
                    return Vec::new();
                }
                waiters.push_back(tx);
            }
            match tokio::time::timeout(std::time::Duration::from_secs(5), rx).await {
                Ok(Ok(list)) => return self.adopt(list),
                // The connection ended and its waiters were dropped.
                Ok(Err(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    if !self.wait_for_ptyd(std::time::Duration::from_secs(5)).await {
                        return Vec::new();
                    }
                }
                Err(_) => return Vec::new(),
            }
        }
        Vec::new()
    }

    /// Makes every terminal of a `list-reply` one of ours, with ptyd's input count.
    fn adopt(&self, list: Vec<SessionInfo>) -> Vec<SessionInfo> {
        let mut terminals = lock(&self.terminals);
        for s in &list {
            let stream = terminals.entry(s.id.clone()).or_default();
            // ptyd's count is what the relay may rely on (input in flight to ptyd was
            // queued before this `list` and is counted in it).
            stream.input_offset = stream.input_offset.max(s.input_offset);
            stream.acked = stream.input_offset;
        }
        list
    }

    /// The part of an output chunk the relay connection is owed: nothing while holding
    /// for `resume`, then exactly the bytes after the offset it stands at (all of it from
    /// a daemon that sends no offsets).
    fn owed(&self, id: &str, offset: Option<u64>, len: usize) -> Option<std::ops::Range<usize>> {
        if *lock(&self.mode) == Mode::Holding {
            return None;
        }
        let mut terminals = lock(&self.terminals);
        match (offset, terminals.get_mut(id)) {
            (Some(offset), Some(stream)) => admit(&mut stream.next_output, offset, len),
            _ => Some(0..len),
        }
    }

    /// Routes one event from the pty daemon; output waits for room in the relay's queue.
    pub async fn from_ptyd(&self, event: Event, payload: Vec<u8>) {
        match event {
            Event::Output { id, offset } => {
                let Some(range) = self.owed(&id, offset, payload.len()) else {
                    return;
                };
                crate::metrics::global().output(range.len());
                match encode_binary(KIND_OUTPUT, &id, &payload[range]) {
                    Some(frame) => self.output_to_relay(Message::binary(frame)).await,
                    None => {
                        tracing::warn!(session = %id, "session id longer than 255 bytes: output dropped")
                    }
                }
            }
            Event::Gap { id, from, to } => {
                let announce = {
                    let mut terminals = lock(&self.terminals);
                    let stream = terminals.get_mut(&id);
                    match stream {
                        Some(stream) if stream.next_output == Some(from) => {
                            stream.next_output = Some(to);
                            true
                        }
                        _ => false,
                    }
                };
                if announce {
                    crate::metrics::global().gap(to - from);
                    tracing::warn!(session = %id, from, to, "output left the replay buffer before the relay got it");
                    self.to_relay(&Control::SessionGap {
                        session_id: id,
                        from,
                        to,
                    });
                }
            }
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
            Event::Error { id, code, message } if code == "EUPGRADE" => {
                let _ = id;
                self.upgrading.store(false, Ordering::SeqCst);
                tracing::warn!("tether-ptyd refused to upgrade and goes on serving: {message}");
                *lock(&self.upgrade_refused) = Some(message);
                self.release_held_input();
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
