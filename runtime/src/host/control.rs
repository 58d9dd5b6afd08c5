//! The host service's two HTTP faces: `/health` on `127.0.0.1:<port>` (nothing else is
//! served there), and the control API on a `0600` Unix socket for the local CLI.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use super::control_api::{FlowStarted, ShutdownRequest, StatusDocument};
use super::service::Service;
use super::state::Health;
use crate::auth::now_ms;

/// The public router on the TCP port: `/health` only.
pub fn health_router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(service)
}

/// The control router on the Unix socket.
pub fn control_router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/internal/oauth/connect/start", post(start_flow))
        .route("/internal/oauth/connect/status/{state}", get(flow_status))
        .route("/internal/shutdown", post(shutdown))
        .with_state(service)
}

async fn health(State(service): State<Arc<Service>>) -> Json<Health> {
    Json(service.hub.state.health())
}

async fn status(State(service): State<Arc<Service>>) -> Json<StatusDocument> {
    Json(service.status())
}

async fn start_flow(
    State(service): State<Arc<Service>>,
) -> Result<Json<FlowStarted>, (StatusCode, Json<serde_json::Value>)> {
    service.start_flow().await.map(Json).map_err(|e| {
        (
            StatusCode::BAD_GATEWAY,
            Json(serde_json::json!({"status": "error", "error": e.to_string()})),
        )
    })
}

async fn flow_status(
    State(service): State<Arc<Service>>,
    Path(state): Path<String>,
) -> (StatusCode, Json<serde_json::Value>) {
    match service.flows.status(&state, now_ms()) {
        Some(status) => {
            let mut doc = serde_json::to_value(&status).unwrap_or_default();
            doc["state"] = state.into();
            (StatusCode::OK, Json(doc))
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"state": state, "status": "unknown"})),
        ),
    }
}

async fn shutdown(
    State(service): State<Arc<Service>>,
    body: Option<Json<ShutdownRequest>>,
) -> Json<serde_json::Value> {
    let request = body.map(|b| b.0).unwrap_or_default();
    service.request_shutdown(request.stop_ptyd);
    Json(serde_json::json!({"ok": true}))
}
