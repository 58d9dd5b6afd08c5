//! auth: how each credential is sent and turned into a relay JWT, and the PKCE login.

use std::time::Duration;

use anyhow::{ensure, Context};

use super::env::{browse, World};
use super::runs::{text, wait_output};
use super::scenario;
use super::Scenario;
use crate::clock::now_ms;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("auth.pkce_login", "PKCE S256 login end to end through the loopback redirect, tokens stored, one JSON document", "RFC 7636 §4, RFC 8252 §7.3, contract §3", pkce_login),
        scenario!("auth.wrong_state", "a callback whose state does not match is refused before any code exchange, and the login goes on to the real one", "RFC 6749 §10.12, contract §3", wrong_state),
        scenario!("auth.api_key_header", "an API key travels as x-api-key and never in Authorization, on every request of the CLI and the host", "contract §2", api_key_header),
        scenario!("auth.session_token_minted", "a session token is exchanged at /api/auth/token with Bearer, and the relay gets the minted JWT", "contract §2", session_token_minted),
        scenario!("auth.oauth_passthrough", "an OAuth access JWT reaches the relay as-is, without a mint request", "contract §2", oauth_passthrough),
        scenario!("auth.expired_jwt_not_sent", "an OAuth JWT with 60 s or less left is refreshed before the relay sees it", "contract §2", expired_jwt_not_sent),
    ]
}

async fn pkce_login() -> anyhow::Result<()> {
    let world = World::start().await?;
    let machine = world.machine()?;
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--no-browser", "--json"])
        .await?;
    let status = browse(&url, |location| location).await?;
    ensure!(status == 200, "the loopback listener answered {status}");
    let out = wait_output(child).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "login failed: {stderr}");
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).context("stdout is not exactly one JSON document")?;
    ensure!(
        doc["user"]["email"] == "alice@example.com" && doc["method"] == "oauth",
        "{doc}"
    );
    let config = machine.read_config()?;
    ensure!(
        config["auth"]["refreshToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("rt_")),
        "no refresh token stored"
    );
    ensure!(
        config["apiUrl"] == world.auth.uri().as_str(),
        "apiUrl not stored"
    );
    let exchange = world.auth.requests_to("/oauth2/token").await;
    ensure!(
        exchange.len() == 1,
        "expected one code exchange, saw {}",
        exchange.len()
    );
    Ok(())
}

async fn wrong_state() -> anyhow::Result<()> {
    let world = World::start().await?;
    let machine = world.machine()?;
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--no-browser"])
        .await?;
    let forge = |location: String| {
        let mut url = url::Url::parse(&location).expect("redirect");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                if k == "state" {
                    (k, "forged".into())
                } else {
                    (k, v)
                }
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.into()
    };
    let status = browse(&url, forge).await?;
    ensure!(status == 400, "a forged state was answered {status}");
    ensure!(
        world.auth.requests_to("/oauth2/token").await.is_empty(),
        "a code was exchanged after a state mismatch"
    );
    // The login is still waiting: the real browser completes it.
    let status = browse(&url, |location| location).await?;
    ensure!(status == 200, "the real callback was answered {status}");
    let out = wait_output(child).await?;
    ensure!(out.status.success(), "login failed: {}", text(&out).1);
    ensure!(
        world.auth.requests_to("/oauth2/token").await.len() == 1,
        "expected exactly one code exchange"
    );
    Ok(())
}

async fn api_key_header() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key.clone());
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    ensure!(out.status.success(), "auth status: {}", text(&out).1);
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let requests = world.auth.requests().await;
    let api_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path().starts_with("/api/auth/") && r.url.path() != "/api/auth/jwks")
        .collect();
    ensure!(
        api_requests.len() >= 3,
        "expected get-session and mints, saw {}",
        api_requests.len()
    );
    for request in api_requests {
        ensure!(
            request.headers.get("authorization").is_none(),
            "Authorization sent to {}",
            request.url.path()
        );
        ensure!(
            request
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                == Some(key.as_str()),
            "no x-api-key on {}",
            request.url.path()
        );
    }
    let combined = format!(
        "{}{}",
        text(&out).0,
        std::fs::read_to_string(machine.home().join("logs/host-org_a.log")).unwrap_or_default()
    );
    ensure!(
        !combined.contains(&key),
        "the API key reached output or logs"
    );
    Ok(())
}

async fn session_token_minted() -> anyhow::Result<()> {
    let world = World::start().await?;
    let session = world.auth.state().issue_session("user_alice");
    let machine = world.machine()?;
    machine.store_sign_in(&session, None, 4_102_444_800_000)?;
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let mints = world.auth.requests_to("/api/auth/token").await;
    ensure!(!mints.is_empty(), "no mint request");
    let bearer = format!("Bearer {session}");
    ensure!(
        mints.iter().all(
            |r| r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some(bearer.as_str())
        ),
        "mint without Bearer"
    );
    let accepted = world.relay.first_accepted()?;
    ensure!(
        accepted.token != session && accepted.token.split('.').count() == 3,
        "the relay did not get the minted JWT"
    );
    Ok(())
}

async fn oauth_passthrough() -> anyhow::Result<()> {
    let world = World::start().await?;
    let access = {
        let state = world.auth.state();
        state.sign("user_alice", &["org_a".to_string(), "org_b".to_string()])
    };
    let machine = world.machine()?;
    machine.store_sign_in(&access, Some("rt_unused"), now_ms() + 3_600_000)?;
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    let accepted = world.relay.first_accepted()?;
    ensure!(
        accepted.token == access,
        "the relay did not get the access token as-is"
    );
    ensure!(
        world.auth.requests_to("/api/auth/token").await.is_empty(),
        "an OAuth JWT was sent to the mint endpoint"
    );
    Ok(())
}

async fn expired_jwt_not_sent() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (access, refresh) = {
        let mut state = world.auth.state();
        state.access_ttl = Duration::from_secs(30);
        let access = state.sign("user_alice", &["org_a".to_string()]);
        state.access_ttl = Duration::from_secs(3600);
        drop(state);
        (access, world_login_refresh_token(&world))
    };
    let machine = world.machine()?;
    machine.store_sign_in(&access, Some(&refresh), now_ms() + 30_000)?;
    machine.start_host("org_a").await?;
    world
        .relay
        .wait_host("org_a", Duration::from_secs(10))
        .await?;
    ensure!(
        world.relay.connections().iter().all(|c| c.token != access),
        "the relay was sent a JWT with less than 60 s left"
    );
    ensure!(
        world.auth.refresh_requests().await == 1,
        "expected exactly one refresh"
    );
    Ok(())
}

/// A real refresh token of alice's, obtained through the server's own code flow.
pub(super) fn world_login_refresh_token(world: &World) -> String {
    use base64::Engine;
    use sha2::Digest;
    let verifier = "v".repeat(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut state = world.auth.state();
    let redirect = "http://127.0.0.1:1/callback";
    let query = [
        ("response_type", "code"),
        ("client_id", "tether-cli"),
        ("redirect_uri", redirect),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("scope", "openid profile email offline_access"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let reply = state.authorize(&query);
    let location = reply
        .headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let code = url::Url::parse(&location)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "tether-cli"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", verifier.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    state.token(&form).body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
