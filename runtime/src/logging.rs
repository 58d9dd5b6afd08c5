//! Logging for tether's processes: tracing to stderr, filtered by `TETHER_LOG` (default
//! `info`), each line with an RFC 3339 UTC timestamp (a `--daemon` log file has no other
//! clock), in colour only on a terminal and never with `NO_COLOR` (a log file or the
//! journal gets plain text). `TETHER_LOG_FORMAT=json` writes one JSON object per line
//! (`timestamp`, `level`, `fields.message` and the other fields) for log shippers.

use std::io::IsTerminal;

use tether_contract::environment::{LOG_ENV, LOG_FORMAT_ENV};
use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber; `TETHER_LOG` takes `EnvFilter` syntax.
pub fn init() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var(LOG_FORMAT_ENV).is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        let _ = builder.json().with_ansi(false).try_init();
        return;
    }
    let _ = builder
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        ))
        .try_init();
}

/// Colour when writing to a terminal, unless `NO_COLOR` is set (<https://no-color.org>).
fn colour(terminal: bool, no_color: bool) -> bool {
    terminal && !no_color
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(super::colour(true, false));
        assert!(!super::colour(true, true));
        assert!(!super::colour(false, false));
    }
}
