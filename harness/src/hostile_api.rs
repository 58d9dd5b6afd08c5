//! A hostile API server for the `security.*` scenarios: on loopback, it answers each path
//! it was given with a fixed JSON document (names with newlines, escape sequences, metadata
//! that points tokens at plain http) or with a body that never ends. The reference
//! authorization server stays faithful; what a compromised or malicious server would send
//! lives here, in one place.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::Value;

/// What the server answers on one path.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `200` with this JSON document.
    Json(Value),
    /// `200`, `application/json`, and a body streamed without end (`{"token":"aaaa…`).
    Endless,
}

/// A running hostile server.
pub struct HostileApi {
    /// Where it listens.
    pub addr: SocketAddr,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

struct Served {
    answers: HashMap<String, Answer>,
    endless_bytes: AtomicU64,
}

impl HostileApi {
    /// Starts on a free loopback port; `answers`, given the server's own base URL, maps
    /// paths to answers; every other path is `404`.
    pub async fn start(
        answers: impl FnOnce(&str) -> Vec<(&'static str, Answer)>,
    ) -> anyhow::Result<HostileApi> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let answers = answers(&format!("http://{addr}"));
        let served = Arc::new(Served {
            answers: answers
                .into_iter()
                .map(|(path, answer)| (path.to_string(), answer))
                .collect(),
            endless_bytes: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(served.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(HostileApi { addr, served, task })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many bytes of endless bodies were sent so far (all clients together).
    pub fn endless_bytes_sent(&self) -> u64 {
        self.served.endless_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for HostileApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(served): State<Arc<Served>>, uri: Uri) -> Response {
    match served.answers.get(uri.path()) {
        Some(Answer::Json(doc)) => axum::Json(doc.clone()).into_response(),
        Some(Answer::Endless) => endless(served.clone()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// 64 KiB chunks for ever, counted; the client decides when to stop reading.
fn endless(served: Arc<Served>) -> Response {
    const CHUNK: usize = 64 * 1024;
    let first = std::iter::once(Bytes::from_static(b"{\"token\":\""));
    let rest = std::iter::repeat_with(|| Bytes::from(vec![b'a'; CHUNK]));
    let body = stream::iter(first.chain(rest).map(move |chunk| {
        served
            .endless_bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(chunk)
    }));
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
