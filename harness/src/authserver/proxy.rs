//! The server's front door: a TCP proxy (and TLS terminator) before wiremock that can drop connections, the
//! one fault wiremock cannot inject. A dropped connection is closed after its request
//! line arrived, so the client has sent its request and never gets an answer. Every
//! request gets its own connection (`connection: close`), so rules see every request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::lock::lock;
use crate::tls::accept::{self, Io};
use crate::transcript::{EventKind, Transcript};

/// Bytes of each direction kept for the transcript.
const RECORD_BYTES: usize = 64 * 1024;

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
/// dropping what the rules say; each exchange goes into `transcript` when there is one.
pub async fn run(
    listener: TcpListener,
    upstream: SocketAddr,
    rules: DropRules,
    tls: Option<Arc<ServerConfig>>,
    transcript: Option<Arc<Transcript>>,
) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            // EMFILE and the like: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let rules = rules.clone();
        let tls = tls.clone();
        let transcript = transcript.clone();
        tokio::spawn(async move {
            if let Some(conn) = accept::wrap(conn, tls.as_ref()).await {
                forward(conn, upstream, rules, transcript).await;
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

async fn forward(
    mut conn: Box<dyn Io>,
    upstream: SocketAddr,
    rules: DropRules,
    transcript: Option<Arc<Transcript>>,
) {
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
        if let Some(transcript) = &transcript {
            record(transcript, &head, b"");
        }
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
    let Some(transcript) = transcript else {
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut server).await;
        return;
    };
    // Both directions copied by hand, keeping the first bytes of each for the transcript.
    let mut request = head.clone();
    let (mut client_read, mut client_write) = tokio::io::split(conn);
    let (mut server_read, mut server_write) = server.into_split();
    let upstream_copy = copy_keeping(&mut client_read, &mut server_write, &mut request);
    let mut response = Vec::new();
    let downstream_copy = copy_keeping(&mut server_read, &mut client_write, &mut response);
    let _ = tokio::join!(upstream_copy, downstream_copy);
    record(&transcript, &request, &response);
}

/// Copies `from` into `to` until either ends, keeping the first bytes in `kept`.
async fn copy_keeping(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    kept: &mut Vec<u8>,
) {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if kept.len() < RECORD_BYTES {
            let room = RECORD_BYTES - kept.len();
            kept.extend_from_slice(&chunk[..n.min(room)]);
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// An HTTP/1.1 message: its first line, headers and body (de-chunked when it says so).
fn parse_message(bytes: &[u8]) -> (String, Vec<(String, String)>, String) {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (first, headers, body)
}

/// The data of a chunked body (as far as it was kept).
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            out.push_str(after.get(..size.min(after.len())).unwrap_or(""));
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// Puts one exchange into the transcript (no response: the connection was dropped).
fn record(transcript: &Transcript, request: &[u8], response: &[u8]) {
    let (line, request_headers, request_body) = parse_message(request);
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let (status_line, response_headers, response_body) = parse_message(response);
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    // The front door's own `connection: close` is not the client's.
    let request_headers = request_headers
        .into_iter()
        .filter(|(n, v)| !(n == "connection" && v == "close"))
        .collect();
    transcript.push(EventKind::Http {
        server: "auth".into(),
        method,
        path,
        status,
        request_headers,
        request_body,
        response_headers,
        response_body,
    });
}
