//! The host service's two HTTP faces: `/health` on `127.0.0.1:<port>` (nothing else is
//! served there), and the control API on a `0600` Unix socket for the local CLI.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::auth::now_ms;
use crate::host::control::api::{
    Acknowledged, ControlError, FlowProgress, FlowStarted, FlowStatus, ShutdownRequest,
    StatusDocument, FLOW_START_PATH, FLOW_STATUS_ROUTE, SHUTDOWN_PATH, STATUS_PATH,
};
use crate::host::service::Service;
use crate::host::state::Health;

/// The router on the loopback TCP port: `/health`, and `/metrics` (Prometheus text
/// format). Never reachable through the relay: its route policy allows `/health` only.
pub fn health_router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(service)
}

async fn metrics() -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::global().render(),
    )
}

/// The control router on the Unix socket.
pub fn control_router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(STATUS_PATH, get(status))
        .route(FLOW_START_PATH, post(start_flow))
        .route(FLOW_STATUS_ROUTE, get(flow_status))
        .route(SHUTDOWN_PATH, post(shutdown))
        .route(
            crate::host::control::api::PTYD_UPGRADE_PATH,
            post(upgrade_ptyd),
        )
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
) -> Result<Json<FlowStarted>, (StatusCode, Json<ControlError>)> {
    service.start_flow().await.map(Json).map_err(|e| {
        let error = ControlError {
            error: e.to_string(),
        };
        (StatusCode::BAD_GATEWAY, Json(error))
    })
}

async fn flow_status(
    State(service): State<Arc<Service>>,
    Path(state): Path<String>,
) -> (StatusCode, Json<FlowProgress>) {
    let (code, status) = match service.flows.status(&state, now_ms()) {
        Some(status) => (StatusCode::OK, status),
        None => (StatusCode::NOT_FOUND, FlowStatus::Unknown),
    };
    (code, Json(FlowProgress { state, status }))
}

async fn shutdown(
    State(service): State<Arc<Service>>,
    body: Option<Json<ShutdownRequest>>,
) -> Json<Acknowledged> {
    let request = body.map(|b| b.0).unwrap_or_default();
    service.request_shutdown(&request);
    Json(Acknowledged { ok: true })
}

async fn upgrade_ptyd(
    State(service): State<Arc<Service>>,
) -> Result<Json<crate::host::control::api::PtydUpgraded>, (StatusCode, Json<ControlError>)> {
    service
        .upgrade_ptyd()
        .await
        .map(Json)
        .map_err(|error| (StatusCode::CONFLICT, Json(ControlError { error })))
}
