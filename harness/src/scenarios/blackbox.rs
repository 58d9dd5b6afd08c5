//! black-box: what a user sees, with no server-side knobs, so these also run against a
//! real deployment (`cargo xtask e2e --api-url … --relay-url …` with `TETHER_E2E_API_KEY`).

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::{Machine, World};
use super::runs::text;
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(black_box "blackbox.api_key_status", "with an API key, auth status names the key's bound organization", "contract §7", api_key_status),
        scenario!(black_box "blackbox.host_connects", "host start --daemon becomes healthy with the relay connected, and host stop leaves no process", "contract §5", host_connects),
    ]
}

/// The deployment under test: the one named by `TETHER_E2E_*`, or a fresh reference world.
async fn target() -> anyhow::Result<(Option<World>, Machine)> {
    if let Some((api, relay, key)) = super::env::deployment() {
        let mut machine = Machine::new(&api, &relay)?;
        machine.api_key = Some(key);
        return Ok((None, machine));
    }
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    Ok((Some(world), machine))
}

async fn api_key_status() -> anyhow::Result<()> {
    let (_world, machine) = target().await?;
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    ensure!(out.status.success(), "{}", text(&out).1);
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("one JSON document")?;
    ensure!(doc["method"] == "api_key", "{doc}");
    let org = doc["organizationId"].as_str().context("organizationId")?;
    ensure!(
        doc["organizationIds"] == serde_json::json!([org]),
        "a key acts in exactly its bound org: {doc}"
    );
    Ok(())
}

async fn host_connects() -> anyhow::Result<()> {
    let (_world, machine) = target().await?;
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("auth status --json")?;
    let org = doc["organizationId"]
        .as_str()
        .context("organizationId")?
        .to_string();
    machine.start_host(&org).await?;
    machine
        .wait_relay_state(&org, "connected", Duration::from_secs(15))
        .await?;
    let pid = machine.host_status(&org).await?["pid"]
        .as_u64()
        .context("pid")?;
    let out = machine.tether(&["host", "stop", "--org", &org]).await?;
    ensure!(out.status.success(), "{}", text(&out).1);
    ensure!(!running(pid), "tether-host is still running");
    Ok(())
}

/// True while `pid` runs; a zombie nobody has reaped yet counts as gone, as it does for
/// `tether host stop`.
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}
