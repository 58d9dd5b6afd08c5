//! The auth core shared by the CLI and the host service: credentials and how each
//! is sent (contract section 2), the config store, OAuth login and refresh against
//! the authorization server (section 3), and relay JWTs.

pub(crate) mod config_store;
pub(crate) mod credential;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod identity;
pub(crate) mod jwt;
pub(crate) mod login;
pub(crate) mod refresh;
pub(crate) mod relay_token;
pub(crate) mod retry;
pub(crate) mod secret;
pub(crate) mod session;
pub(crate) mod token_endpoint;
pub(crate) mod transport;

pub use config_store::ConfigStore;
pub use credential::Credential;
pub use discovery::{discover, EndpointSource};
pub use error::AuthError;
pub use jwt::held_claims;
pub use refresh::OAuthAccount;
pub use relay_token::{CredentialSource, RelayTokenProvider};
pub use retry::RetryPolicy;
pub use secret::Secret;

use std::time::{SystemTime, UNIX_EPOCH};

/// The OAuth client id of the CLI (contract section 3).
pub const CLIENT_ID: &str = "tether-cli";
/// Scopes requested at login; `offline_access` asks for a refresh token.
pub const LOGIN_SCOPE: &str = "openid profile email offline_access";

/// Milliseconds since the Unix epoch, the unit of `expiresAt` in `config.json`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A value from a server or a redirect as it may appear on a terminal: no control
/// characters (no escape sequences), at most 200 characters.
pub fn printable(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_override(*c))
        .take(200)
        .collect()
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069):
/// they make a terminal show text in another order than it is.
fn is_bidi_override(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}
