//! The reference server's plain settings: which kind of server it plays, what `iss` its
//! authorization responses carry, and the device flow's script and record. The behaviour
//! they select lives in `standard.rs` and `state.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Which kind of server the reference server plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// tether's own API: JWT access tokens, `get-session`, minting.
    Tether,
    /// A standard server: opaque access tokens, UserInfo, ID tokens, `iss` in responses,
    /// and none of tether's `/api/auth/*` endpoints.
    Standard,
}

/// What the `iss` parameter of an authorization response says (standard profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssAnswer {
    /// The server's issuer.
    Correct,
    /// Another server's issuer (a mix-up attack).
    Wrong,
    /// Left out although the metadata promises it.
    Missing,
}

/// One scripted answer to a device-code poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAnswer {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`.
    SlowDown,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// Tokens.
    Approve,
}

/// Device flows: the answers to give, and when each poll came.
#[derive(Debug)]
pub struct DeviceFlows {
    /// `interval` handed out, in seconds.
    pub interval_s: u64,
    /// `expires_in` handed out, in seconds.
    pub expires_in_s: u64,
    /// Answers to the coming polls, in order; once empty, `Approve`.
    pub script: VecDeque<DeviceAnswer>,
    /// When each poll arrived.
    pub polls: Vec<Instant>,
    /// Device codes handed out → (user, expiry).
    pub(super) codes: HashMap<String, (String, i64)>,
}

impl Default for DeviceFlows {
    fn default() -> Self {
        DeviceFlows {
            interval_s: 1,
            expires_in_s: 600,
            script: VecDeque::new(),
            polls: Vec::new(),
            codes: HashMap::new(),
        }
    }
}
