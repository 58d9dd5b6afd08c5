//! device: `tether auth login --device` (RFC 8628) against scripted answers — approved,
//! pending then slow_down then approved (with the poll times checked), denied, expired,
//! the code's lifetime running out — and the device flow chosen by itself over SSH.

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::{Machine, World};
use super::runs::{ensure_failed, text};
use super::scenario;
use super::Scenario;
use crate::authserver::standard::USER_CODE;
use crate::authserver::DeviceAnswer;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("device.approved", "pending twice then approved: the code and URL are shown, polls are no faster than interval, tokens stored as after a browser login", "RFC 8628 §3.3–3.5, contract §3", approved),
        scenario!("device.slow_down", "slow_down adds 5 s to the interval for the rest of the flow", "RFC 8628 §3.5, contract §3", slow_down),
        scenario!("device.denied", "access_denied ends the login: exit 1, \"denied\", nothing stored", "RFC 8628 §3.5, contract §3", denied),
        scenario!("device.expired", "expired_token ends the login: exit 1, \"expired\", nothing stored", "RFC 8628 §3.5, contract §3", expired),
        scenario!("device.deadline", "a code that is never approved: the CLI stops when expires_in runs out, not later", "RFC 8628 §3.2, contract §3", deadline),
        scenario!("device.chosen_over_ssh", "login without flags in an SSH session with no display signs in by device code, saying why", "contract §7", chosen_over_ssh),
    ]
}

/// Slack for timers on a busy machine: polls may be late, never early.
const EARLY: Duration = Duration::from_millis(50);

fn script(world: &World, answers: &[DeviceAnswer]) {
    world.auth.state().device.script = answers.iter().copied().collect();
}

async fn device_login(machine: &Machine) -> anyhow::Result<std::process::Output> {
    machine
        .tether(&["auth", "login", "--device", "--json"])
        .await
}

async fn approved() -> anyhow::Result<()> {
    let world = World::start().await?;
    script(&world, &[DeviceAnswer::Pending, DeviceAnswer::Pending]);
    let machine = world.machine()?;
    let out = device_login(&machine).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "device login failed: {stderr}");
    ensure!(
        stderr.contains(USER_CODE) && stderr.contains(&format!("{}/device", world.auth.uri())),
        "the code and URL are not shown: {stderr}"
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout).context("one JSON document")?;
    ensure!(
        doc["user"]["email"] == "alice@example.com" && doc["method"] == "oauth",
        "{doc}"
    );
    let config = machine.read_config()?;
    ensure!(
        config["auth"]["refreshToken"].is_string() && config["organizationId"] == "org_a",
        "{config}"
    );
    let gaps = world.auth.state().device_poll_gaps();
    ensure!(gaps.len() == 2, "expected 3 polls, gaps {gaps:?}");
    ensure!(
        gaps.iter().all(|g| *g + EARLY >= Duration::from_secs(1)),
        "polled faster than interval: {gaps:?}"
    );
    Ok(())
}

async fn slow_down() -> anyhow::Result<()> {
    let world = World::start().await?;
    script(
        &world,
        &[
            DeviceAnswer::Pending,
            DeviceAnswer::SlowDown,
            DeviceAnswer::Pending,
        ],
    );
    let machine = world.machine()?;
    let out = device_login(&machine).await?;
    ensure!(
        out.status.success(),
        "device login failed: {}",
        text(&out).1
    );
    let gaps = world.auth.state().device_poll_gaps();
    ensure!(gaps.len() == 3, "expected 4 polls, gaps {gaps:?}");
    ensure!(gaps[0] + EARLY >= Duration::from_secs(1), "{gaps:?}");
    // After slow_down: 1 s + 5 s for every later poll.
    for gap in &gaps[1..] {
        ensure!(
            *gap + EARLY >= Duration::from_secs(6),
            "slow_down not kept: {gaps:?}"
        );
    }
    Ok(())
}

async fn ended(answers: &[DeviceAnswer], expect: &str) -> anyhow::Result<()> {
    let world = World::start().await?;
    script(&world, answers);
    let machine = world.machine()?;
    let out = device_login(&machine).await?;
    ensure_failed(&out, 1, &[expect])?;
    ensure!(!machine.has_stored_sign_in(), "tokens were stored");
    Ok(())
}

async fn denied() -> anyhow::Result<()> {
    ended(&[DeviceAnswer::Pending, DeviceAnswer::Denied], "denied").await
}

async fn expired() -> anyhow::Result<()> {
    ended(&[DeviceAnswer::Expired], "expired").await
}

async fn deadline() -> anyhow::Result<()> {
    let world = World::start().await?;
    world.auth.state().device.expires_in_s = 3;
    script(&world, &[DeviceAnswer::Pending; 20]);
    let machine = world.machine()?;
    let started = std::time::Instant::now();
    let out = device_login(&machine).await?;
    ensure_failed(&out, 1, &["expired"])?;
    let polls = world.auth.state().device.polls.len();
    ensure!((1..=3).contains(&polls), "{polls} polls for a 3 s code");
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "the CLI kept waiting after the code expired"
    );
    Ok(())
}

async fn chosen_over_ssh() -> anyhow::Result<()> {
    let world = World::start().await?;
    let mut machine = world.machine()?;
    machine.extra_env = vec![
        (
            "SSH_CONNECTION".into(),
            "203.0.113.9 52100 198.51.100.4 22".into(),
        ),
        ("DISPLAY".into(), String::new()),
        ("WAYLAND_DISPLAY".into(), String::new()),
    ];
    let out = machine.tether(&["auth", "login", "--json"]).await?;
    let (_, err) = text(&out);
    ensure!(out.status.success(), "login failed: {err}");
    ensure!(
        err.contains("No browser can open here") && err.contains("SSH"),
        "no reason given: {err}"
    );
    ensure!(
        !world.auth.state().device.polls.is_empty(),
        "the device flow was not used"
    );
    Ok(())
}
