//! Unix sockets only this user may use: created under a `0177` umask (never a moment
//! with wider permissions, as bind-then-chmod has), and every accepted peer's uid checked
//! with `SO_PEERCRED`, so a socket file's mode is not the only guard.

use std::io;
use std::path::Path;

use nix::sys::stat::{umask, Mode};
use tokio::net::{UnixListener, UnixStream};

/// Binds `path` with mode `0600` from the start.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let previous = umask(Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    umask(previous);
    let listener = bound?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// True when the peer of `stream` runs as this process's user.
fn same_user(stream: &UnixStream) -> bool {
    stream
        .peer_cred()
        .is_ok_and(|cred| cred.uid() == nix::unistd::geteuid().as_raw())
}

/// A listener (for `axum::serve`, or accepted from directly) that drops every
/// connection from another user.
pub struct SameUserListener(pub UnixListener);

impl axum::serve::Listener for SameUserListener {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) if same_user(&stream) => return (stream, addr),
                Ok(_) => tracing::warn!("refused a connection from another user"),
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}
