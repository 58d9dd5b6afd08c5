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

/// The state directory (config, instances, logs).
pub const HOME_ENV: &str = "TETHER_HOME";

/// The API / authorization server's base URL.
pub const API_URL_ENV: &str = "TETHER_API_URL";

/// The relay's base URL (`ws://` or `wss://`); derived from the API URL when unset.
pub const RELAY_URL_ENV: &str = "TETHER_RELAY_URL";

/// An API key, used instead of the stored OAuth session (contract section 2).
pub const API_KEY_ENV: &str = "TETHER_API_KEY";

/// Set to `1` to let tether talk to a non-loopback server in cleartext (contract section 9).
pub const ALLOW_PLAINTEXT_ENV: &str = "TETHER_ALLOW_PLAINTEXT";

/// The log filter, in `tracing_subscriber::EnvFilter` syntax (default `info`).
pub const LOG_ENV: &str = "TETHER_LOG";

/// `json` for one JSON object per log line; anything else gives text lines.
pub const LOG_FORMAT_ENV: &str = "TETHER_LOG_FORMAT";

/// How many bytes of output tether-ptyd keeps per terminal for a resume (contract section 6).
pub const REPLAY_BYTES_ENV: &str = "TETHER_REPLAY_BYTES";

/// Set by the units `tether host install` writes to the manager's name (`systemd`,
/// `launchd`), and removed from every child's environment.
pub const SERVICE_MANAGER_ENV: &str = "TETHER_SERVICE_MANAGER";

/// Where `install.sh` and `tether self-update` fetch releases (contract section 8).
pub const DOWNLOAD_URL_ENV: &str = "TETHER_DOWNLOAD_URL";

/// How many terminals one host serves at once (contract section 4; default 64).
pub const MAX_TERMINALS_ENV: &str = "TETHER_MAX_TERMINALS";
