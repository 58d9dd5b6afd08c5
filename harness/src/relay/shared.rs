//! The relay's state shared by its connections and its handle: the hosts connected, the
//! terminals and requests waiting on them, and every handshake seen.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{anyhow, Context};
use axum::extract::ws::Message;
use serde_json::Value;
use tether_contract::relay_protocol::Control;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::stream::RelayStream;
use super::verify::Verifier;
use crate::lock::lock;

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
pub(crate) struct HostEntry {
    pub(crate) current: Option<(u64, mpsc::UnboundedSender<Message>)>,
    pub(crate) hello: Option<Value>,
    pub(crate) terminals: HashMap<String, mpsc::UnboundedSender<TerminalEvent>>,
    pub(crate) http: HashMap<String, oneshot::Sender<Value>>,
    /// `error`s the host sent about no terminal in particular, in order.
    pub(crate) errors: Vec<String>,
    /// This host's connections still open (during a rotation, two).
    pub(crate) open: HashSet<u64>,
    /// Each terminal's streams, kept across connections (protocol 2).
    pub(crate) streams: HashMap<String, RelayStream>,
    /// The connection input may be sent on: set once it has been answered with `resume`
    /// (and the unacknowledged input resent), or at a protocol-1 `hello`.
    pub(crate) input_ready: Option<u64>,
}

pub(crate) struct Shared {
    pub(crate) verifier: Verifier,
    pub(crate) hosts: Mutex<Hosts>,
    pub(crate) connections: Mutex<Vec<ConnRecord>>,
    pub(crate) changed: Notify,
    pub(crate) next_conn: AtomicU64,
    pub(crate) stop: watch::Receiver<bool>,
    /// How long a connection told `tokenExpired` may stay open.
    pub(crate) expiry_grace: Duration,
    pub(crate) ping_every: Duration,
    /// False while the relay plays a peer that stopped reading what hosts send.
    pub(crate) reading: watch::Sender<bool>,
    /// True while the relay plays a protocol-1 relay (no `resume`, no input resent).
    pub(crate) protocol_1: AtomicBool,
    /// A connection to end now: its number, and whether with a close frame.
    pub(crate) drop_connection: watch::Sender<Option<(u64, bool)>>,
    /// True while the relay refuses every handshake (`503`), as one that is down would.
    pub(crate) refusing: AtomicBool,
    /// The transcript of the scenario that started the relay: frames go into it.
    pub(crate) transcript: Option<Arc<crate::transcript::Transcript>>,
}

/// The hosts by `(org, host id)`.
pub(crate) type Hosts = HashMap<(String, String), HostEntry>;

impl Shared {
    /// Records a frame of connection `conn` going `direction` (`to_host`, `from_host`).
    pub(crate) fn record_frame(&self, direction: &'static str, conn: u64, message: &Message) {
        let Some(transcript) = &self.transcript else {
            return;
        };
        let text = match message {
            Message::Text(text) => text.to_string(),
            Message::Binary(bytes) => crate::transcript::describe_binary(bytes),
            Message::Close(_) => "close".to_string(),
            _ => return,
        };
        transcript.push(crate::transcript::EventKind::Frame {
            direction,
            connection: conn,
            text,
        });
    }

    pub(crate) fn hosts(&self) -> MutexGuard<'_, Hosts> {
        lock(&self.hosts)
    }

    /// Waits until `found` finds something in the hosts (checked again at every change), or `limit` passes.
    pub(crate) async fn wait_for<T>(
        &self,
        limit: Duration,
        mut found: impl FnMut(&Hosts) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            if let Some(found) = found(&self.hosts()) {
                return Some(found);
            }
            tokio::time::timeout_at(deadline, notified).await.ok()?;
        }
    }

    /// True while playing a protocol-1 relay.
    pub(crate) fn resume_off(&self) -> bool {
        self.protocol_1.load(Ordering::SeqCst)
    }

    /// Types `bytes` into a terminal: kept until the host acknowledges them, sent now when
    /// the current connection is ready for input (else resent after its `resume`).
    pub(crate) fn send_input(
        &self,
        org: &str,
        host: &str,
        session: &str,
        frame: Message,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let mut hosts = self.hosts();
        let entry = hosts.entry((org.into(), host.into())).or_default();
        entry
            .streams
            .entry(session.into())
            .or_default()
            .unacked
            .extend(bytes);
        match &entry.current {
            Some((id, tx)) if entry.input_ready == Some(*id) => tx
                .send(frame)
                .map_err(|_| anyhow!("host {host} of {org} just disconnected")),
            _ => Ok(()),
        }
    }

    /// Every handshake so far.
    pub(crate) fn connections(&self) -> Vec<ConnRecord> {
        lock(&self.connections).clone()
    }

    /// Notes a handshake and gives it its number.
    pub(crate) fn record(&self, org: &str, host: &str, token: &str, status: u16) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        lock(&self.connections).push(ConnRecord {
            id,
            org: org.into(),
            host_id: host.into(),
            token: token.into(),
            status,
        });
        id
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
        let mut hosts = self.hosts();
        let entry = hosts.entry((org.into(), host.into())).or_default();
        entry.terminals.insert(session.into(), tx);
        entry.streams.entry(session.into()).or_default();
        rx
    }
}

/// Waits until a host of `org` is connected and has said hello.
pub(crate) async fn wait_host(
    shared: &Arc<Shared>,
    org: &str,
    limit: Duration,
) -> anyhow::Result<(String, Value)> {
    let found = shared.wait_for(limit, |hosts| {
        hosts.iter().find_map(|((o, h), e)| {
            (o == org && e.current.is_some())
                .then(|| e.hello.clone().map(|hello| (h.clone(), hello)))
                .flatten()
        })
    });
    found
        .await
        .with_context(|| format!("no host of {org} connected to the relay within {limit:?}"))
}

/// What the host said about a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalEvent {
    /// `session.opened` with the shell's pid.
    Opened(u32),
    /// Output bytes.
    Output(Vec<u8>),
    /// `session.exit` with the code.
    Exit(Option<i32>),
    /// An `error` about this terminal.
    Error(String),
    /// `session.gap`: output `from..to` is gone.
    Gap(u64, u64),
}
