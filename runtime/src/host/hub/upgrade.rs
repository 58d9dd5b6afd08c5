//! Upgrading the pty daemon in place: the request, the input held back meanwhile, and
//! how it ended.

use std::sync::atomic::Ordering;

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use super::Hub;
use crate::sync::lock;
use tether_contract::ptyd_protocol::Request;

/// Input for one terminal (its id, the bytes) kept back while ptyd upgrades.
type HeldInput = (String, Vec<u8>);

/// Where an upgrade of ptyd in place stands.
#[derive(Default)]
pub(super) struct UpgradeState {
    /// An `upgrade` was sent to ptyd and has not ended yet.
    running: AtomicBool,
    /// Input kept back while ptyd upgrades (`Some` from the `upgrade` until the new image
    /// is connected or the upgrade is refused): what ptyd has not read when it execs is gone.
    held_input: Mutex<Option<Vec<HeldInput>>>,
    /// Why the last upgrade of ptyd was refused (`EUPGRADE`), if it was.
    refused: Mutex<Option<String>>,
}

impl Hub {
    /// Asks ptyd to become the binary at `path`, keeping every terminal; the connection
    /// then drops and the supervisor reconnects to the same pid.
    pub fn upgrade_ptyd(&self, path: &std::path::Path) {
        // Under the input lock: no input goes after the `upgrade` on this connection.
        let mut held = lock(&self.upgrade.held_input);
        self.upgrade.running.store(true, Ordering::SeqCst);
        *lock(&self.upgrade.refused) = None;
        tracing::info!(path = %path.display(), "upgrading tether-ptyd in place");
        let request = Request::Upgrade {
            path: path.display().to_string(),
        };
        match self.ptyd.send(&request, &[]) {
            Ok(()) => {
                held.get_or_insert_with(Vec::new);
            }
            Err(e) => {
                self.upgrade.running.store(false, Ordering::SeqCst);
                *lock(&self.upgrade.refused) = Some(e.to_string());
            }
        }
    }

    /// Hands input for terminal `id` to ptyd: `Ok(true)` when sent, `Ok(false)` when kept
    /// back until an upgrade of ptyd is over.
    pub fn input_to_ptyd(&self, id: &str, chunk: &[u8]) -> anyhow::Result<bool> {
        let mut held = lock(&self.upgrade.held_input);
        if let Some(held) = held.as_mut() {
            held.push((id.to_string(), chunk.to_vec()));
            return Ok(false);
        }
        self.ptyd
            .send(&Request::Input { id: id.to_string() }, chunk)?;
        Ok(true)
    }

    /// Sends the input kept back during an upgrade, in order (the new image is connected,
    /// or the old one refused and goes on).
    pub fn release_held_input(&self) {
        let mut held = lock(&self.upgrade.held_input);
        let input = held.take().unwrap_or_default();
        if !input.is_empty() {
            let bytes: usize = input.iter().map(|(_, chunk)| chunk.len()).sum();
            tracing::info!(bytes, "sending the input held back during the ptyd upgrade");
        }
        for (id, chunk) in input {
            if self
                .ptyd
                .send(&Request::Input { id: id.clone() }, &chunk)
                .is_ok()
            {
                self.input_forwarded(&id, chunk.len());
            }
        }
    }

    /// ptyd answered `EUPGRADE`: it goes on serving as it was, and the held input goes to it.
    pub(super) fn upgrade_refused(&self, message: String) {
        self.upgrade.running.store(false, Ordering::SeqCst);
        tracing::warn!("tether-ptyd refused to upgrade and goes on serving: {message}");
        *lock(&self.upgrade.refused) = Some(message);
        self.release_held_input();
    }

    /// True (once) when the connection that ended had been asked to upgrade.
    pub fn upgrade_ended(&self) -> bool {
        self.upgrade.running.swap(false, Ordering::SeqCst)
    }

    /// Whether an `upgrade` was sent to ptyd and has not ended yet.
    pub fn upgrade_in_progress(&self) -> bool {
        self.upgrade.running.load(Ordering::SeqCst)
    }

    /// Why the last upgrade was refused, if it was.
    pub fn upgrade_refusal(&self) -> Option<String> {
        lock(&self.upgrade.refused).clone()
    }
}
