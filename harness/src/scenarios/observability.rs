//! observability: a host service you can watch (issue 30) — timestamped log lines, or one
//! JSON object per line; `/metrics` in the Prometheus text format on the loopback port,
//! counting what happened; never reachable through the relay.

use std::time::Duration;

use anyhow::{ensure, Context};
use tether_contract::environment::LOG_FORMAT_ENV;

use super::env::{Machine, World};
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("observability.log_timestamps", "every line of a --daemon log starts with an RFC 3339 UTC timestamp; with TETHER_LOG_FORMAT=json every line is a JSON object with timestamp and level", "issue 30", log_timestamps),
        scenario!("observability.metrics", "/metrics on the loopback port parses as Prometheus text and counts the connection, the output, the terminals and a rotation; host status --json carries the same counters", "issue 30", metrics),
        scenario!("observability.metrics_not_relayed", "GET /metrics through the relay answers 403 (the route policy allows /health only)", "contract §4 route policy", metrics_not_relayed),
    ]
}

const WAIT: Duration = Duration::from_secs(15);

/// `2026-12-06T15:52:23.297274Z`: date, `T`, time, `Z`.
fn rfc3339_utc(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && word.ends_with('Z')
        && b[..4].iter().all(u8::is_ascii_digit)
}

async fn log_timestamps() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (text_machine, _) = world.connected_host(&[]).await?;
    let logs = text_machine.host_logs();
    let (_, text) = logs.first().context("no host log")?;
    ensure!(text.lines().count() >= 3, "too few lines: {text}");
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        ensure!(rfc3339_utc(first), "a line without a timestamp: {line:?}");
    }
    let _ = text_machine
        .tether(&["host", "stop", "--org", "org_a"])
        .await;

    let (json_machine, _) = world.connected_host(&[(LOG_FORMAT_ENV, "json")]).await?;
    let logs = json_machine.host_logs();
    let (_, text) = logs.first().context("no host log")?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("not JSON: {line:?}"))?;
        let stamp = doc["timestamp"].as_str().unwrap_or_default();
        ensure!(rfc3339_utc(stamp) && doc["level"].is_string(), "{line}");
    }
    Ok(())
}

async fn scrape(machine: &Machine) -> anyhow::Result<prometheus_parse::Scrape> {
    let status = machine.host_status("org_a").await?;
    let port = status["port"].as_u64().context("no port")?;
    let body = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .context("/metrics is not the Prometheus text format")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str) -> anyhow::Result<f64> {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == name)
        .with_context(|| format!("{name} missing"))?;
    Ok(match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    })
}

async fn metrics() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let mut terminal = world.relay.open_terminal("org_a", &host, None).await?;
    terminal.send(b"echo counted-$((40+2))\n")?;
    terminal.read_until("counted-42", WAIT).await?;
    let before = world
        .relay
        .current_connection("org_a", &host)
        .context("not connected")?;
    world.relay.expire_now("org_a", &host)?;
    world
        .relay
        .wait_reconnect("org_a", &host, before, WAIT)
        .await?;
    let scrape = scrape(&machine).await?;
    ensure!(
        value(&scrape, "tether_relay_connects_total")? >= 2.0,
        "connects"
    );
    ensure!(
        value(&scrape, "tether_rotations_total")? >= 1.0,
        "rotations"
    );
    ensure!(
        value(&scrape, "tether_token_expired_total")? >= 1.0,
        "tokenExpired"
    );
    ensure!(
        value(&scrape, "tether_output_bytes_total")? > 0.0,
        "output bytes"
    );
    ensure!(
        value(&scrape, "tether_input_bytes_total")? > 0.0,
        "input bytes"
    );
    ensure!(
        value(&scrape, "tether_terminals_open")? == 1.0,
        "terminals open"
    );
    ensure!(
        value(&scrape, "tether_process_resident_memory_bytes")? > 1e6,
        "RSS"
    );
    ensure!(value(&scrape, "tether_process_open_fds")? > 3.0, "fds");
    let status = machine.host_status("org_a").await?;
    let counters = &status["metrics"];
    ensure!(
        counters["rotations"].as_u64() >= Some(1)
            && counters["outputBytes"].as_u64() > Some(0)
            && counters["relayConnectedForS"].is_i64(),
        "host status --json lacks the counters: {status}"
    );
    Ok(())
}

async fn metrics_not_relayed() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (_machine, host) = world.connected_host(&[]).await?;
    let answer = world
        .relay
        .http_request("org_a", &host, "GET", "/metrics", &[])
        .await?;
    ensure!(answer["status"] == 403, "{answer}");
    let health = world
        .relay
        .http_request("org_a", &host, "GET", "/health", &[])
        .await?;
    ensure!(health["status"] == 200, "{health}");
    Ok(())
}
