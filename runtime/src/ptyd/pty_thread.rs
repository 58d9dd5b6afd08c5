//! The one thread that reads and writes every pty: an event loop of its own, so reading a
//! pty never waits behind the clients' socket writes on the daemon's workers, and the
//! daemon's thread count stays the same whatever the number of terminals.

use std::sync::Mutex;

use tokio::runtime::{Builder, Handle};

use crate::sync::lock;

static PTY_LOOP: Mutex<Option<Handle>> = Mutex::new(None);

/// The pty loop's runtime, started on first use.
pub fn handle() -> anyhow::Result<Handle> {
    let mut started = lock(&PTY_LOOP);
    if let Some(handle) = started.as_ref() {
        return Ok(handle.clone());
    }
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the pty event loop: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("pty-loop".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| anyhow::anyhow!("cannot start the pty event loop's thread: {e}"))?;
    *started = Some(handle.clone());
    Ok(handle)
}
