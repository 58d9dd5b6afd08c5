//! refresh: proactive refresh, rotation, reuse detection, and what failures mean.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::json;

use super::auth::world_login_refresh_token;
use super::env::{Machine, World};
use super::runs::text;
use super::scenario;
use super::Scenario;
use crate::authserver::Fault;
use crate::clock::now_ms;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("refresh.in_window", "a token with less than 5 minutes left is refreshed before use", "contract §7", in_window),
        scenario!("refresh.rotation_persisted", "the rotated refresh token is stored and is the one used next", "RFC 9700 §4.14.2, contract §7", rotation_persisted),
        scenario!("refresh.reuse_detected", "reusing a rotated refresh token revokes the family and surfaces as Session expired (exit 3)", "RFC 9700 §4.14.2, contract §1", reuse_detected),
        scenario!("refresh.transient_5xx", "a 5xx on refresh is reported as such (exit 4), never Session expired; an unexpired token keeps working", "RFC 6749 §5.2, contract §7", transient_5xx),
        scenario!("refresh.connection_dropped", "a connection dropped during refresh is reported as a network error, never retried (the token may have rotated) and never Session expired", "RFC 9700 §4.14.2, contract §7", connection_dropped),
        scenario!("refresh.connection_refused", "an unreachable API is exit 4 naming the URL, never Session expired", "contract §1", connection_refused),
        scenario!("refresh.concurrent_20", "20 concurrent `tether auth status` on an expiring token cause exactly one refresh request", "contract §7", concurrent_20),
    ]
}

/// Signs alice in on `machine` with an access token that has `left_ms` to live.
fn sign_in(world: &World, machine: &Machine, left_ms: i64) -> anyhow::Result<String> {
    let refresh = world_login_refresh_token(world);
    let access = world
        .auth
        .state()
        .sign("user_alice", &["org_a".into(), "org_b".into()]);
    machine.store_sign_in(&access, Some(&refresh), now_ms() + left_ms)?;
    Ok(refresh)
}

/// A new world and machine with alice signed in (`left_ms` to live), and her refresh token.
async fn signed_in(left_ms: i64) -> anyhow::Result<(World, Machine, String)> {
    let world = World::start().await?;
    let machine = world.machine()?;
    let refresh = sign_in(&world, &machine, left_ms)?;
    Ok((world, machine, refresh))
}

/// `tether auth status` on `machine`: its exit code and stderr.
async fn auth_status(machine: &Machine) -> anyhow::Result<(Option<i32>, String)> {
    let out = machine.tether(&["auth", "status"]).await?;
    Ok((out.status.code(), text(&out).1))
}

/// Fails unless `tether auth status` exits 0.
async fn status_succeeds(machine: &Machine) -> anyhow::Result<()> {
    let (code, stderr) = auth_status(machine).await?;
    ensure!(code == Some(0), "auth status failed ({code:?}): {stderr}");
    Ok(())
}

/// Fails unless the authorization server has seen `expected` refresh requests.
async fn refreshes_were(world: &World, expected: usize, why: &str) -> anyhow::Result<()> {
    let seen = world.auth.refresh_requests().await;
    ensure!(seen == expected, "{why} ({seen} refresh requests)");
    Ok(())
}

async fn in_window() -> anyhow::Result<()> {
    let (world, machine, _) = signed_in(10 * 60_000).await?;
    status_succeeds(&machine).await?;
    refreshes_were(&world, 0, "refreshed a token with 10 minutes left").await?;
    sign_in(&world, &machine, 2 * 60_000)?;
    status_succeeds(&machine).await?;
    refreshes_were(&world, 1, "no refresh inside the window").await
}

async fn rotation_persisted() -> anyhow::Result<()> {
    let (world, machine, original) = signed_in(60_000).await?;
    status_succeeds(&machine).await?;
    let mut config = machine.read_config()?;
    let rotated = config["auth"]["refreshToken"]
        .as_str()
        .context("no refresh token")?
        .to_string();
    ensure!(
        rotated != original,
        "the rotated refresh token was not stored"
    );
    // Expire the stored access token again: the next refresh must use the rotated token,
    // which the strict server accepts only if it is the newest of its family.
    config["auth"]["expiresAt"] = json!(now_ms() + 60_000);
    machine.write_config(&config)?;
    status_succeeds(&machine)
        .await
        .context("the second refresh")?;
    refreshes_were(&world, 2, "expected two refreshes").await
}

async fn reuse_detected() -> anyhow::Result<()> {
    let (_world, machine, _) = signed_in(60_000).await?;
    let stale = machine.read_config()?;
    status_succeeds(&machine).await?;
    // Another copy of the old config (a restored backup) presents the rotated-away token.
    let mut replay = stale.clone();
    replay["auth"]["expiresAt"] = json!(now_ms() - 1000);
    machine.write_config(&replay)?;
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(
        code == Some(3),
        "reuse should be exit 3, got {code:?}: {stderr}"
    );
    ensure!(
        stderr.contains("Session expired") && stderr.trim_end().ends_with("Run: tether auth login"),
        "{stderr}"
    );
    Ok(())
}

async fn transient_5xx() -> anyhow::Result<()> {
    let (world, machine, _) = signed_in(2 * 60_000).await?;
    world.auth.inject(
        "/oauth2/token",
        Fault {
            status: Some(503),
            delay: None,
            remaining: None,
        },
    );
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(
        code == Some(0),
        "an unexpired token should keep working: {stderr}"
    );
    ensure!(
        !stderr.contains("Session expired") && stderr.contains("503"),
        "{stderr}"
    );
    sign_in(&world, &machine, -1000)?;
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(code == Some(4), "expected exit 4, got {code:?}: {stderr}");
    ensure!(
        !stderr.contains("Session expired") && stderr.contains("/oauth2/token"),
        "{stderr}"
    );
    Ok(())
}

async fn connection_dropped() -> anyhow::Result<()> {
    let (world, machine, _) = signed_in(2 * 60_000).await?;
    world.auth.drop_connections(Some("/oauth2/token"), 1);
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(
        code == Some(0),
        "an unexpired token should keep working: {stderr}"
    );
    ensure!(
        !stderr.contains("Session expired") && stderr.contains("/oauth2/token"),
        "{stderr}"
    );
    refreshes_were(&world, 0, "the dropped refresh was retried").await?;
    sign_in(&world, &machine, -1000)?;
    world.auth.drop_connections(Some("/oauth2/token"), 2);
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(code == Some(4), "expected exit 4, got {code:?}: {stderr}");
    ensure!(!stderr.contains("Session expired"), "{stderr}");
    refreshes_were(&world, 0, "the dropped refresh was retried").await
}

async fn connection_refused() -> anyhow::Result<()> {
    let world = World::start().await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let machine = Machine::new(&dead, &world.relay.url())?;
    machine.store_sign_in("a.b.c", Some("rt_x"), now_ms() - 1000)?;
    let (code, stderr) = auth_status(&machine).await?;
    ensure!(code == Some(4), "expected exit 4: {stderr}");
    ensure!(
        stderr.contains(&dead) && !stderr.contains("Session expired"),
        "{stderr}"
    );
    Ok(())
}

async fn concurrent_20() -> anyhow::Result<()> {
    let (world, machine, _) = signed_in(90_000).await?;
    world.auth.inject(
        "/oauth2/token",
        Fault {
            status: None,
            delay: Some(Duration::from_millis(300)),
            remaining: None,
        },
    );
    let runs = (0..20).map(|_| machine.tether(&["auth", "status", "--json"]));
    let outputs = futures_util::future::try_join_all(runs).await?;
    for out in &outputs {
        ensure!(out.status.success(), "{}", text(out).1);
    }
    refreshes_were(
        &world,
        1,
        "20 processes made more or fewer than one refresh request",
    )
    .await
}
