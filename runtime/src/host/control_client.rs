//! The CLI's client for a host service's control API on its Unix socket.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

/// Sends one request to the control socket; returns the status and the JSON body.
pub async fn call<T: DeserializeOwned>(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, T)> {
    let exchange = async {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("cannot reach the host service at {}", socket.display()))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()?
            .unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        let parsed = serde_json::from_slice(&body).with_context(|| {
            format!("the host service answered {path} with invalid JSON (status {status})")
        })?;
        anyhow::Ok((status, parsed))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .with_context(|| {
            format!(
                "the host service at {} did not answer {path} within 10 s",
                socket.display()
            )
        })?
}
