//! Many terminals at once (contract section 6, "Scale"): `session.open` every 2 ms, the
//! time to the first and to the last `session.opened`, the pty daemon's threads, fds and
//! RSS with all of them open, and keystroke echo while they are open and while 10 of them
//! stream output.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::echo_times;
use crate::relay::terminal::Terminal;
use crate::scenarios::env::{Machine, World};
use crate::scenarios::processes::status_kib;

/// What the burst measured.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Burst {
    /// Terminals opened.
    pub terminals: usize,
    /// From the first `session.open` to the first `session.opened`.
    pub first_ms: f64,
    /// From the first `session.open` to the last `session.opened`.
    pub all_ms: f64,
    /// tether-ptyd's threads with every terminal open.
    pub ptyd_threads: usize,
    /// tether-ptyd's open file descriptors with every terminal open.
    pub ptyd_fds: usize,
    /// tether-ptyd's RSS with every terminal open, idle, in KiB.
    pub ptyd_rss_kib: u64,
    /// Echo p50 / p99 in ms while they are open.
    pub echo_idle_ms: (f64, f64),
    /// Echo p50 / p99 in ms while 10 of them stream output.
    pub echo_streaming_ms: (f64, f64),
}

const OPEN_GAP: Duration = Duration::from_millis(2);
const STREAMING: usize = 10;
/// A paced stream: 100 numbered lines every 50 ms.
const STREAM_COMMAND: &str = "i=0; while :; do seq $i $((i+99)); i=$((i+100)); sleep 0.05; done";

/// Opens `n` terminals on `host` 2 ms apart and measures them; `samples` echoes per phase.
pub async fn burst(
    world: &World,
    machine: &Machine,
    host: &str,
    n: usize,
    samples: usize,
) -> anyhow::Result<Burst> {
    let started = Instant::now();
    // Each terminal waits for its `session.opened` on a task of its own, so every answer
    // is timed when it comes, not when the burst has been sent.
    let mut waiting = Vec::with_capacity(n);
    for i in 0..n {
        let mut terminal =
            world
                .relay
                .request_terminal("org_a", host, &format!("burst-{i}"), None)?;
        waiting.push(tokio::spawn(async move {
            let opened = terminal.wait_opened(Duration::from_secs(120)).await;
            opened.map(|()| (started.elapsed(), terminal))
        }));
        tokio::time::sleep(OPEN_GAP).await;
    }
    let mut terminals: Vec<Terminal> = Vec::with_capacity(n);
    let (mut first, mut all) = (Duration::MAX, Duration::ZERO);
    for task in waiting {
        let (at, terminal) = task.await??;
        first = first.min(at);
        all = all.max(at);
        terminals.push(terminal);
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let ptyd = *machine
        .pids_of("tether-ptyd")
        .first()
        .context("no tether-ptyd")?;
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{ptyd}/{what}"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let (ptyd_threads, ptyd_fds) = (count("task"), count("fd"));
    let ptyd_rss_kib = status_kib(ptyd, "VmRSS").unwrap_or(0);
    let echo_idle = echo_times(world, host, samples).await?;

    let mut streams = Vec::new();
    for _ in 0..STREAMING {
        streams.push(
            world
                .relay
                .open_terminal("org_a", host, Some(STREAM_COMMAND))
                .await?,
        );
    }
    let echo_streaming = echo_times(world, host, samples).await?;
    for stream in &streams {
        stream.close()?;
    }
    for terminal in &terminals {
        terminal.close()?;
    }
    let p = |sorted: &[Duration]| {
        (
            ms(super::percentile(sorted, 0.5)),
            ms(super::percentile(sorted, 0.99)),
        )
    };
    Ok(Burst {
        terminals: n,
        first_ms: ms(first.min(all)),
        all_ms: ms(all),
        ptyd_threads,
        ptyd_fds,
        ptyd_rss_kib,
        echo_idle_ms: p(&echo_idle),
        echo_streaming_ms: p(&echo_streaming),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
