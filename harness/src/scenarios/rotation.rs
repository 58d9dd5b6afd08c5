//! rotation: relay `tokenExpired`, the rotation cap, signing-key rotation, relay restarts.

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::World;
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("rotation.token_expired", "relay tokenExpired → exactly one rotation onto a new token, and the terminal still answers", "contract §4", token_expired),
        scenario!("rotation.cap", "four tokenExpired within 60 s → auth_failed, reported in status, and no further dialing", "contract §4", cap),
        scenario!("rotation.jwks_key_rotation", "the server rotates its signing key mid-run; the relay refetches the JWKS on the unknown kid and accepts the new token", "contract §3, §4", jwks_key_rotation),
        scenario!("rotation.relay_restart", "the relay restarts → the host reconnects and the open terminal still answers", "contract §4", relay_restart),
    ]
}

const WAIT: Duration = Duration::from_secs(15);

async fn connected_host(world: &World) -> anyhow::Result<(super::env::Machine, String)> {
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    machine.start_host("org_a").await?;
    let (host, _) = world.relay.wait_host("org_a", WAIT).await?;
    Ok((machine, host))
}

async fn token_expired() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (_machine, host) = connected_host(&world).await?;
    let mut terminal = world.relay.open_terminal("org_a", &host, None).await?;
    let before = world
        .relay
        .current_connection("org_a", &host)
        .context("connected")?;
    let mints = world.auth.requests_to("/api/auth/token").await.len();
    world.relay.expire_now("org_a", &host)?;
    world
        .relay
        .wait_reconnect("org_a", &host, before, WAIT)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted: Vec<_> = world.relay.accepted();
    ensure!(
        accepted.len() == 2,
        "expected exactly one rotation, saw {} connections",
        accepted.len()
    );
    ensure!(
        accepted[0].token != accepted[1].token,
        "rotation reused the old token"
    );
    ensure!(
        world.auth.requests_to("/api/auth/token").await.len() == mints + 1,
        "expected one new mint"
    );
    terminal.send(b"echo rotated-$((7*6))\n")?;
    terminal.read_until("rotated-42", WAIT).await?;
    Ok(())
}

async fn cap() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = connected_host(&world).await?;
    let mut last = world
        .relay
        .current_connection("org_a", &host)
        .context("connected")?;
    for _ in 0..3 {
        world.relay.expire_now("org_a", &host)?;
        last = world
            .relay
            .wait_reconnect("org_a", &host, last, WAIT)
            .await?
            .0;
    }
    world.relay.expire_now("org_a", &host)?;
    let status = machine
        .wait_relay_state("org_a", "auth_failed", WAIT)
        .await?;
    ensure!(
        status["relayDetail"]
            .as_str()
            .unwrap_or_default()
            .contains("tokenExpired"),
        "{status}"
    );
    let seen = world.relay.connections().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        world.relay.connections().len() == seen,
        "the host kept dialing after auth_failed"
    );
    let log = std::fs::read_to_string(machine.home().join("logs/host-org_a.log"))?;
    ensure!(log.contains("auth_failed"), "the log does not say why");
    Ok(())
}

async fn jwks_key_rotation() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (_machine, host) = connected_host(&world).await?;
    let fetches = world.relay.jwks_fetches();
    world.auth.state().rotate_signing_key()?;
    let before = world
        .relay
        .current_connection("org_a", &host)
        .context("connected")?;
    world.relay.expire_now("org_a", &host)?;
    world
        .relay
        .wait_reconnect("org_a", &host, before, WAIT)
        .await?;
    let last = world
        .relay
        .connections()
        .into_iter()
        .last()
        .context("a connection")?;
    let kid = jsonwebtoken::decode_header(&last.token)?.kid;
    ensure!(
        kid.as_deref() == Some(crate::keys::NEXT),
        "the new token is signed with {kid:?}"
    );
    ensure!(
        last.status == 101,
        "the relay refused the token signed with the new key"
    );
    ensure!(
        world.relay.jwks_fetches() == fetches + 1,
        "the relay did not refetch the JWKS exactly once"
    );
    Ok(())
}

async fn relay_restart() -> anyhow::Result<()> {
    let mut world = World::start().await?;
    let (_machine, host) = connected_host(&world).await?;
    let mut terminal = world.relay.open_terminal("org_a", &host, None).await?;
    terminal.send(b"export KEPT=across-restart; echo ready-$((1+1))\n")?;
    terminal.read_until("ready-2", WAIT).await?;
    let session = terminal.session_id.clone();
    world.restart_relay(Duration::from_millis(300)).await?;
    let (_, hello) = world
        .relay
        .wait_host("org_a", Duration::from_secs(40))
        .await?;
    let sessions = hello["sessions"].as_array().context("sessions in hello")?;
    ensure!(
        sessions.iter().any(|s| s["sessionId"] == session.as_str()),
        "hello after reconnect lacks the terminal: {hello}"
    );
    let mut terminal = world.relay.attach("org_a", &host, &session);
    terminal.send(b"echo $KEPT\n")?;
    terminal.read_until("across-restart", WAIT).await?;
    Ok(())
}
