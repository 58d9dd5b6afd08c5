//! The switchboard between the relay connection and the pty daemon: whichever
//! connection is current on each side, messages go to it, and each terminal's output
//! reaches the relay exactly once across reconnects (`streams.rs`).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::state::HostState;
use super::streams::{Mode, Stream};
use crate::sync::lock;
use tether_contract::ptyd_protocol::{ErrorCode, Event};
use tether_contract::relay_protocol::{encode_binary, Control, OpenRefused, KIND_OUTPUT};

mod oauth_mailbox;
mod ptyd_link;
mod resume;
mod upgrade;

pub use oauth_mailbox::{OAuthCallback, OAuthMailbox};
use ptyd_link::PtydLink;
use upgrade::UpgradeState;

/// Shared by the relay client, the supervisor and the APIs.
pub struct Hub {
    /// What `/health` and `host status` report.
    pub state: Arc<HostState>,
    /// Where the relay's `oauth.callback`s go.
    pub oauth: OAuthMailbox,
    /// The current pty daemon connection.
    pub(crate) ptyd: PtydLink,
    relay: Mutex<Option<RelayOut>>,
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
    /// Where an upgrade of ptyd in place stands.
    upgrade: UpgradeState,
}

/// The current relay connection's outbound queues, both bounded.
#[derive(Debug, Clone)]
pub struct RelayOut {
    /// Terminal output: a full queue makes output wait (and so ptyd pause the pty).
    pub data: mpsc::Sender<Message>,
    /// Control messages: a full queue drops new ones.
    pub control: mpsc::Sender<Message>,
}

impl Hub {
    /// A hub with neither side connected.
    pub fn new(state: Arc<HostState>) -> Arc<Self> {
        Arc::new(Hub {
            state,
            oauth: OAuthMailbox::default(),
            ptyd: PtydLink::new(),
            relay: Mutex::new(None),
            terminals: Mutex::new(HashMap::new()),
            mode: Mutex::new(Mode::Holding),
            listed: Mutex::new(HashMap::new()),
            said_protocol_1: AtomicBool::new(false),
            upgrade: UpgradeState::default(),
        })
    }

    /// Claims `id` for a new terminal, or says which limit refuses it (the relay's error code).
    pub fn claim_session(&self, id: &str, max: usize) -> Result<(), OpenRefused> {
        if !tether_contract::ptyd_protocol::valid_session_id(id) {
            return Err(OpenRefused::InvalidSessionId);
        }
        let mut terminals = lock(&self.terminals);
        if terminals.contains_key(id) {
            return Err(OpenRefused::SessionExists);
        }
        if terminals.len() >= max {
            return Err(OpenRefused::TooManySessions);
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

    /// Routes one event from the pty daemon; output waits for room in the relay's queue.
    pub async fn route_ptyd_event(&self, event: Event, payload: Vec<u8>) {
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
            Event::ListReply { sessions } => self.ptyd.list_replied(sessions),
            Event::Error {
                code: ErrorCode::Upgrade,
                message,
                ..
            } => self.upgrade_refused(message),
            Event::Error { id, code, message } => {
                tracing::warn!(session = ?id, %code, "tether-ptyd: {message}");
                if let (Some(id), ErrorCode::Spawn | ErrorCode::Exists) = (&id, code) {
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
