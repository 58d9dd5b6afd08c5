//! What the soak watches every second: `/health` (answered within 1 s?), the RSS, file
//! descriptors and threads of `tether-host` and `tether-ptyd`, and the host's counters.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::scenarios::processes::status_kib;

/// One sample.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Seconds from the start.
    pub at_s: f64,
    /// `/health` latency in ms; `None` when it did not answer within 1 s.
    pub health_ms: Option<f64>,
    /// tether-host: pid, RSS KiB, fds, threads.
    pub host: Option<Proc>,
    /// tether-ptyd: pid, RSS KiB, fds, threads.
    pub ptyd: Option<Proc>,
    /// Relay connections made so far (this host process).
    pub relay_connects: f64,
    /// Output bytes sent to the relay so far (this host process).
    pub output_bytes: f64,
}

/// One process's figures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// Resident memory, KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

fn proc(pid: u32) -> Option<Proc> {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .ok()
            .map(|d| d.count() as u64)
    };
    Some(Proc {
        pid,
        rss_kib: status_kib(pid, "VmRSS")?,
        fds: count("fd")?,
        threads: count("task")?,
    })
}

/// The host's pid and health port, from its state file.
fn host_info(home: &Path) -> Option<(u32, u16)> {
    let text = std::fs::read_to_string(home.join("run/host-org_a.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((doc["pid"].as_u64()? as u32, doc["port"].as_u64()? as u16))
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Takes one sample of the machine whose `TETHER_HOME` is `home`.
pub async fn sample(
    http: &reqwest::Client,
    home: &Path,
    ptyd: Option<u32>,
    started: Instant,
) -> Sample {
    let mut sample = Sample {
        at_s: started.elapsed().as_secs_f64(),
        ptyd: ptyd.and_then(proc),
        ..Sample::default()
    };
    let Some((pid, port)) = host_info(home) else {
        return sample;
    };
    sample.host = proc(pid);
    let asked = Instant::now();
    let health = http
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    if health.is_ok_and(|r| r.status().is_success()) {
        sample.health_ms = Some(asked.elapsed().as_secs_f64() * 1000.0);
    }
    if let Ok(response) = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
    {
        let text = response.text().await.unwrap_or_default();
        sample.relay_connects = counter(&text, "tether_relay_connects_total");
        sample.output_bytes = counter(&text, "tether_output_bytes_total");
    }
    sample
}

/// The warm-up: replay buffers fill (1 MiB per busy terminal) in the first minute.
pub const WARM_UP_S: f64 = 60.0;

/// Whether a figure stayed flat: the last tenth's maximum against that of the tenth that
/// starts after the warm-up (the second tenth of any run of 10 minutes or more).
pub fn flat(
    samples: &[Sample],
    figure: impl Fn(&Sample) -> Option<u64>,
    allowed: impl Fn(u64) -> u64,
) -> Result<(), String> {
    let tenth = samples.len() / 10;
    if tenth == 0 {
        return Ok(());
    }
    let warm = samples
        .iter()
        .position(|s| s.at_s >= WARM_UP_S)
        .unwrap_or(0)
        .max(tenth)
        .min(samples.len() - 2 * tenth);
    let max = |range: &[Sample]| range.iter().filter_map(&figure).max().unwrap_or(0);
    let baseline = max(&samples[warm..warm + tenth]);
    let last = max(&samples[samples.len() - tenth..]);
    if last > allowed(baseline) {
        return Err(format!(
            "grew from {baseline} (the tenth after the warm-up, from {:.0} s) to {last} (the last tenth)",
            samples[warm].at_s
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[u64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                at_s: i as f64 * 10.0,
                host: Some(Proc {
                    rss_kib: *v,
                    ..Proc::default()
                }),
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn a_leak_is_not_flat_and_noise_is() {
        let rss = |s: &Sample| s.host.map(|p| p.rss_kib);
        let ten_percent = |v: u64| v + v / 10;
        let noisy: Vec<u64> = (0..100).map(|i| 1000 + (i % 7) * 10).collect();
        assert!(flat(&samples(&noisy), rss, ten_percent).is_ok());
        let leaking: Vec<u64> = (0..100).map(|i| 1000 + i * 5).collect();
        assert!(flat(&samples(&leaking), rss, ten_percent).is_err());
    }
}
