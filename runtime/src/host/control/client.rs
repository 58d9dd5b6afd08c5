//! The CLI's client for a host service's control API on its Unix socket: one typed call
//! per route of [`crate::host::control::api`].

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::host::control::api::{
    flow_status_path, Acknowledged, ControlError, FlowProgress, FlowStarted, ShutdownRequest,
    StatusDocument, FLOW_START_PATH, SHUTDOWN_PATH, STATUS_PATH,
};

/// `GET /status`.
pub async fn status(socket: &Path) -> anyhow::Result<StatusDocument> {
    let (_, body) = exchange(socket, "GET", STATUS_PATH, None).await?;
    parse(STATUS_PATH, &body)
}

/// `POST /internal/oauth/connect/start`: the URL to open, or why the host could not start.
pub async fn start_flow(socket: &Path) -> anyhow::Result<FlowStarted> {
    let (status, body) = exchange(socket, "POST", FLOW_START_PATH, None).await?;
    if status != 200 {
        let refused: ControlError = parse(FLOW_START_PATH, &body)?;
        anyhow::bail!(
            "the host service could not start the login ({status}): {}",
            refused.error
        );
    }
    parse(FLOW_START_PATH, &body)
}

/// `GET /internal/oauth/connect/status/<state>` (an unknown state is an answer, not an error).
pub async fn flow_progress(socket: &Path, state: &str) -> anyhow::Result<FlowProgress> {
    let path = flow_status_path(state);
    let (_, body) = exchange(socket, "GET", &path, None).await?;
    parse(&path, &body)
}

/// `POST /internal/shutdown`.
pub async fn shutdown(socket: &Path, request: &ShutdownRequest) -> anyhow::Result<()> {
    let body = serde_json::to_vec(request)?;
    let (_, answer) = exchange(socket, "POST", SHUTDOWN_PATH, Some(body)).await?;
    let _: Acknowledged = parse(SHUTDOWN_PATH, &answer)?;
    Ok(())
}

/// `POST /internal/ptyd/upgrade`: the pty daemon upgraded in place, or why not.
pub async fn upgrade_ptyd(
    socket: &Path,
) -> anyhow::Result<crate::host::control::api::PtydUpgraded> {
    let path = crate::host::control::api::PTYD_UPGRADE_PATH;
    let (status, body) = exchange(socket, "POST", path, None).await?;
    if status != 200 {
        let refused: ControlError = parse(path, &body)?;
        anyhow::bail!("tether-ptyd was not upgraded: {}", refused.error);
    }
    parse(path, &body)
}

fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(body).with_context(|| {
        format!("the host service answered {path} with a document this tether does not read")
    })
}

/// Sends one request to the control socket; returns the status and the body.
async fn exchange(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, Bytes)> {
    let exchange = async {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("cannot reach the host service at {}", socket.display()))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
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
