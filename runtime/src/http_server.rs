//! The small HTTP servers tether runs on loopback (the login callback, the host's
//! `/health`): one task per connection, a deadline for each request head, and a cap on
//! open connections, so an idle or slow client holds nothing up.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a connection may take to send its request head.
pub const HEADER_READ_LIMIT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until the task is dropped or aborted; beyond
/// `max_connections` open connections, new ones wait in the kernel's backlog.
pub async fn serve(listener: TcpListener, app: Router, max_connections: usize) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("accept failed: {e}");
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_LIMIT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
}
