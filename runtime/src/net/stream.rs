//! A TCP connection to a server, direct or through an HTTP `CONNECT` tunnel (hyper-util's
//! `Tunnel`, with `Proxy-Authorization` from the proxy URL), as [`super::proxy`] decides.
//! The relay WebSocket and `tether doctor` build on it; reqwest tunnels by itself.

use std::time::Duration;

use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::net::TcpStream;
use tower_service::Service;

use super::proxy::{self, ProxyHop};

/// How long reaching the server (or the proxy) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no connection was made. Proxy credentials never appear in it.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The URL has no host or port.
    #[error("{0} names no host")]
    BadUrl(String),
    /// The server itself could not be reached.
    #[error("cannot connect to {target}: {cause}")]
    Direct {
        /// The host and port dialled.
        target: String,
        /// What went wrong.
        cause: String,
    },
    /// The proxy could not be reached or refused the tunnel.
    #[error("cannot reach {target} through {hop}: {cause}")]
    Proxy {
        /// The host and port dialled.
        target: String,
        /// The proxy in between.
        hop: String,
        /// What went wrong.
        cause: String,
    },
}

/// Opens a TCP connection towards `url`'s host and port; returns the proxy used, if any.
pub async fn connect(url: &url::Url) -> Result<(TcpStream, Option<ProxyHop>), StreamError> {
    let host = url
        .host_str()
        .ok_or_else(|| StreamError::BadUrl(url.to_string()))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| StreamError::BadUrl(url.to_string()))?;
    let target = format!("{host}:{port}");
    match proxy::route(url) {
        None => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
                .await
                .map_err(|_| StreamError::Direct {
                    target: target.clone(),
                    cause: "timed out".into(),
                })?
                .map_err(|e| StreamError::Direct {
                    target: target.clone(),
                    cause: e.to_string(),
                })?;
            let _ = stream.set_nodelay(true);
            Ok((stream, None))
        }
        Some(hop) => {
            let stream = tunnel(&hop, host, port)
                .await
                .map_err(|cause| StreamError::Proxy {
                    target,
                    hop: hop.to_string(),
                    cause,
                })?;
            Ok((stream, Some(hop)))
        }
    }
}

async fn tunnel(hop: &ProxyHop, host: &str, port: u16) -> Result<TcpStream, String> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let mut tunnel = Tunnel::new(hop.uri.clone(), connector);
    if let Some(auth) = &hop.auth {
        tunnel = tunnel.with_auth(auth.clone());
    }
    let dst: http::Uri = format!("http://{host}:{port}/")
        .parse()
        .map_err(|e| format!("bad destination {host}:{port}: {e}"))?;
    let io = tokio::time::timeout(CONNECT_TIMEOUT * 2, tunnel.call(dst))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| describe_tunnel_error(&e))?;
    Ok(io.into_inner())
}

/// hyper-util's tunnel error (its type is not exported) in words a user can act on.
fn describe_tunnel_error(error: &(dyn std::error::Error + 'static)) -> String {
    let shown = error.to_string();
    if shown.contains("authorization required") {
        return "the proxy wants credentials (407): put them in the proxy URL, http://user:password@host:port".into();
    }
    if shown.contains("unsuccessful") {
        return "the proxy refused the CONNECT tunnel".into();
    }
    let mut root = error;
    while let Some(next) = root.source() {
        root = next;
    }
    if std::ptr::addr_eq(root, error) {
        shown
    } else {
        format!("{shown} ({root})")
    }
}
