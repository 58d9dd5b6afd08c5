//! The control API: its paths and documents, shared by the host service that answers
//! and the CLI that asks.

use serde::{Deserialize, Serialize};
use tether_contract::environment::SERVICE_MANAGER_ENV;

use crate::host::state::StateSnapshot;

/// `GET`: [`StatusDocument`].
pub const STATUS_PATH: &str = "/status";
/// `POST`: [`FlowStarted`], or [`ControlError`] with 502.
pub const FLOW_START_PATH: &str = "/internal/oauth/connect/start";
/// `GET`: [`FlowProgress`] (404 with [`FlowStatus::Unknown`]); the route as axum spells it.
pub const FLOW_STATUS_ROUTE: &str = "/internal/oauth/connect/status/{state}";
/// `POST` a [`ShutdownRequest`]: [`Acknowledged`].
pub const SHUTDOWN_PATH: &str = "/internal/shutdown";

/// `POST`: upgrade the pty daemon in place to the `tether-ptyd` beside this service:
/// [`PtydUpgraded`], or `409` with a [`ControlError`] saying why not.
pub const PTYD_UPGRADE_PATH: &str = "/internal/ptyd/upgrade";

/// The pty daemon after an upgrade (or already up to date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PtydUpgraded {
    /// Its pid (unchanged by an upgrade).
    pub pid: u32,
    /// Its version now.
    pub version: String,
    /// The binary it runs from.
    pub exe: Option<String>,
}

/// The path to poll flow `state` at.
pub fn flow_status_path(state: &str) -> String {
    FLOW_STATUS_ROUTE.replace("{state}", state)
}

/// What started a `tether-host`, as its status document says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// A systemd unit written by `tether host install`.
    Systemd,
    /// A launchd agent written by `tether host install`.
    Launchd,
    /// `tether host start` (in the foreground or with `--daemon`).
    #[default]
    Daemon,
    /// A word this build does not know (a newer host's).
    #[serde(other)]
    Unknown,
}

impl Manager {
    /// What started this process: the marker the installed units set, else `Daemon`.
    /// (`INVOCATION_ID` and `XPC_SERVICE_NAME` are inherited by every shell a managed
    /// terminal starts, so they cannot tell.)
    pub fn of_this_process() -> Self {
        Self::named(std::env::var(SERVICE_MANAGER_ENV).ok().as_deref())
    }

    fn named(value: Option<&str>) -> Self {
        match value {
            Some("systemd") => Manager::Systemd,
            Some("launchd") => Manager::Launchd,
            _ => Manager::Daemon,
        }
    }

    /// The manager `tether host install` writes a unit for on this OS.
    pub fn of_this_os() -> Self {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }

    /// The word of the status document and of `SERVICE_MANAGER_ENV`.
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd",
            Manager::Launchd => "launchd",
            Manager::Daemon => "daemon",
            Manager::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The pty daemon's version, while connected.
    #[serde(default)]
    pub ptyd_version: Option<String>,
    /// The binary the pty daemon runs from (`/proc/<pid>/exe`).
    #[serde(default)]
    pub ptyd_exe: Option<String>,
    /// What started the service.
    #[serde(default)]
    pub manager: Manager,
    /// When this image of the service started, unix ms (a restart in place changes it, not the pid).
    #[serde(default)]
    pub started_at: i64,
    /// Relay and pty daemon state.
    #[serde(flatten)]
    pub state: StateSnapshot,
    /// The counters of `/metrics`.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsSnapshot,
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
    /// Instead of exiting, re-execute `tether-host` from the path it was started from (same
    /// pid, arguments and environment): how `self-update` restarts it on the new binary.
    #[serde(default)]
    pub restart: bool,
}

/// Where a flow stands, as `GET /internal/oauth/connect/status/<state>` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FlowStatus {
    /// Waiting for the browser.
    Pending,
    /// Tokens stored.
    Complete,
    /// The authorization server or the exchange failed.
    Error {
        /// Why, for the user.
        error: String,
    },
    /// Nobody came back within 5 minutes.
    Expired,
    /// A state this host service never issued, or forgot.
    Unknown,
}

impl FlowStatus {
    /// The `status` word on the wire.
    pub fn word(&self) -> &'static str {
        match self {
            FlowStatus::Pending => "pending",
            FlowStatus::Complete => "complete",
            FlowStatus::Error { .. } => "error",
            FlowStatus::Expired => "expired",
            FlowStatus::Unknown => "unknown",
        }
    }

    /// The error, for [`FlowStatus::Error`].
    pub fn error(&self) -> Option<&str> {
        match self {
            FlowStatus::Error { error } => Some(error),
            _ => None,
        }
    }
}

/// `GET /internal/oauth/connect/status/<state>`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowProgress {
    /// The flow asked about.
    pub state: String,
    /// Where it stands.
    #[serde(flatten)]
    pub status: FlowStatus,
}

/// A request the host service could not carry out: `{"status":"error","error":…}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename = "error")]
pub struct ControlError {
    /// Why, for the user.
    pub error: String,
}

/// `{"ok":true}`: the request was taken.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acknowledged {
    /// Always true.
    pub ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_wire_shape() {
        let pending = FlowProgress {
            state: "s1".into(),
            status: FlowStatus::Pending,
        };
        let failed = FlowProgress {
            state: "s2".into(),
            status: FlowStatus::Error {
                error: "denied".into(),
            },
        };
        let refused = ControlError {
            error: "no relay".into(),
        };
        assert_eq!(
            serde_json::to_value(&pending).ok(),
            Some(serde_json::json!({"state": "s1", "status": "pending"}))
        );
        assert_eq!(
            serde_json::to_value(&failed).ok(),
            Some(serde_json::json!({"state": "s2", "status": "error", "error": "denied"}))
        );
        assert_eq!(
            serde_json::to_value(&refused).ok(),
            Some(serde_json::json!({"status": "error", "error": "no relay"}))
        );
        let back: Option<FlowProgress> = serde_json::from_value(
            serde_json::json!({"state": "s2", "status": "error", "error": "denied"}),
        )
        .ok();
        assert_eq!(back, Some(failed));
        assert_eq!(
            flow_status_path("abc"),
            "/internal/oauth/connect/status/abc"
        );
    }

    #[test]
    fn only_the_marker_set_by_a_unit_names_a_manager() {
        assert_eq!(Manager::named(Some("systemd")), Manager::Systemd);
        assert_eq!(Manager::named(Some("launchd")), Manager::Launchd);
        assert_eq!(Manager::named(Some("other")), Manager::Daemon);
        assert_eq!(Manager::named(None), Manager::Daemon);
    }

    #[test]
    fn the_status_word_round_trips_and_a_newer_word_is_kept_apart() {
        for manager in [Manager::Systemd, Manager::Launchd, Manager::Daemon] {
            let json = serde_json::to_string(&manager).expect("serialize");
            assert_eq!(json, format!("\"{manager}\""));
            assert_eq!(serde_json::from_str::<Manager>(&json).ok(), Some(manager));
        }
        assert_eq!(
            serde_json::from_str::<Manager>("\"runit\"").ok(),
            Some(Manager::Unknown)
        );
    }
}
