//! Serving over TLS: TCP connections accepted, handshakes run concurrently (a silent
//! client cannot hold up the others), finished streams handed on — as an axum
//! [`Listener`] for the relay, and one function for the authorization server's front door.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A byte stream a server reads and writes: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// How long a client may take to finish its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Completes the server side of a TLS handshake on `tcp`, or hands it back as is.
pub async fn wrap(tcp: TcpStream, tls: Option<&Arc<ServerConfig>>) -> Option<Box<dyn Io>> {
    let _ = tcp.set_nodelay(true);
    match tls {
        None => Some(Box::new(tcp)),
        Some(config) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
            match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => Some(Box::new(stream)),
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake failed: {e}");
                    None
                }
                Err(_) => None,
            }
        }
    }
}

/// An axum listener that accepts TCP on a task of its own and completes TLS handshakes
/// concurrently.
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Box<dyn Io>, SocketAddr)>,
}

impl TlsListener {
    /// Starts accepting on `listener` (on the current runtime); counts failed handshakes
    /// in `failures`.
    pub fn new(
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        failures: Arc<AtomicU32>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // Stop (and free the port) as soon as the server drops its end.
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // EMFILE and the like: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let sender = tx.clone();
                let tls = tls.clone();
                let failures = failures.clone();
                tokio::spawn(async move {
                    match wrap(tcp, tls.as_ref()).await {
                        Some(io) => {
                            let _ = sender.send((io, peer)).await;
                        }
                        None => {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl Listener for TlsListener {
    type Io = Box<dyn Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
