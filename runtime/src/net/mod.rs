//! How tether meets real networks (contract section 9): one TLS trust configuration
//! shared by the HTTP client and the relay WebSocket, proxies from the environment,
//! the plaintext rule, and certificate failures that name what went wrong.

pub(crate) mod cert_failure;
pub(crate) mod http_client;
pub(crate) mod plaintext;
pub(crate) mod probe;
pub(crate) mod proxy;
pub(crate) mod stream;
pub(crate) mod trust;

/// The environment variables besides the proxy ones (`tether_contract::environment::PROXY_ENV`) that decide
/// how tether meets the network (contract section 9): an installed service must get them
/// too, or it would not trust the private CA or use the proxy the CLI used.
pub const TRUST_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    tether_contract::environment::ALLOW_PLAINTEXT_ENV,
];

pub use cert_failure::{CertFailure, CertProblem};
pub use http_client::{download_client, http_client, local_http_client};
pub use plaintext::check as check_plaintext;
