//! The control API's documents, shared by the host service that answers and the CLI that
//! asks.

use serde::{Deserialize, Serialize};

use super::state::StateSnapshot;

/// `GET /status` on the control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDocument {
    /// Process id.
    pub pid: u32,
    /// Health port.
    pub port: u16,
    /// Organization served.
    pub organization_id: String,
    /// Host id announced to the relay.
    pub host_id: String,
    /// Service version.
    pub version: String,
    /// The pty daemon's pid, while connected.
    pub ptyd_pid: Option<u32>,
    /// What started the service: `systemd`, `launchd` or `daemon`.
    #[serde(default)]
    pub manager: String,
    /// Relay and pty daemon state.
    #[serde(flatten)]
    pub state: StateSnapshot,
}

/// `POST /internal/oauth/connect/start`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowStarted {
    /// The flow's state, to poll with.
    pub state: String,
    /// The URL to open in a browser.
    pub url: String,
    /// When the flow expires, unix ms.
    pub expires_at: i64,
}

/// `POST /internal/shutdown`'s body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownRequest {
    /// Also stop the pty daemon (and so every terminal).
    #[serde(default)]
    pub stop_ptyd: bool,
}
