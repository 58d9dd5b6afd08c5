//! How the two daemons run: logging to stderr, a small multi-threaded runtime, and any
//! error printed with the daemon's name before exiting 1.

use std::future::Future;

/// Runs `service` to completion as the daemon `name`; never returns on error.
pub fn run(name: &str, service: impl Future<Output = anyhow::Result<()>>) {
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(service) {
        tracing::error!("{e:#}");
        eprintln!("{name}: {e:#}");
        std::process::exit(1);
    }
}
