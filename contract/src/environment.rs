//! Environment variables the runtime reads, named once for the runtime and the harness
//! (which sets or clears them around the processes it starts).

/// The proxy variables, in both cases.
pub const PROXY_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// How long, in seconds, a `--via-host` login may stay pending in the host service
/// (default five minutes; the harness shortens it to test expiry).
pub const FLOW_TTL_ENV: &str = "TETHER_HOST_FLOW_TTL_SECS";
