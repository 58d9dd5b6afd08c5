//! The reference forward proxy: HTTP `CONNECT` tunnels (what `tether` uses for HTTPS and
//! WSS through a corporate proxy), optionally demanding Basic credentials, recording every
//! request it saw. Names under `tether.test` resolve to loopback here and nowhere else, so
//! a scenario that reaches `api.tether.test` proves its traffic went through the proxy.
//! Anything other than `CONNECT` is answered 501: tether never sends plaintext through it.
//! It can stall (the soak's "proxy stalls for 40 s"): tunnels stay open and carry nothing,
//! new ones wait.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock::lock;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `CONNECT`, `GET`, …
    pub method: String,
    /// The request target (`host:port` for `CONNECT`).
    pub target: String,
    /// Whether it carried the right `Proxy-Authorization`.
    pub authorized: bool,
}

struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// True while the proxy carries nothing.
    stalled: watch::Sender<bool>,
}

/// A running proxy.
pub struct ForwardProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    credentials: Option<(String, String)>,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ForwardProxy {
    /// Starts on a free loopback port; with `credentials`, every request must carry them.
    pub fn start(credentials: Option<(&str, &str)>) -> anyhow::Result<ForwardProxy> {
        let listener = {
            let _entered = crate::server_runtime::handle().enter();
            let socket = tokio::net::TcpSocket::new_v4()?;
            // A proxy buffers little: when it stalls, a busy sender's writes stall within
            // a second rather than filling megabytes of loopback buffers first.
            socket.set_recv_buffer_size(64 * 1024)?;
            socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            socket.listen(1024)?
        };
        let addr = listener.local_addr()?;
        let credentials = credentials.map(|(u, p)| (u.to_string(), p.to_string()));
        let expected = credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let shared = Arc::new(Shared {
            seen: Mutex::new(Vec::new()),
            stalled: watch::Sender::new(false),
        });
        let task = crate::server_runtime::spawn(accept(listener, expected, shared.clone()));
        Ok(ForwardProxy {
            addr,
            credentials,
            shared,
            task,
        })
    }

    /// `http://user:password@127.0.0.1:PORT` (no credentials if none are required).
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// Stops carrying bytes (true): open tunnels stay open with nothing passing either
    /// way, and new ones wait; or carries on (false), everything held flowing in order.
    pub fn set_stalled(&self, on: bool) {
        self.shared.stalled.send_replace(on);
    }

    /// Targets of the authorized `CONNECT` tunnels so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "CONNECT" && s.authorized)
            .map(|s| s.target)
            .collect()
    }
}

async fn accept(listener: TcpListener, expected: Option<String>, shared: Arc<Shared>) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(serve(conn, expected.clone(), shared.clone()));
    }
}

/// `host` as the proxy resolves it: `tether.test` names are loopback.
fn resolve(host: &str) -> &str {
    if host == "tether.test" || host.ends_with(".tether.test") {
        "127.0.0.1"
    } else {
        host
    }
}

async fn serve(mut conn: TcpStream, expected: Option<String>, shared: Arc<Shared>) {
    let _ = conn.set_nodelay(true);
    let mut head = Vec::new();
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return;
        }
        match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let target = request_line.next().unwrap_or("").to_string();
    let given = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim().to_string());
    let authorized = expected.is_none() || given == expected;
    lock(&shared.seen).push(Seen {
        method: method.clone(),
        target: target.clone(),
        authorized,
    });
    if !authorized {
        let _ = conn
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"harness\"\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    if method != "CONNECT" {
        let _ = conn
            .write_all(b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    if flowing(&mut shared.stalled.subscribe()).await.is_err() {
        return;
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let upstream = match port.parse::<u16>() {
        Ok(port) => TcpStream::connect((resolve(host), port)).await,
        Err(_) => Err(std::io::Error::other("bad port")),
    };
    let Ok(upstream) = upstream else {
        let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    let _ = upstream.set_nodelay(true);
    if conn
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let (from_client, to_client) = conn.into_split();
    let (from_upstream, to_upstream) = upstream.into_split();
    tokio::join!(
        pump(from_client, to_upstream, shared.stalled.subscribe()),
        pump(from_upstream, to_client, shared.stalled.subscribe()),
    );
}

/// Waits until the proxy is not stalled.
async fn flowing(stalled: &mut watch::Receiver<bool>) -> Result<(), watch::error::RecvError> {
    stalled.wait_for(|on| !*on).await.map(drop)
}

/// Copies one direction of a tunnel, holding bytes while the proxy is stalled.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut stalled: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if flowing(&mut stalled).await.is_err() {
            break;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if flowing(&mut stalled).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
