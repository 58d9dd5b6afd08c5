//! Dialling the relay: the connect URL, the WebSocket handshake through any proxy with
//! the relay's TLS trust, what a refusal means, and the `hello` that announces the terminals.

use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::Connector;

use crate::auth::secret::Secret;
use crate::host::hub::Hub;
use crate::host::relay::connection::{self, Ws};
use crate::net::{self, CertFailure};
use tether_contract::relay_protocol::Control;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    /// Relay base URL (`ws://` or `wss://`).
    pub relay_url: String,
    /// Organization to serve.
    pub organization_id: crate::OrgId,
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

/// Why a dial failed.
pub(super) enum DialError {
    /// 401 at the handshake: the token was refused.
    Unauthorized,
    /// 403 at the handshake: the token may not act in this org.
    Forbidden,
    /// The relay's certificate was refused.
    Tls(CertFailure),
    /// Anything else.
    Other(String),
}

pub(super) async fn dial(target: &RelayTarget, jwt: &Secret) -> Result<Ws, DialError> {
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
            Some(connection::ws_config()),
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

pub(super) async fn hello(ws: &mut Ws, hub: &Hub, target: &RelayTarget) -> Result<(), WsError> {
    // Announce the terminals that exist: give a (re)starting pty daemon a moment first.
    if !hub.ptyd.wait_connected(Duration::from_secs(5)).await {
        tracing::warn!("tether-ptyd is not running: announcing no terminals");
    }
    let hello = Control::Hello {
        host_id: target.host_id.clone(),
        version: crate::version::VERSION.into(),
        organization_id: target.organization_id.to_string(),
        protocol: Some(tether_contract::relay_protocol::PROTOCOL),
        sessions: hub.sessions_for_hello().await,
    };
    ws.send(Message::text(
        serde_json::to_string(&hello).unwrap_or_default(),
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_url_escapes_its_parameters() {
        let target = RelayTarget {
            relay_url: "ws://r".into(),
            organization_id: crate::OrgId::parse("org:a.b").expect("org"),
            host_id: "h1 &x".into(),
        };
        assert_eq!(
            target.connect_url(),
            "ws://r/hosts/connect?organizationId=org%3Aa.b&hostId=h1+%26x"
        );
    }
}
