//! The host service's counters (issue 30): one process-wide set, counted where things
//! happen (relay client, hub, supervisor, refresh), rendered in the Prometheus text format
//! by `prometheus-client` for `GET /metrics` on the loopback health port, and read as plain
//! numbers for `tether host status --json`. In the CLI nothing renders them; counting costs
//! an atomic add.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// Why a relay connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disconnect {
    /// Lost: network, relay gone, silence, write stall.
    Lost,
    /// The relay asked to drain (close code 4001).
    Drain,
    /// `tokenExpired`: rotated to a new connection.
    TokenExpired,
}

/// How a refresh of the stored OAuth tokens came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresh {
    /// New tokens, saved.
    Refreshed,
    /// Another process had refreshed them already.
    RefreshedElsewhere,
    /// The server refused the refresh token: the session is over.
    Rejected,
    /// The server could not be reached (the current token goes on while valid).
    Transient,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Every counter and gauge.
pub struct Metrics {
    relay_connects: Counter,
    relay_disconnects: Family<ReasonLabel, Counter>,
    rotations: Counter,
    token_expired: Counter,
    resume_replays: Counter,
    gap_bytes: Counter,
    output_bytes: Counter,
    input_bytes: Counter,
    terminals_open: Gauge,
    ptyd_restarts: Counter,
    ptyd_upgrades: Counter,
    refreshes: Family<OutcomeLabel, Counter>,
    resident_bytes: Gauge,
    open_fds: Gauge,
    relay_connected_seconds: Gauge,
    /// When the current relay connection came up, unix ms (0: not connected).
    connected_at_ms: AtomicI64,
    registry: Registry,
}

/// The counters as plain numbers, for `host status --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Relay connections made.
    pub relay_connects: u64,
    /// Relay connections lost (network, silence, stalls).
    pub relay_disconnects_lost: u64,
    /// Relay connections drained by the relay.
    pub relay_disconnects_drain: u64,
    /// `tokenExpired`s received.
    pub token_expired: u64,
    /// Token rotations.
    pub rotations: u64,
    /// Resumes that replayed output the relay had not got.
    pub resume_replays: u64,
    /// Output bytes announced as lost (`session.gap`).
    pub gap_bytes: u64,
    /// Terminal output bytes sent to the relay.
    pub output_bytes: u64,
    /// Terminal input bytes handed to the pty daemon.
    pub input_bytes: u64,
    /// Terminals open.
    pub terminals_open: i64,
    /// Pty daemon restarts.
    pub ptyd_restarts: u64,
    /// Pty daemon upgrades in place.
    pub ptyd_upgrades: u64,
    /// Seconds since the relay connection came up (absent while not connected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_connected_for_s: Option<i64>,
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tether");
        let m = Metrics {
            relay_connects: Counter::default(),
            relay_disconnects: Family::default(),
            rotations: Counter::default(),
            token_expired: Counter::default(),
            resume_replays: Counter::default(),
            gap_bytes: Counter::default(),
            output_bytes: Counter::default(),
            input_bytes: Counter::default(),
            terminals_open: Gauge::default(),
            ptyd_restarts: Counter::default(),
            ptyd_upgrades: Counter::default(),
            refreshes: Family::default(),
            resident_bytes: Gauge::default(),
            open_fds: Gauge::default(),
            relay_connected_seconds: Gauge::default(),
            connected_at_ms: AtomicI64::new(0),
            registry: Registry::default(),
        };
        m.register_relay(&mut registry);
        m.register_terminals_and_process(&mut registry);
        Metrics { registry, ..m }
    }

    /// Registers the relay connection's metrics: connects, ends, rotations, resumes.
    fn register_relay(&self, registry: &mut Registry) {
        registry.register(
            "relay_connects",
            "Relay connections made",
            self.relay_connects.clone(),
        );
        registry.register(
            "relay_disconnects",
            "Relay connections ended, by reason",
            self.relay_disconnects.clone(),
        );
        registry.register(
            "rotations",
            "Token rotations (a new connection before dropping the old)",
            self.rotations.clone(),
        );
        registry.register(
            "token_expired",
            "tokenExpired messages from the relay",
            self.token_expired.clone(),
        );
        registry.register(
            "resume_replays",
            "Resumes that replayed output the relay had not received",
            self.resume_replays.clone(),
        );
        registry.register(
            "resume_gap_bytes",
            "Output bytes announced as lost (session.gap)",
            self.gap_bytes.clone(),
        );
        registry.register(
            "relay_connected_seconds",
            "Seconds since the relay connection came up (0: not connected)",
            self.relay_connected_seconds.clone(),
        );
    }

    /// Registers the terminals' metrics (bytes, pty daemon) and the process's own.
    fn register_terminals_and_process(&self, registry: &mut Registry) {
        registry.register(
            "output_bytes",
            "Terminal output bytes sent to the relay",
            self.output_bytes.clone(),
        );
        registry.register(
            "input_bytes",
            "Terminal input bytes handed to the pty daemon",
            self.input_bytes.clone(),
        );
        registry.register(
            "terminals_open",
            "Terminals open",
            self.terminals_open.clone(),
        );
        registry.register(
            "ptyd_restarts",
            "Pty daemon restarts",
            self.ptyd_restarts.clone(),
        );
        registry.register(
            "ptyd_upgrades",
            "Pty daemon upgrades in place",
            self.ptyd_upgrades.clone(),
        );
        registry.register(
            "refreshes",
            "Refreshes of the stored OAuth tokens, by outcome",
            self.refreshes.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of tether-host",
            self.resident_bytes.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors of tether-host",
            self.open_fds.clone(),
        );
    }

    /// A relay connection came up.
    pub fn relay_connected(&self) {
        self.relay_connects.inc();
        self.connected_at_ms
            .store(crate::auth::now_ms(), Ordering::Relaxed);
    }

    /// A relay connection ended.
    pub fn relay_disconnected(&self, why: Disconnect) {
        let reason = match why {
            Disconnect::Lost => "lost",
            Disconnect::Drain => "drain",
            Disconnect::TokenExpired => "token_expired",
        };
        self.relay_disconnects
            .get_or_create(&ReasonLabel { reason })
            .inc();
        if why == Disconnect::TokenExpired {
            self.token_expired.inc();
        }
        self.connected_at_ms.store(0, Ordering::Relaxed);
    }

    /// A rotation.
    pub fn rotated(&self) {
        self.rotations.inc();
    }

    /// A resume that replays output from the relay's offsets.
    pub fn resume_replayed(&self) {
        self.resume_replays.inc();
    }

    /// A `session.gap` of `bytes`.
    pub fn gap(&self, bytes: u64) {
        self.gap_bytes.inc_by(bytes);
    }

    /// Output sent to the relay.
    pub fn output(&self, bytes: usize) {
        self.output_bytes.inc_by(bytes as u64);
    }

    /// Input handed to ptyd.
    pub fn input(&self, bytes: usize) {
        self.input_bytes.inc_by(bytes as u64);
    }

    /// How many terminals are open.
    pub fn set_terminals(&self, open: usize) {
        self.terminals_open.set(open as i64);
    }

    /// A pty daemon restart.
    pub fn ptyd_restarted(&self) {
        self.ptyd_restarts.inc();
    }

    /// A pty daemon upgrade in place.
    pub fn ptyd_upgraded(&self) {
        self.ptyd_upgrades.inc();
    }

    /// A refresh of the stored tokens.
    pub fn refreshed(&self, how: Refresh) {
        let outcome = match how {
            Refresh::Refreshed => "refreshed",
            Refresh::RefreshedElsewhere => "refreshed_elsewhere",
            Refresh::Rejected => "rejected",
            Refresh::Transient => "transient",
        };
        self.refreshes
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    fn connected_for_s(&self) -> Option<i64> {
        let at = self.connected_at_ms.load(Ordering::Relaxed);
        (at > 0).then(|| (crate::auth::now_ms() - at).max(0) / 1000)
    }

    /// The Prometheus text exposition, with the process gauges read now.
    pub fn render(&self) -> String {
        let (rss, fds) = process_figures();
        self.resident_bytes.set(rss as i64);
        self.open_fds.set(fds as i64);
        self.relay_connected_seconds
            .set(self.connected_for_s().unwrap_or(0));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        out
    }

    /// The counters as numbers.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let reason = |reason| {
            self.relay_disconnects
                .get_or_create(&ReasonLabel { reason })
                .get()
        };
        MetricsSnapshot {
            relay_connects: self.relay_connects.get(),
            relay_disconnects_lost: reason("lost"),
            relay_disconnects_drain: reason("drain"),
            token_expired: self.token_expired.get(),
            rotations: self.rotations.get(),
            resume_replays: self.resume_replays.get(),
            gap_bytes: self.gap_bytes.get(),
            output_bytes: self.output_bytes.get(),
            input_bytes: self.input_bytes.get(),
            terminals_open: self.terminals_open.get(),
            ptyd_restarts: self.ptyd_restarts.get(),
            ptyd_upgrades: self.ptyd_upgrades.get(),
            relay_connected_for_s: self.connected_for_s(),
        }
    }
}

/// This process's resident bytes and open descriptors, from `/proc/self`.
fn process_figures() -> (u64, u64) {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page_size())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (rss, fds)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_text_format_and_the_snapshot() {
        let metrics = Metrics::new();
        metrics.relay_connected();
        metrics.relay_disconnected(Disconnect::TokenExpired);
        metrics.output(100);
        metrics.refreshed(Refresh::Rejected);
        let text = metrics.render();
        for line in [
            "tether_relay_connects_total 1",
            "tether_relay_disconnects_total{reason=\"token_expired\"} 1",
            "tether_token_expired_total 1",
            "tether_output_bytes_total 100",
            "tether_refreshes_total{outcome=\"rejected\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.contains("tether_process_resident_memory_bytes "));
        let snapshot = metrics.snapshot();
        assert_eq!((snapshot.relay_connects, snapshot.output_bytes), (1, 100));
        assert_eq!(snapshot.relay_connected_for_s, None);
    }
}
