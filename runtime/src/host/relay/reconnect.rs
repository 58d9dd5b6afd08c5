//! The host's connection to the relay: dial with a fresh JWT, greet, serve, and on
//! `tokenExpired` rotate (new connection first, then drop the old), at most 3 times in
//! any 60 s; on network loss reconnect with capped, jittered backoff (contract section 4).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::auth::relay_token::RelayTokenProvider;
use crate::auth::secret::Secret;
use crate::auth::AuthError;
use crate::backoff::{Backoff, Jitter};
use crate::host::hub::Hub;
use crate::host::relay::connection::{self, Draining, Ended, Ws};
use crate::host::relay::dial::{dial, hello, DialError, RelayTarget};
use crate::host::state::RelayState;
use crate::metrics::{self, Disconnect};
use crate::sliding_window::SlidingWindow;

/// Rotations allowed in any [`ROTATION_WINDOW`].
pub const MAX_ROTATIONS: usize = 3;
/// The rotation cap's window.
pub const ROTATION_WINDOW: Duration = Duration::from_secs(60);

/// Reconnect delays: 1 s doubling to 30 s, half fixed and half random so it never spins.
pub fn reconnect_backoff() -> Backoff {
    Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(30),
        Jitter::Half,
    )
}

/// Runs the relay connection until it stops for good (`auth_failed`).
pub async fn run(hub: Arc<Hub>, provider: Arc<RelayTokenProvider>, target: RelayTarget) {
    let mut dialer = Dialer {
        hub: &hub,
        provider: &provider,
        target: &target,
        backoff: reconnect_backoff(),
        refused_in_a_row: 0,
    };
    let mut rotations = SlidingWindow::new(ROTATION_WINDOW);
    let mut current: Option<(Ws, Secret)> = None;
    loop {
        let (ws, jwt) = match current.take() {
            Some(connection) => connection,
            None => match dialer.connect().await {
                Attempt::Connected(ws, jwt) => (*ws, jwt),
                Attempt::RetryIn(delay) => {
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Attempt::Stop(why) => return auth_failed(&hub, why),
            },
        };
        hub.state.set_relay(RelayState::Connected, None);
        metrics::global().relay_connected();
        dialer.backoff.reset();
        tracing::info!(url = %target.connect_url(), "connected to the relay");

        match connection::serve(ws, &hub).await {
            Ended::Drain => {
                metrics::global().relay_disconnected(Disconnect::Drain);
                tracing::info!("relay asked to drain: reconnecting now");
                hub.state.count_reconnect();
            }
            Ended::Lost(why) => {
                metrics::global().relay_disconnected(Disconnect::Lost);
                hub.state.count_reconnect();
                let delay = dialer.backoff.next_delay();
                tracing::warn!(
                    "relay connection lost ({why}); reconnecting in {} ms",
                    delay.as_millis()
                );
                hub.state.set_relay(RelayState::Connecting, Some(why));
                tokio::time::sleep(delay).await;
            }
            Ended::TokenExpired(old) => {
                metrics::global().relay_disconnected(Disconnect::TokenExpired);
                if rotations.record(Instant::now()) > MAX_ROTATIONS {
                    old.close(CloseCode::Policy, "rotation limit").await;
                    let why = format!("the relay said tokenExpired {} times within 60 s: stopping instead of spinning", MAX_ROTATIONS + 1);
                    return auth_failed(&hub, why);
                }
                hub.state.count_rotation();
                metrics::global().rotated();
                provider.reject(&jwt).await;
                tracing::info!("relay token expired: rotating");
                current = rotate(old, &hub, &provider, &target).await;
            }
        }
    }
}

/// What one attempt to connect came to.
enum Attempt {
    /// Dialled and greeted.
    Connected(Box<Ws>, Secret),
    /// Failed for now: wait this long and try again.
    RetryIn(Duration),
    /// Failed for good: the reason for `auth_failed`.
    Stop(String),
}

/// Fresh connections: a token, the handshake and the hello, with the state they report.
struct Dialer<'a> {
    hub: &'a Hub,
    provider: &'a RelayTokenProvider,
    target: &'a RelayTarget,
    backoff: Backoff,
    refused_in_a_row: u32,
}

impl Dialer<'_> {
    async fn connect(&mut self) -> Attempt {
        self.hub.state.set_relay(RelayState::Connecting, None);
        let jwt = match self.provider.relay_jwt().await {
            Ok(jwt) => jwt,
            Err(e) if is_final(&e) => return Attempt::Stop(format!("no relay token: {e}")),
            Err(e) => {
                let state = match e {
                    AuthError::Tls { .. } => RelayState::TlsError,
                    _ => RelayState::Connecting,
                };
                return self.retry(state, format!("cannot get a relay token ({e})"));
            }
        };
        match dial(self.target, &jwt).await {
            Ok(mut ws) => match hello(&mut ws, self.hub, self.target).await {
                Ok(()) => {
                    self.refused_in_a_row = 0;
                    Attempt::Connected(Box::new(ws), jwt)
                }
                Err(e) => {
                    tracing::warn!("relay connection lost during hello: {e}");
                    Attempt::RetryIn(self.backoff.next_delay())
                }
            },
            Err(DialError::Forbidden) => Attempt::Stop(format!(
                "the relay refused organization {} (403): the credential may not act in it",
                self.target.organization_id
            )),
            Err(DialError::Unauthorized) => {
                self.refused_in_a_row += 1;
                self.provider.reject(&jwt).await;
                if self.refused_in_a_row >= 3 {
                    return Attempt::Stop(
                        "the relay refused three fresh tokens in a row (401)".into(),
                    );
                }
                Attempt::RetryIn(self.backoff.next_delay())
            }
            Err(DialError::Tls(failure)) => self.retry(
                RelayState::TlsError,
                format!("{}: {failure}", self.target.relay_url),
            ),
            Err(DialError::Other(why)) => self.retry(
                RelayState::Connecting,
                format!("cannot reach the relay ({why})"),
            ),
        }
    }

    /// Reports `why` in the state and the log, and picks the next delay.
    fn retry(&mut self, state: RelayState, why: String) -> Attempt {
        let delay = self.backoff.next_delay();
        tracing::warn!("relay: {why}; retrying in {} ms", delay.as_millis());
        self.hub.state.set_relay(state, Some(why));
        Attempt::RetryIn(delay)
    }
}

/// Opens the new connection before closing the old one; `None` means fall back to reconnecting.
async fn rotate(
    old: Box<Draining>,
    hub: &Hub,
    provider: &RelayTokenProvider,
    target: &RelayTarget,
) -> Option<(Ws, Secret)> {
    let fresh = match provider.relay_jwt().await {
        Ok(jwt) => jwt,
        Err(e) => {
            tracing::warn!("cannot get a fresh relay token: {e}");
            old.close(CloseCode::Away, "rotation failed").await;
            return None;
        }
    };
    let next = match dial(target, &fresh).await {
        Ok(mut ws) => match hello(&mut ws, hub, target).await {
            Ok(()) => Some((ws, fresh)),
            Err(_) => None,
        },
        Err(_) => None,
    };
    old.close(CloseCode::Normal, "rotated").await;
    next
}

fn is_final(e: &AuthError) -> bool {
    matches!(
        e,
        AuthError::NotSignedIn
            | AuthError::OtherServer { .. }
            | AuthError::SessionExpired { .. }
            | AuthError::Refused { .. }
    )
}

fn auth_failed(hub: &Hub, why: String) {
    tracing::error!("relay: auth_failed: {why}");
    hub.state.set_relay(RelayState::AuthFailed, Some(why));
    hub.set_relay(None);
}
