//! Logging for tether's processes: tracing to stderr, filtered by `TETHER_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber; `TETHER_LOG` takes `EnvFilter` syntax.
pub fn init() {
    let filter = EnvFilter::try_from_env("TETHER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
