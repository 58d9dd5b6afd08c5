//! Loopback benchmarks of the runtime against its targets: `host start --daemon` to healthy,
//! keystroke echo through relay → host → ptyd → pty, `cat` throughput on the same path
//! next to the kernel pty's own figure, and the host service's RSS with 10 terminals.
//! Numbers are printed, never asserted.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::scenarios::env::{Machine, World};
use crate::scenarios::processes::status_kib;

/// Summary statistics of samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// What the benchmarks measured.
struct Report {
    starts: Vec<Duration>,
    echoes: Vec<Duration>,
    mib: f64,
    through: Duration,
    raw: Duration,
    rss_kib: u64,
    host_peak_kib: u64,
    ptyd_peak_kib: u64,
}

/// Runs every benchmark and prints a report.
pub async fn run(throughput_mib: usize, echo_samples: usize) -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);

    let starts = start_times(&machine).await?;
    machine.start_host("org_a").await?;
    let (host, _) = world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let echoes = echo_times(&world, &host, echo_samples).await?;
    let (mib, through, raw) = throughput(&world, &host, throughput_mib).await?;

    // RSS of the host service with 10 open terminals.
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(world.relay.open_terminal("org_a", &host, None).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = machine.host_status("org_a").await?["pid"]
        .as_u64()
        .context("host pid")?;
    let rss_kib = status_kib(pid as u32, "VmRSS").context("VmRSS")?;

    // Peak RSS of host and ptyd while `cat /dev/zero` runs and the relay reads nothing.
    let flood = world
        .relay
        .open_terminal("org_a", &host, Some("cat /dev/zero"))
        .await?;
    world.relay.set_reading(false);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let peak = |binary: &str| -> anyhow::Result<u64> {
        let pid = *machine.pids_of(binary).first().context("no such process")?;
        status_kib(pid, "VmHWM").context("VmHWM")
    };
    let (host_peak_kib, ptyd_peak_kib) = (peak("tether-host")?, peak("tether-ptyd")?);
    world.relay.set_reading(true);
    flood.close()?;
    drop(open);

    print(&Report {
        starts,
        echoes,
        mib,
        through,
        raw,
        rss_kib,
        host_peak_kib,
        ptyd_peak_kib,
    });
    Ok(())
}

/// `host start --daemon` → healthy (the CLI returns once /health answers), 7 times, sorted.
async fn start_times(machine: &Machine) -> anyhow::Result<Vec<Duration>> {
    let mut starts = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let out = machine
            .tether(&["host", "start", "--daemon", "--org", "org_a"])
            .await?;
        starts.push(started.elapsed());
        ensure!(
            out.status.success(),
            "host start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = machine.tether(&["host", "stop", "--org", "org_a"]).await?;
        ensure!(out.status.success(), "host stop failed");
    }
    starts.sort();
    Ok(starts)
}

/// Keystroke echo: one byte in, its echo out, through the whole path; sorted.
async fn echo_times(world: &World, host: &str, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut terminal = world
        .relay
        .open_terminal("org_a", host, Some("stty -icanon; cat"))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminal.buffer.clear();
    let mut echoes = Vec::with_capacity(samples);
    for i in 0..samples {
        let byte = [b'a' + (i % 26) as u8];
        let started = Instant::now();
        terminal.send(&byte)?;
        terminal
            .read_until(std::str::from_utf8(&byte)?, Duration::from_secs(5))
            .await?;
        echoes.push(started.elapsed());
    }
    echoes.sort();
    terminal.close()?;
    Ok(echoes)
}

/// `cat` of a `mib` MiB file through relay → host → ptyd, and on the kernel pty alone:
/// the size in MiB and both times.
async fn throughput(
    world: &World,
    host: &str,
    mib: usize,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("big");
    let chunk = "0123456789abcdef".repeat(64 * 1024);
    let mut data = String::with_capacity(mib * 1024 * 1024);
    while data.len() < mib * 1024 * 1024 {
        data.push_str(&chunk);
    }
    std::fs::write(&file, &data)?;
    let bytes = data.len();
    drop(data);
    let command = format!("stty raw -echo; cat {}; sleep 1", file.display());
    let mut terminal = world
        .relay
        .open_terminal("org_a", host, Some(&command))
        .await?;
    let started = Instant::now();
    terminal.read_bytes(bytes, Duration::from_secs(120)).await?;
    let through = started.elapsed();
    let raw_started = Instant::now();
    let script = std::process::Command::new("script")
        .args(["-q", "-c", &format!("cat {}", file.display()), "/dev/null"])
        .stdout(std::process::Stdio::null())
        .status()
        .context("`script` (util-linux) is needed for the kernel pty baseline")?;
    let raw = raw_started.elapsed();
    ensure!(script.success(), "script failed");
    Ok((bytes as f64 / (1024.0 * 1024.0), through, raw))
}

/// The report table, against the issue's targets.
fn print(r: &Report) {
    let mib = r.mib;
    println!("benchmark                                   result            target");
    println!(
        "host start --daemon → healthy (median of 7) {:<17} < 100 ms",
        ms(percentile(&r.starts, 0.5))
    );
    println!(
        "keystroke echo p50 ({} samples)          {:<17}",
        r.echoes.len(),
        ms(percentile(&r.echoes, 0.5))
    );
    println!(
        "keystroke echo p99                          {:<17} < 5 ms",
        ms(percentile(&r.echoes, 0.99))
    );
    println!(
        "cat {mib:.0} MiB through relay → host → ptyd   {:<17} ≥ 90 % of the kernel pty",
        format!("{:.1} MiB/s", mib / r.through.as_secs_f64())
    );
    println!(
        "cat {mib:.0} MiB on the kernel pty (script)    {:<17}",
        format!("{:.1} MiB/s", mib / r.raw.as_secs_f64())
    );
    println!(
        "  ratio                                     {:<17}",
        format!(
            "{:.0} %",
            100.0 * r.raw.as_secs_f64() / r.through.as_secs_f64()
        )
    );
    println!(
        "tether-host RSS with 10 terminals           {:<17} < 20 MiB",
        format!("{:.1} MiB", r.rss_kib as f64 / 1024.0)
    );
    println!(
        "peak RSS, cat /dev/zero, relay not reading  {:<17} < 64 MiB each",
        format!(
            "host {:.1} / ptyd {:.1} MiB",
            r.host_peak_kib as f64 / 1024.0,
            r.ptyd_peak_kib as f64 / 1024.0
        )
    );
}
