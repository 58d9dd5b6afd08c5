//! The daemon's side of one connected client: the queue its frames wait in, and the
//! flow-control limits a subscriber is held to (contract section 6).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};

use super::frame::encode_message;
use tether_contract::ptyd_protocol::Event;

/// Unsent bytes at which a subscriber makes the pty pause (contract: 1 MiB).
pub const PAUSE_AT: usize = 1024 * 1024;
/// Unsent bytes at which a subscriber is disconnected (contract: 8 MiB).
pub const DISCONNECT_AT: usize = 8 * 1024 * 1024;
/// How long a pty waits for a slow subscriber before disconnecting it.
pub const PAUSE_LIMIT: Duration = Duration::from_secs(10);

/// The daemon's side of one connected client: where its frames go.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    /// Unique per connection.
    pub id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
    kicked: Arc<AtomicBool>,
    kick: Arc<Notify>,
}

impl ClientHandle {
    /// A handle and the receiving end its writer task drains.
    pub fn new(id: u64) -> (Self, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = ClientHandle {
            id,
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
            kicked: Arc::new(AtomicBool::new(false)),
            kick: Arc::new(Notify::new()),
        };
        (handle, rx)
    }

    /// Queues an encoded frame; a client too far behind is disconnected instead.
    pub fn send_frame(&self, frame: Vec<u8>) {
        if self.kicked.load(Ordering::Relaxed) {
            return;
        }
        let queued = self.pending.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        if queued > DISCONNECT_AT {
            tracing::warn!(
                client = self.id,
                queued,
                "client is more than 8 MiB behind: disconnecting it"
            );
            self.disconnect();
            return;
        }
        let _ = self.tx.send(frame);
    }

    /// Queues an event with a payload.
    pub fn send(&self, event: &Event, payload: &[u8]) {
        self.send_frame(encode_message(event, payload));
    }

    /// The counter the writer task decrements after writing; holding it keeps no sender alive.
    pub fn pending_counter(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// Bytes queued but not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Asks the connection to close.
    pub fn disconnect(&self) {
        self.kicked.store(true, Ordering::Relaxed);
        self.kick.notify_one();
    }

    /// Resolves when the connection was asked to close.
    pub async fn kicked(&self) {
        if !self.kicked.load(Ordering::Relaxed) {
            self.kick.notified().await;
        }
    }
}
