//! What the host service reports about itself in `/health` and `host status`.

use std::sync::Mutex;

use crate::sync::lock;
use serde::{Deserialize, Serialize};

/// The relay connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayState {
    /// Dialing, or waiting to dial again.
    Connecting,
    /// Connected and greeted.
    Connected,
    /// The relay's or the API's TLS certificate was refused; retrying with backoff.
    TlsError,
    /// Stopped: the relay kept refusing the credential, or rotations hit the cap.
    AuthFailed,
}

/// The pty daemon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PtydState {
    /// Connected to a live daemon.
    Running,
    /// Starting or restarting it.
    Restarting,
    /// Crashed more than 3 times in 60 s; no longer restarted.
    Failed,
}

/// The `/health` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` while the service answers.
    pub status: String,
    /// Relay connection state.
    pub relay: RelayState,
    /// Pty daemon state.
    pub ptyd: PtydState,
}

#[derive(Debug)]
struct Inner {
    relay: RelayState,
    ptyd: PtydState,
    relay_detail: Option<String>,
    rotations: u64,
    reconnects: u64,
    ptyd_restarts: u64,
}

/// Shared, updated by the relay client and the supervisor, read by the APIs.
#[derive(Debug)]
pub struct HostState {
    inner: Mutex<Inner>,
}

/// A snapshot for `host status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// Relay connection state.
    pub relay: RelayState,
    /// Pty daemon state.
    pub ptyd: PtydState,
    /// Why the relay is in its state, when it is not connected.
    pub relay_detail: Option<String>,
    /// Token rotations so far.
    pub rotations: u64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
    /// Pty daemon restarts.
    pub ptyd_restarts: u64,
}

impl Default for HostState {
    fn default() -> Self {
        HostState {
            inner: Mutex::new(Inner {
                relay: RelayState::Connecting,
                ptyd: PtydState::Restarting,
                relay_detail: None,
                rotations: 0,
                reconnects: 0,
                ptyd_restarts: 0,
            }),
        }
    }
}

impl HostState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut lock(&self.inner))
    }

    /// Sets the relay state and why.
    pub fn set_relay(&self, state: RelayState, detail: Option<String>) {
        self.with(|i| {
            i.relay = state;
            i.relay_detail = detail;
        });
    }

    /// Sets the pty daemon state.
    pub fn set_ptyd(&self, state: PtydState) {
        self.with(|i| i.ptyd = state);
    }

    /// Counts a token rotation.
    pub fn count_rotation(&self) {
        self.with(|i| i.rotations += 1);
    }

    /// Counts a reconnection.
    pub fn count_reconnect(&self) {
        self.with(|i| i.reconnects += 1);
    }

    /// Counts a pty daemon restart.
    pub fn count_ptyd_restart(&self) {
        self.with(|i| i.ptyd_restarts += 1);
        crate::metrics::global().ptyd_restarted();
    }

    /// The `/health` document.
    pub fn health(&self) -> Health {
        self.with(|i| Health {
            status: "ok".into(),
            relay: i.relay,
            ptyd: i.ptyd,
        })
    }

    /// Everything, for `host status`.
    pub fn snapshot(&self) -> StateSnapshot {
        self.with(|i| StateSnapshot {
            relay: i.relay,
            ptyd: i.ptyd,
            relay_detail: i.relay_detail.clone(),
            rotations: i.rotations,
            reconnects: i.reconnects,
            ptyd_restarts: i.ptyd_restarts,
        })
    }
}
