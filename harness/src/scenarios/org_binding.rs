//! org binding: an API key acts only in the organization it was minted for.

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::World;
use super::runs::text;
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("org.key_bound_to_a", "a key bound to org A connects for A and is refused (403) for B, though its owner is a member of B", "contract §3, §4", key_bound_to_a),
        scenario!("org.owner_removed_and_readded", "owner removed from A → mint 403 and auth status says so; owner re-added → the same key works again", "contract §3", owner_removed_and_readded),
        scenario!("org.metadata_immutable", "api-key/update carrying metadata is 400: the org binding cannot change", "contract §3", metadata_immutable),
    ]
}

async fn key_bound_to_a() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("auth status --json")?;
    ensure!(
        doc["organizationId"] == "org_a" && doc["organizationIds"] == serde_json::json!(["org_a"]),
        "{doc}"
    );
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    machine.start_host("org_b").await?;
    let status = machine
        .wait_relay_state("org_b", "auth_failed", Duration::from_secs(10))
        .await?;
    ensure!(
        status["relayDetail"]
            .as_str()
            .unwrap_or_default()
            .contains("403"),
        "{status}"
    );
    ensure!(
        world
            .relay
            .connections()
            .iter()
            .any(|c| c.org == "org_b" && c.status == 403),
        "the relay did not refuse org_b"
    );
    Ok(())
}

async fn owner_removed_and_readded() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key.clone());
    world.auth.state().remove_member("user_alice", "org_a");
    let out = machine.tether(&["auth", "status"]).await?;
    let (_, stderr) = text(&out);
    ensure!(out.status.code() == Some(1), "expected exit 1: {stderr}");
    ensure!(
        stderr.contains("no longer a member") && stderr.contains("403"),
        "{stderr}"
    );
    ensure!(!stderr.contains(&key), "the key leaked into the error");
    world.auth.state().add_member("user_alice", "org_a");
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    ensure!(
        out.status.success(),
        "the same key should work again: {}",
        text(&out).1
    );
    Ok(())
}

async fn metadata_immutable() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let key_id = world.auth.state().api_key_id(&key).context("key id")?;
    let client = crate::tls::http_client(None);
    let url = format!("{}/api/auth/api-key/update", world.auth.uri());
    let refused = client
        .post(&url)
        .header("x-api-key", &key)
        .json(&serde_json::json!({"keyId": key_id, "metadata": {"organizationId": "org_b"}}))
        .send()
        .await?;
    ensure!(
        refused.status() == 400,
        "metadata update answered {}",
        refused.status()
    );
    let renamed = client
        .post(&url)
        .header("x-api-key", &key)
        .json(&serde_json::json!({"keyId": key_id, "name": "laptop"}))
        .send()
        .await?;
    ensure!(
        renamed.status() == 200,
        "a rename answered {}",
        renamed.status()
    );
    let mint = client
        .get(format!("{}/api/auth/token", world.auth.uri()))
        .header("x-api-key", &key)
        .send()
        .await?;
    let token: serde_json::Value = mint.json().await?;
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        token["token"].as_str().unwrap_or_default(),
    )?
    .claims;
    ensure!(
        claims["organizationIds"] == serde_json::json!(["org_a"]),
        "the binding changed: {claims}"
    );
    Ok(())
}
