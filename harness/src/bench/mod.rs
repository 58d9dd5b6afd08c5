//! Loopback benchmarks of the runtime against its targets: `host start --daemon` to healthy,
//! keystroke echo through relay → host → ptyd → pty, `cat` throughput on the same path
//! next to the kernel pty's own figure and OpenSSH's, the host service's RSS with 10
//! terminals, and a burst of many terminals (`terminals.rs`). Numbers are printed and
//! written to `target/bench/results.json`, never asserted.

mod openssh;
mod page;
mod terminals;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::scenarios::env::{Machine, World};
use crate::scenarios::processes::status_kib;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the throughput file, in MiB.
    pub mib: usize,
    /// Keystroke echo samples.
    pub samples: usize,
    /// Terminals in the burst (0: no burst).
    pub terminals: usize,
    /// Where the results file goes.
    pub results: PathBuf,
}

/// The p-th quantile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// What the benchmarks measured.
pub(crate) struct Report {
    starts: Vec<Duration>,
    echoes: Vec<Duration>,
    mib: f64,
    through: Duration,
    raw: Duration,
    rss_kib: u64,
    host_peak_kib: u64,
    ptyd_peak_kib: u64,
    openssh: Result<openssh::OpenSsh, String>,
    burst: Option<terminals::Burst>,
}

/// Runs every benchmark, prints a report and writes the results file.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    let limit = (options.terminals + 64).to_string();
    machine.extra_env = vec![(
        tether_contract::environment::MAX_TERMINALS_ENV.into(),
        limit,
    )];

    let starts = start_times(&machine).await?;
    machine.start_host("org_a").await?;
    let (host, _) = world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let echoes = echo_times(&world, &host, options.samples).await?;
    let dir = tempfile::tempdir()?;
    let (file, bytes) = sample_file(dir.path(), options.mib)?;
    let (mib, through, raw) = throughput(&world, &host, &file, bytes).await?;
    let openssh = openssh::measure(options.samples, &file, bytes).map_err(|e| format!("{e:#}"));

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
    tokio::time::sleep(Duration::from_secs(1)).await;

    let burst = match options.terminals {
        0 => None,
        n => Some(terminals::burst(&world, &machine, &host, n, options.samples).await?),
    };
    let report = Report {
        starts,
        echoes,
        mib,
        through,
        raw,
        rss_kib,
        host_peak_kib,
        ptyd_peak_kib,
        openssh,
        burst,
    };
    print(&report);
    write_results(&report, &options.results)?;
    let page = options.results.with_file_name("index.html");
    page::write(&report, &page)?;
    println!("report: {}", page.display());
    Ok(())
}

/// `target/bench/results.json`: this run's figures, to compare runs by.
fn write_results(r: &Report, path: &Path) -> anyhow::Result<()> {
    let q = |samples: &[Duration], p: f64| percentile(samples, p).as_secs_f64() * 1000.0;
    let doc = serde_json::json!({
        "schema": 1,
        "hostStartMs": q(&r.starts, 0.5),
        "echoMs": {"p50": q(&r.echoes, 0.5), "p99": q(&r.echoes, 0.99)},
        "catMibPerS": r.mib / r.through.as_secs_f64(),
        "barePtyMibPerS": r.mib / r.raw.as_secs_f64(),
        "hostRssKib10Terminals": r.rss_kib,
        "peakRssKib": {"host": r.host_peak_kib, "ptyd": r.ptyd_peak_kib},
        "openssh": match &r.openssh {
            Ok(ssh) => serde_json::to_value(ssh)?,
            Err(why) => serde_json::json!({"skipped": why}),
        },
        "terminals": r.burst,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("results: {}", path.display());
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

/// Keystroke echo: one byte in, its echo out, through the whole path; sorted. Each byte
/// comes back twice (the pty's echo, then `cat`'s copy): the first is timed, and the second
/// is waited for before the next byte, so a `cat` that falls behind on a busy machine never
/// leaves an old copy of a letter to be taken for a new echo (which read as 0 ms).
pub(crate) async fn echo_times(
    world: &World,
    host: &str,
    samples: usize,
) -> anyhow::Result<Vec<Duration>> {
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
        let letter = std::str::from_utf8(&byte)?;
        terminal.read_until(letter, Duration::from_secs(5)).await?;
        echoes.push(started.elapsed());
        terminal.read_until(letter, Duration::from_secs(5)).await?;
    }
    echoes.sort();
    terminal.close()?;
    Ok(echoes)
}

/// A file of at least `mib` MiB in `dir`: its path and size.
fn sample_file(dir: &Path, mib: usize) -> anyhow::Result<(PathBuf, usize)> {
    let file = dir.join("big");
    let chunk = "0123456789abcdef".repeat(64 * 1024);
    let mut data = String::with_capacity(mib * 1024 * 1024);
    while data.len() < mib * 1024 * 1024 {
        data.push_str(&chunk);
    }
    std::fs::write(&file, &data)?;
    Ok((file, data.len()))
}

/// `cat` of `file` (`bytes` long) through relay → host → ptyd, and on the kernel pty
/// alone: the size in MiB and both times.
async fn throughput(
    world: &World,
    host: &str,
    file: &Path,
    bytes: usize,
) -> anyhow::Result<(f64, Duration, Duration)> {
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
    print_openssh(r);
    if let Some(b) = &r.burst {
        let n = b.terminals;
        println!(
            "{n} terminals, session.open every 2 ms:     first {:.0} ms, all {:.0} ms   first ≤ 50 ms, all ≤ 5 s",
            b.first_ms, b.all_ms
        );
        println!(
            "  tether-ptyd with {n} open                 {} threads, {} fds, {:.1} MiB   ≤ 8 threads, ≤ 64 MiB",
            b.ptyd_threads,
            b.ptyd_fds,
            b.ptyd_rss_kib as f64 / 1024.0
        );
        println!(
            "  echo with {n} open                        p50 {:.3} ms, p99 {:.3} ms",
            b.echo_idle_ms.0, b.echo_idle_ms.1
        );
        println!(
            "  echo with {n} open, 10 streaming          p50 {:.3} ms, p99 {:.3} ms   p99 ≤ 2 ms",
            b.echo_streaming_ms.0, b.echo_streaming_ms.1
        );
    }
}

fn print_openssh(r: &Report) {
    match &r.openssh {
        Ok(ssh) => {
            let tether = |p| percentile(&r.echoes, p).as_secs_f64() * 1000.0;
            println!("OpenSSH ({})", ssh.version);
            for (name, p, theirs) in [("p50", 0.5, ssh.echo_ms.0), ("p99", 0.99, ssh.echo_ms.1)] {
                println!(
                    "  echo {name}: tether {:.3} ms, OpenSSH {:.3} ms   tether/OpenSSH {:.2}   ≤ 1.00",
                    tether(p),
                    theirs,
                    tether(p) / theirs
                );
            }
            let ours = r.mib / r.through.as_secs_f64();
            println!(
                "  cat: tether {ours:.1} MiB/s, OpenSSH {:.1} MiB/s",
                ssh.cat_mib_s
            );
        }
        Err(why) => println!("OpenSSH: not measured ({why})"),
    }
}
