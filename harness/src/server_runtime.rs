//! The runtime the reference servers run on: threads of their own, apart from the
//! scenarios' runtime, so a scenario that is busy (or a test runtime with few workers)
//! can never starve the relay or the authorization server's front door.
//!
//! Before this, both ran on the scenario's runtime; with 2 worker threads and two
//! scenarios blocked in synchronous process I/O, `tether` timed out against them.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Worker threads for the servers: enough for a parallel suite on a 2-core machine.
const WORKERS: usize = 2;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("reference-servers")
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            // Nothing a harness can do without threads; say why instead of a bare panic.
            Err(e) => panic!("cannot start the reference servers' runtime: {e}"),
        }
    })
}

/// The servers' runtime handle (enter it to register listeners with its reactor).
pub fn handle() -> &'static Handle {
    runtime().handle()
}

/// Runs `task` on the servers' runtime.
pub fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(task)
}

/// A std listener as a tokio listener registered with the servers' runtime.
pub fn listener(listener: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    let _entered = handle().enter();
    tokio::net::TcpListener::from_std(listener)
}
