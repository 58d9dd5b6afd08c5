//! The host's connection to the relay: dial with a fresh JWT, greet, serve, and on
//! `tokenExpired` rotate (new connection first, then drop the old), at most 3 times in
//! any 60 s; on network loss reconnect with capped, jittered backoff (contract section 4).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rand::Rng;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::Connector;

use super::hub::Hub;
use super::relay_link::{self, Draining, Ended, Ws};
use super::relay_protocol::Control;
use super::state::RelayState;
use crate::auth::relay_token::RelayTokenProvider;
use crate::auth::secret::Secret;
use crate::auth::AuthError;
use crate::net::{self, CertFailure};

/// Rotations allowed in any [`ROTATION_WINDOW`].
pub const MAX_ROTATIONS: usize = 3;
/// The rotation cap's window.
pub const ROTATION_WINDOW: Duration = Duration::from_secs(60);

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    /// Relay base URL (`ws://` or `wss://`).
    pub relay_url: String,
    /// Organization to serve.
    pub organization_id: String,
    /// This host's id.
    pub host_id: String,
}

impl RelayTarget {
    /// `{relay}/hosts/connect?organizationId=…&hostId=…`
    pub fn connect_url(&self) -> String {
        let mut url = format!("{}/hosts/connect", self.relay_url);
        url.push_str("?organizationId=");
        url.push_str(
            &url::form_urlencoded::byte_serialize(self.organization_id.as_bytes())
                .collect::<String>(),
        );
        url.push_str("&hostId=");
        url.push_str(
            &url::form_urlencoded::byte_serialize(self.host_id.as_bytes()).collect::<String>(),
        );
        url
    }
}

/// Reconnect delays: 1 s doubling to 30 s, half fixed and half random so it never spins.
#[derive(Debug)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// Fresh: the next delay is about 1 s.
    pub fn new() -> Self {
        Backoff { attempt: 0 }
    }

    /// The next delay.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = Duration::from_secs(1)
            .saturating_mul(1 << self.attempt.min(5))
            .min(Duration::from_secs(30));
        self.attempt += 1;
        let half = ceiling / 2;
        half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
    }

    /// After a good connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a dial failed.
enum DialError {
    /// 401 at the handshake: the token was refused.
    Unauthorized,
    /// 403 at the handshake: the token may not act in this org.
    Forbidden,
    /// The relay's certificate was refused.
    Tls(CertFailure),
    /// Anything else.
    Other(String),
}

async fn dial(target: &RelayTarget, jwt: &Secret) -> Result<Ws, DialError> {
    let url = target.connect_url();
    let parsed =
        url::Url::parse(&url).map_err(|e| DialError::Other(format!("bad relay URL {url}: {e}")))?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| DialError::Other(format!("bad relay URL {url}: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", jwt.expose()))
        .map_err(|_| DialError::Other("the relay token is not a valid header value".into()))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let handshake = async {
        let (tcp, hop) = net::stream::connect(&parsed)
            .await
            .map_err(|e| DialError::Other(e.to_string()))?;
        tracing::debug!(route = %net::proxy::describe(hop.as_ref()), "relay: connected, handshaking");
        tokio_tungstenite::client_async_tls_with_config(
            request,
            tcp,
            Some(relay_link::ws_config()),
            Some(Connector::Rustls(net::trust::client_config())),
        )
        .await
        .map_err(|e| classify(&url, e))
    };
    match tokio::time::timeout(Duration::from_secs(15), handshake).await {
        Err(_) => Err(DialError::Other(format!("{url}: handshake timed out"))),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e),
    }
}

fn classify(url: &str, error: WsError) -> DialError {
    match error {
        WsError::Http(response) => match response.status() {
            StatusCode::UNAUTHORIZED => DialError::Unauthorized,
            StatusCode::FORBIDDEN => DialError::Forbidden,
            status => DialError::Other(format!("{url}: handshake answered {status}")),
        },
        other => match CertFailure::find(&other) {
            Some(failure) => DialError::Tls(failure),
            None => DialError::Other(format!("{url}: {other}")),
        },
    }
}

async fn hello(ws: &mut Ws, hub: &Hub, target: &RelayTarget) -> Result<(), WsError> {
    // Announce the terminals that exist: give a (re)starting pty daemon a moment first.
    if !hub.wait_for_ptyd(Duration::from_secs(5)).await {
        tracing::warn!("tether-ptyd is not running: announcing no terminals");
    }
    let hello = Control::Hello {
        host_id: target.host_id.clone(),
        version: crate::version::VERSION.into(),
        organization_id: target.organization_id.clone(),
        sessions: hub.sessions().await,
    };
    ws.send(Message::text(
        serde_json::to_string(&hello).unwrap_or_default(),
    ))
    .await
}

/// Runs the relay connection until it stops for good (`auth_failed`).
pub async fn run(hub: Arc<Hub>, provider: Arc<RelayTokenProvider>, target: RelayTarget) {
    let mut backoff = Backoff::new();
    let mut rotations: VecDeque<Instant> = VecDeque::new();
    let mut refused_in_a_row = 0u32;
    let mut current: Option<(Ws, Secret)> = None;
    loop {
        let (ws, jwt) = match current.take() {
            Some(connection) => connection,
            None => {
                hub.state.set_relay(RelayState::Connecting, None);
                let jwt = match provider.relay_jwt().await {
                    Ok(jwt) => jwt,
                    Err(e) if is_final(&e) => {
                        return auth_failed(&hub, format!("no relay token: {e}"))
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            "cannot get a relay token ({e}); retrying in {} ms",
                            delay.as_millis()
                        );
                        let state = match e {
                            AuthError::Tls { .. } => RelayState::TlsError,
                            _ => RelayState::Connecting,
                        };
                        hub.state.set_relay(state, Some(e.to_string()));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                };
                match dial(&target, &jwt).await {
                    Ok(mut ws) => match hello(&mut ws, &hub, &target).await {
                        Ok(()) => {
                            refused_in_a_row = 0;
                            (ws, jwt)
                        }
                        Err(e) => {
                            tracing::warn!("relay connection lost during hello: {e}");
                            tokio::time::sleep(backoff.next_delay()).await;
                            continue;
                        }
                    },
                    Err(DialError::Forbidden) => {
                        return auth_failed(&hub, format!("the relay refused organization {} (403): the credential may not act in it", target.organization_id));
                    }
                    Err(DialError::Unauthorized) => {
                        refused_in_a_row += 1;
                        provider.reject(&jwt).await;
                        if refused_in_a_row >= 3 {
                            return auth_failed(
                                &hub,
                                "the relay refused three fresh tokens in a row (401)".into(),
                            );
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                        continue;
                    }
                    Err(DialError::Tls(failure)) => {
                        let delay = backoff.next_delay();
                        tracing::warn!("relay: {failure}; retrying in {} ms", delay.as_millis());
                        hub.state.set_relay(
                            RelayState::TlsError,
                            Some(format!("{}: {failure}", target.relay_url)),
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Err(DialError::Other(why)) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            "cannot reach the relay ({why}); retrying in {} ms",
                            delay.as_millis()
                        );
                        hub.state.set_relay(RelayState::Connecting, Some(why));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
        };
        hub.state.set_relay(RelayState::Connected, None);
        backoff.reset();
        tracing::info!(url = %target.connect_url(), "connected to the relay");

        match relay_link::serve(ws, &hub).await {
            Ended::Drain => {
                tracing::info!("relay asked to drain: reconnecting now");
                hub.state.count_reconnect();
            }
            Ended::Lost(why) => {
                hub.state.count_reconnect();
                hub.state
                    .set_relay(RelayState::Connecting, Some(why.clone()));
                let delay = backoff.next_delay();
                tracing::warn!(
                    "relay connection lost ({why}); reconnecting in {} ms",
                    delay.as_millis()
                );
                tokio::time::sleep(delay).await;
            }
            Ended::TokenExpired(old) => {
                let now = Instant::now();
                while rotations
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > ROTATION_WINDOW)
                {
                    rotations.pop_front();
                }
                if rotations.len() >= MAX_ROTATIONS {
                    old.close(CloseCode::Policy, "rotation limit").await;
                    return auth_failed(
                        &hub,
                        format!("the relay said tokenExpired {} times within 60 s: stopping instead of spinning", MAX_ROTATIONS + 1),
                    );
                }
                rotations.push_back(now);
                hub.state.count_rotation();
                provider.reject(&jwt).await;
                tracing::info!("relay token expired: rotating");
                current = rotate(old, &hub, &provider, &target).await;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_thirty_seconds_and_never_reaches_zero() {
        let mut backoff = Backoff::new();
        let first = backoff.next_delay();
        assert!(
            first >= Duration::from_millis(500) && first <= Duration::from_secs(1),
            "{first:?}"
        );
        for _ in 0..10 {
            backoff.next_delay();
        }
        let late = backoff.next_delay();
        assert!(
            late >= Duration::from_secs(15) && late <= Duration::from_secs(30),
            "{late:?}"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn connect_url_escapes_its_parameters() {
        let target = RelayTarget {
            relay_url: "ws://r".into(),
            organization_id: "org a&b".into(),
            host_id: "h1".into(),
        };
        assert_eq!(
            target.connect_url(),
            "ws://r/hosts/connect?organizationId=org+a%26b&hostId=h1"
        );
    }
}
