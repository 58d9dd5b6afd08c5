//! The auth core's error type and the exit code each error maps to (contract section 1).

use std::path::PathBuf;

/// Exit code: generic error.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: usage (a refused plaintext URL, as for the configured ones).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: not signed in or session expired.
pub const EXIT_NOT_SIGNED_IN: i32 = 3;
/// Exit code: server or network unreachable after retries.
pub const EXIT_UNREACHABLE: i32 = 4;

/// Everything that can go wrong while authenticating.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential is stored or given.
    #[error("not signed in. Run: tether auth login")]
    NotSignedIn,
    /// Stored tokens belong to a different API than the one configured now.
    #[error("signed in to {stored}, but the API is now {current}. Run: tether auth login")]
    OtherServer {
        /// The server the stored sign-in is for.
        stored: String,
        /// The server configured now.
        current: String,
    },
    /// The authorization server rejected the refresh token (a 4xx).
    #[error("Session expired: {reason}. Run: tether auth login")]
    SessionExpired {
        /// Why, for the user.
        reason: String,
    },
    /// The server could not be reached or kept failing with 5xx.
    #[error("cannot reach {url}: {cause}")]
    Unreachable {
        /// The URL that was asked.
        url: String,
        /// What went wrong.
        cause: String,
    },
    /// The server refused the credential (401/403) or the request.
    #[error("{url} refused the request ({status}): {detail}")]
    Refused {
        /// The URL that was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What the server said, or what was wrong with it.
        detail: String,
    },
    /// The server's TLS certificate was refused (contract section 9).
    #[error("cannot reach {url}: {failure}")]
    Tls {
        /// The URL that was asked.
        url: String,
        /// Which check the certificate failed.
        failure: crate::net::CertFailure,
    },
    /// The server answered something the contract does not allow.
    #[error("unexpected answer from {url}: {detail}")]
    Protocol {
        /// The URL that was asked.
        url: String,
        /// What the server said, or what was wrong with it.
        detail: String,
    },
    /// `config.json` could not be read, parsed or written.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A URL (configured, or named by the server's metadata) would carry a token in cleartext.
    #[error(transparent)]
    Plaintext(#[from] crate::net::plaintext::PlaintextRefused),
    /// The interactive login did not complete.
    #[error("login failed: {0}")]
    Login(String),
}

impl AuthError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AuthError::NotSignedIn
            | AuthError::OtherServer { .. }
            | AuthError::SessionExpired { .. } => EXIT_NOT_SIGNED_IN,
            AuthError::Unreachable { .. } | AuthError::Tls { .. } => EXIT_UNREACHABLE,
            AuthError::Plaintext(_) => EXIT_USAGE,
            _ => EXIT_ERROR,
        }
    }
}

/// Problems with `config.json` and the state directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but is not valid JSON of the expected shape.
    #[error("{path} is corrupt: {cause}. It was left untouched; `tether auth login` moves it aside and starts a new one")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
    /// Reading, writing or locking failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", …).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
