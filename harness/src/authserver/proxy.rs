//! The server's front door: a TCP proxy (and TLS terminator) before wiremock that can drop connections, the
//! one fault wiremock cannot inject. A dropped connection is closed after its request
//! line arrived, so the client has sent its request and never gets an answer. Every
//! request gets its own connection (`connection: close`), so rules see every request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::lock::lock;
use crate::tls::accept::{self, Io};

/// Drop the next `remaining` connections whose first request is for `path` (any path if `None`).
#[derive(Debug, Clone)]
pub struct DropRule {
    /// Request path to match, without the query.
    pub path: Option<String>,
    /// How many connections are still to be dropped.
    pub remaining: u32,
}

/// The active drop rules.
pub type DropRules = Arc<Mutex<Vec<DropRule>>>;

/// Accepts on `listener` (completing TLS when `tls` is set) and forwards to `upstream`,
/// dropping what the rules say.
pub async fn run(
    listener: TcpListener,
    upstream: SocketAddr,
    rules: DropRules,
    tls: Option<Arc<ServerConfig>>,
) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            // EMFILE and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let rules = rules.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Some(conn) = accept::wrap(conn, tls.as_ref()).await {
                forward(conn, upstream, rules).await;
            }
        });
    }
}

fn should_drop(rules: &DropRules, path: &str) -> bool {
    let mut rules = lock(rules);
    let hit = rules
        .iter_mut()
        .find(|r| r.remaining > 0 && r.path.as_deref().is_none_or(|p| p == path));
    match hit {
        Some(rule) => {
            rule.remaining -= 1;
            true
        }
        None => false,
    }
}

async fn forward(mut conn: Box<dyn Io>, upstream: SocketAddr, rules: DropRules) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the request line is complete (or give up on a silent client).
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 16 * 1024 {
        match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(n)) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let path = line
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_string();
    if should_drop(&rules, &path) {
        tracing::info!(%path, "fault: dropping the connection");
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    // One request per connection, so every request passes the rules above: the server
    // answers `connection: close` and the client opens a new connection for the next one.
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| i + 2)
        .unwrap_or(head.len());
    head.splice(line_end..line_end, b"connection: close\r\n".iter().copied());
    if tokio::io::AsyncWriteExt::write_all(&mut server, &head)
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut server).await;
}
