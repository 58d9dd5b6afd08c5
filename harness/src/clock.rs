//! The wall clock: unix seconds, as JWT `iat`/`exp` count them, and unix milliseconds,
//! as `config.json`'s `expiresAt` does (contract section 2).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch (0 for a clock set before 1970).
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the unix epoch (0 for a clock set before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
