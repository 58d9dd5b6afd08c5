//! standard and mixup: tether against a standard OAuth 2.0 / OpenID Connect server (no
//! `get-session`, no minting, opaque access tokens, UserInfo, ID tokens, `iss` in
//! authorization responses), found by RFC 8414 or by OIDC discovery; and the RFC 9207
//! mix-up defence.

use anyhow::{ensure, Context};
use serde_json::Value;

use super::env::{browse, Machine, World};
use super::runs::{ensure_failed, text, wait_output};
use super::scenario;
use super::Scenario;
use crate::authserver::{Fault, IssAnswer, Profile};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("standard.login_rfc8414", "a standard server found by RFC 8414: login stores the tokens; the user comes from UserInfo", "contract §3, RFC 8414, OIDC Core §5.3", login_rfc8414),
        scenario!("standard.login_oidc", "a standard server found by OpenID Connect discovery only: login works; with UserInfo failing, the user comes from the ID token", "contract §3, OIDC Discovery", login_oidc),
        scenario!("standard.refresh", "against a standard server, status refreshes a token near expiry and stores the rotated refresh token", "contract §3, §7", refresh),
        scenario!("standard.user_unknown", "no UserInfo and no ID token: login and status succeed, status --json says \"user\": null", "contract §3", user_unknown),
        scenario!("standard.logout", "logout revokes the refresh token at the advertised endpoint and forgets the tokens", "contract §3, RFC 7009", logout),
        scenario!("standard.no_tether_endpoints", "an API key against a standard server: one line saying the server does not offer tether's endpoints", "contract §3", no_tether_endpoints),
        scenario!("mixup.wrong_iss", "an authorization response whose iss names another server ends the login before the code is redeemed", "RFC 9207 §2.4, contract §3", wrong_iss),
        scenario!("mixup.missing_iss", "an authorization response without the promised iss ends the login before the code is redeemed", "RFC 9207 §2.4, contract §3", missing_iss),
        scenario!("mixup.access_denied", "error=access_denied ends the login with that error, no code redeemed, nothing stored", "RFC 6749 §4.1.2.1, contract §3", access_denied),
    ]
}

async fn standard_world(oidc_only: bool) -> anyhow::Result<World> {
    let world = World::start().await?;
    {
        let mut state = world.auth.state();
        state.profile = Profile::Standard;
        if oidc_only {
            state.metadata_enabled = false;
            state.openid_configuration_enabled = true;
        }
    }
    Ok(world)
}

/// `tether auth login --no-browser --json`, the browser approving; returns the JSON printed.
async fn login(machine: &Machine) -> anyhow::Result<Value> {
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--no-browser", "--json"])
        .await?;
    browse(&url, |location| location).await?;
    let out = wait_output(child).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "login failed: {stderr}");
    serde_json::from_str(&stdout).context("login --json printed more than one JSON document")
}

async fn status_json(machine: &Machine) -> anyhow::Result<Value> {
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "auth status failed: {stderr}");
    serde_json::from_str(&stdout).context("auth status --json")
}

async fn login_rfc8414() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    let machine = world.machine()?;
    let doc = login(&machine).await?;
    ensure!(doc["user"]["email"] == "alice@example.com", "{doc}");
    let config = machine.read_config()?;
    ensure!(
        config["auth"]["accessToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("at_"))
            && config["auth"]["refreshToken"]
                .as_str()
                .is_some_and(|t| t.starts_with("rt_")),
        "tokens not stored: {config}"
    );
    ensure!(
        !world.auth.requests_to("/oauth2/userinfo").await.is_empty(),
        "UserInfo was not asked"
    );
    let status = status_json(&machine).await?;
    ensure!(status["user"]["email"] == "alice@example.com", "{status}");
    Ok(())
}

async fn login_oidc() -> anyhow::Result<()> {
    let world = standard_world(true).await?;
    world.auth.inject(
        "/oauth2/userinfo",
        Fault {
            status: Some(500),
            delay: None,
            remaining: None,
        },
    );
    let machine = world.machine()?;
    let doc = login(&machine).await?;
    ensure!(
        doc["user"]["id"] == "user_alice" && doc["user"]["email"] == "alice@example.com",
        "the ID token's user is not shown: {doc}"
    );
    ensure!(
        !world
            .auth
            .requests_to("/.well-known/openid-configuration")
            .await
            .is_empty(),
        "OIDC discovery was not used"
    );
    let status = status_json(&machine).await?;
    ensure!(
        status["user"]["email"] == "alice@example.com",
        "status lost the user: {status}"
    );
    Ok(())
}

async fn refresh() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    world.auth.state().access_ttl = std::time::Duration::from_secs(60);
    let machine = world.machine()?;
    login(&machine).await?;
    let before = machine.read_config()?["auth"]["refreshToken"].clone();
    status_json(&machine).await?;
    ensure!(
        world.auth.refresh_requests().await == 1,
        "expected one refresh"
    );
    let after = machine.read_config()?["auth"]["refreshToken"].clone();
    ensure!(
        after != before && after.is_string(),
        "the rotated refresh token was not stored"
    );
    Ok(())
}

async fn user_unknown() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    world.auth.state().id_tokens = false;
    world.auth.inject(
        "/oauth2/userinfo",
        Fault {
            status: Some(404),
            delay: None,
            remaining: None,
        },
    );
    let machine = world.machine()?;
    let doc = login(&machine).await?;
    ensure!(doc["user"].is_null(), "{doc}");
    let status = status_json(&machine).await?;
    ensure!(
        status["user"].is_null() && status["expiresAt"].is_i64(),
        "{status}"
    );
    let out = machine.tether(&["auth", "status"]).await?;
    ensure!(
        out.status.success(),
        "plain status failed: {}",
        text(&out).1
    );
    Ok(())
}

async fn logout() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    let machine = world.machine()?;
    login(&machine).await?;
    let out = machine.tether(&["auth", "logout"]).await?;
    ensure!(out.status.success(), "logout failed: {}", text(&out).1);
    ensure!(
        world.auth.requests_to("/oauth2/revoke").await.len() == 1,
        "no revocation"
    );
    ensure!(machine.read_config()?["auth"].is_null(), "tokens kept");
    let out = machine.tether(&["auth", "status"]).await?;
    ensure!(
        out.status.code() == Some(3),
        "status after logout: exit {:?}",
        out.status.code()
    );
    Ok(())
}

async fn no_tether_endpoints() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    let mut machine = world.machine()?;
    machine.api_key = Some("sk_live_standard_server".into());
    let out = machine.tether(&["auth", "status"]).await?;
    let err = ensure_failed(&out, 1, &["does not offer tether's own endpoints"])?;
    ensure!(err.trim().lines().count() == 1, "more than one line: {err}");
    Ok(())
}

/// A login whose authorization response is wrong in some way: exit 1 with `expect` in
/// stderr, the code never redeemed, nothing stored.
async fn refused_login(world: &World, expect: &str) -> anyhow::Result<()> {
    let machine = world.machine()?;
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--no-browser"])
        .await?;
    browse(&url, |location| location).await?;
    let out = wait_output(child).await?;
    ensure_failed(&out, 1, &[expect])?;
    ensure!(
        world.auth.requests_to("/oauth2/token").await.is_empty(),
        "the code was redeemed"
    );
    ensure!(!machine.has_stored_sign_in(), "tokens were stored");
    Ok(())
}

async fn wrong_iss() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    world.auth.state().iss_answer = IssAnswer::Wrong;
    refused_login(&world, "https://attacker.example").await
}

async fn missing_iss() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    world.auth.state().iss_answer = IssAnswer::Missing;
    refused_login(&world, "no iss").await
}

async fn access_denied() -> anyhow::Result<()> {
    let world = standard_world(false).await?;
    world.auth.state().deny_next_authorization = true;
    refused_login(&world, "access_denied").await
}
