//! How tether meets real networks (contract section 9): one TLS trust configuration
//! shared by the HTTP client and the relay WebSocket, proxies from the environment,
//! the plaintext rule, and certificate failures that name what went wrong.

pub mod cert_failure;
pub mod http_client;
pub mod plaintext;
pub mod probe;
pub mod proxy;
pub mod stream;
pub mod trust;

pub use cert_failure::{CertFailure, CertProblem};
pub use http_client::{http_client, local_http_client};
