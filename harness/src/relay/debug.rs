//! `POST /debug/exec`: the relay's client side over HTTP, for tools outside this process
//! (the container smoke test): open a terminal on a host, type, wait for an answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{open_terminal, wait_host, Shared};

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
    /// How long to wait for the host and the answer.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

/// Runs one command in a fresh terminal on the org's host.
pub async fn exec(State(shared): State<Arc<Shared>>, Json(req): Json<Exec>) -> (StatusCode, Json<Value>) {
    let limit = Duration::from_millis(req.timeout_ms);
    let result = async {
        let (host, _) = wait_host(&shared, &req.organization_id, limit).await?;
        let mut terminal = open_terminal(&shared, &req.organization_id, &host, None).await?;
        terminal.send(format!("{}\n", req.input).as_bytes())?;
        let output = terminal.read_until(&req.expect, limit).await?;
        let _ = terminal.close();
        anyhow::Ok(json!({"hostId": host, "output": output}))
    }
    .await;
    match result {
        Ok(body) => (StatusCode::OK, Json(body)),
        Err(e) => (StatusCode::GATEWAY_TIMEOUT, Json(json!({"error": format!("{e:#}")}))),
    }
}
