//! The hub's side of the pty daemon: the current connection (if any), a watch on whether
//! there is one, and the `list`s waiting for their replies, answered in the order sent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::ptyd::client::PtydClient;
use crate::sync::lock;
use tether_contract::ptyd_protocol::{Request, SessionInfo};

/// The current pty daemon connection and what waits on it.
pub(crate) struct PtydLink {
    client: Mutex<Option<PtydClient>>,
    list_waiters: Mutex<VecDeque<oneshot::Sender<Vec<SessionInfo>>>>,
    connected: watch::Sender<bool>,
}

impl PtydLink {
    /// Not connected.
    pub(crate) fn new() -> Self {
        PtydLink {
            client: Mutex::new(None),
            list_waiters: Mutex::new(VecDeque::new()),
            connected: watch::Sender::new(false),
        }
    }

    /// Installs (or clears) the connection; `list`s sent on the previous one get no reply.
    pub(crate) fn set(&self, client: Option<PtydClient>) {
        let connected = client.is_some();
        *lock(&self.client) = client;
        lock(&self.list_waiters).clear();
        self.connected.send_replace(connected);
    }

    /// Sends a request; fails when no daemon is connected.
    pub(crate) fn send(&self, request: &Request, payload: &[u8]) -> anyhow::Result<()> {
        match lock(&self.client).as_ref() {
            Some(client) => client.send(request, payload),
            None => anyhow::bail!("tether-ptyd is not running"),
        }
    }

    /// The connected daemon's version.
    pub(crate) fn version(&self) -> Option<String> {
        lock(&self.client)
            .as_ref()
            .map(|c| c.daemon_version.clone())
    }

    /// The connected daemon's pid.
    pub(crate) fn pid(&self) -> Option<u32> {
        lock(&self.client).as_ref().map(|c| c.daemon_pid)
    }

    /// Waits until a daemon is connected, at most `limit`; false if none was.
    pub(crate) async fn wait_connected(&self, limit: Duration) -> bool {
        let mut connected = self.connected.subscribe();
        tokio::time::timeout(limit, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Sends `list`; the receiver gets its reply, or is dropped when the connection ends
    /// first. `None` when no daemon is connected.
    pub(crate) fn ask_list(&self) -> Option<oneshot::Receiver<Vec<SessionInfo>>> {
        let (tx, rx) = oneshot::channel();
        // Queued only once sent (a waiter for a `list` that never went would take the
        // next reply), and under the lock, so the reply cannot come first.
        let mut waiters = lock(&self.list_waiters);
        self.send(&Request::List, &[]).ok()?;
        waiters.push_back(tx);
        Some(rx)
    }

    /// Hands a `list-reply` to the oldest `list` still waiting.
    pub(crate) fn list_replied(&self, sessions: Vec<SessionInfo>) {
        if let Some(waiter) = lock(&self.list_waiters).pop_front() {
            let _ = waiter.send(sessions);
        }
    }
}
