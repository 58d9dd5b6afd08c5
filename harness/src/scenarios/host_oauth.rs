//! host OAuth: `tether auth login --via-host`, with the callback arriving through the relay.

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::{browse, World};
use super::runs::{text, wait_output};
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("host_oauth.via_host", "the callback reaches the host service through the relay and completes the flow the CLI started; --json prints one document", "contract §5", via_host),
        scenario!("host_oauth.expired", "a flow nobody completes ends `expired`, and --json still prints exactly one document", "contract §5", expired),
        scenario!("host_oauth.internal_403", "/internal/ routes requested through the relay answer 403 whatever the headers", "contract §4 route policy", internal_403),
    ]
}

async fn via_host() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    machine.api_key = None;
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--via-host", "--no-browser", "--json"])
        .await?;
    let status = browse(&url, |location| location).await?;
    ensure!(status == 200, "the relay's callback answered {status}");
    let out = wait_output(child).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "login via host failed: {stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).context("stdout is not exactly one JSON document")?;
    ensure!(doc["user"]["email"] == "alice@example.com", "{doc}");
    ensure!(
        machine.read_config()?["auth"]["refreshToken"]
            .as_str()
            .is_some(),
        "no tokens stored by the host"
    );
    Ok(())
}

async fn expired() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    // The knob the host service reads for its flow lifetime; 5 minutes is too long for a test.
    std::fs::create_dir_all(machine.home())?;
    let mut start = machine.command("tether", &["host", "start", "--daemon", "--org", "org_a"]);
    start.env(tether_contract::environment::FLOW_TTL_ENV, "1");
    let started =
        super::runs::run_recorded(start, "tether host start --daemon (flow TTL 1 s)").await?;
    ensure!(started.status.success(), "{}", text(&started).1);
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    machine.api_key = None;
    let (child, _url) = machine
        .spawn_with_url(&["auth", "login", "--via-host", "--no-browser", "--json"])
        .await?;
    let out = wait_output(child).await?;
    let _ = machine.tether(&["host", "stop", "--org", "org_a"]).await;
    let (stdout, _) = text(&out);
    ensure!(out.status.code() == Some(1), "an expired login should fail");
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).context("stdout is not exactly one JSON document")?;
    ensure!(doc["status"] == "expired", "{doc}");
    Ok(())
}

async fn internal_403() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    machine.start_host("org_a").await?;
    let (host, _) = world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let spoof = [
        ("host", "127.0.0.1"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-real-ip", "127.0.0.1"),
    ];
    for path in [
        "/internal/oauth/connect/start",
        "/internal/shutdown",
        "//internal/shutdown",
        "/health/../internal/shutdown",
    ] {
        let response = world
            .relay
            .http_request("org_a", &host, "POST", path, &spoof)
            .await?;
        ensure!(response["status"] == 403, "{path} answered {response}");
    }
    let health = world
        .relay
        .http_request("org_a", &host, "GET", "/health", &[])
        .await?;
    ensure!(health["status"] == 200, "{health}");
    ensure!(
        machine.host_status("org_a").await?["state"] == "running",
        "the host stopped"
    );
    Ok(())
}
