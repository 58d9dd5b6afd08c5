//! Where the relay's `oauth.callback`s go: the `--via-host` login flows of this host.

use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::sync::lock;

/// An `oauth.callback` from the relay.
#[derive(Debug, Clone)]
pub struct OAuthCallback {
    /// The flow's state.
    pub state: String,
    /// The authorization code, on success.
    pub code: Option<String>,
    /// The error, on failure.
    pub error: Option<String>,
    /// The issuer the authorization server named (RFC 9207), when it did.
    pub iss: Option<String>,
}

/// The handler of `oauth.callback`s, once the login service installed one.
#[derive(Default)]
pub struct OAuthMailbox {
    handler: Mutex<Option<mpsc::UnboundedSender<OAuthCallback>>>,
}

impl OAuthMailbox {
    /// Where callbacks go from now on.
    pub fn install(&self, tx: mpsc::UnboundedSender<OAuthCallback>) {
        *lock(&self.handler) = Some(tx);
    }

    /// Hands a callback to the flow that waits for it.
    pub fn deliver(&self, callback: OAuthCallback) {
        match lock(&self.handler).as_ref() {
            Some(tx) => {
                let _ = tx.send(callback);
            }
            None => {
                tracing::warn!("an oauth.callback arrived but no login flow handler is installed")
            }
        }
    }
}
