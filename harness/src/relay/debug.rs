//! `POST /debug/exec`: the relay's client side over HTTP, for tools outside this process
//! (the container smoke test): open a terminal on a host, type, wait for an answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::shared::{wait_host, Shared};
use super::terminal::{open_terminal, Terminal};
use crate::lock::lock;

/// The request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exec {
    /// Organization whose host to use.
    pub organization_id: String,
    /// What to type (a trailing newline is added).
    pub input: String,
    /// Answer once the output contains this.
    pub expect: String,
    /// Keep the terminal under this name and use it again on later calls (it survives reconnects).
    #[serde(default)]
    pub session_id: Option<String>,
    /// How long to wait for the host and the answer.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

/// Runs one command in a fresh terminal on the org's host.
pub async fn exec(
    State(shared): State<Arc<Shared>>,
    Json(req): Json<Exec>,
) -> (StatusCode, Json<Value>) {
    let limit = Duration::from_millis(req.timeout_ms);
    let result = async {
        let (host, hello) = wait_host(&shared, &req.organization_id, limit).await?;
        let announced = |id: &str| {
            hello["sessions"]
                .as_array()
                .is_some_and(|list| list.iter().any(|s| s["sessionId"] == id))
        };
        let mut terminal = match &req.session_id {
            Some(id) if shared.knows_terminal(&req.organization_id, &host, id) || announced(id) => {
                let rx = shared.register_terminal(&req.organization_id, &host, id);
                Terminal::new(shared.clone(), &req.organization_id, &host, id, rx)
            }
            id => open_terminal(&shared, &req.organization_id, &host, None, id.as_deref()).await?,
        };
        terminal.send(format!("{}\n", req.input).as_bytes())?;
        let output = terminal.read_until(&req.expect, limit).await?;
        if req.session_id.is_none() {
            let _ = terminal.close();
        }
        anyhow::Ok(json!({"hostId": host, "output": output}))
    }
    .await;
    match result {
        Ok(body) => (StatusCode::OK, Json(body)),
        Err(e) => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(json!({"error": format!("{e:#}")})),
        ),
    }
}

/// Every handshake so far, with a fingerprint of the token instead of the token.
pub async fn connections(State(shared): State<Arc<Shared>>) -> Json<Value> {
    use sha2::Digest;
    let records = lock(&shared.connections).clone();
    let list: Vec<Value> = records
        .iter()
        .map(|c| {
            let digest = sha2::Sha256::digest(c.token.as_bytes());
            let fingerprint: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
            json!({"id": c.id, "organizationId": c.org, "hostId": c.host_id, "status": c.status, "token": fingerprint})
        })
        .collect();
    Json(json!(list))
}
