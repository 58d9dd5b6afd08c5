//! With a session token: `get-session`'s shape and minting from the session; with the
//! reference's test login: refresh-token rotation and reuse detection.

use anyhow::{ensure, Context};
use serde_json::Value;

use super::mint::verified_claims;
use super::{check, Check, SendVia, Target};

pub fn checks() -> Vec<Check> {
    vec![
        check!("server.session_shape", "get-session with a session token answers user.id and an organizationIds array", "contract §3", session_shape),
        check!("server.session_mint", "a session token (Bearer) mints a verifiable JWT naming the session's organizations", "contract §2, §3", session_mint),
        check!("server.refresh_reuse", "a refresh token rotates on use, and reusing the old one is refused and revokes the new one", "RFC 9700 §4.14.2, contract §3", refresh_reuse),
    ]
}

async fn get_session(target: &Target, session: &str) -> anyhow::Result<Value> {
    let url = format!("{}/api/auth/get-session", target.api);
    let response = target.http.get(&url).bearer_auth(session).send().await?;
    ensure!(
        response.status() == 200,
        "get-session answered {}",
        response.status()
    );
    response.json().await.context("get-session is not JSON")
}

async fn session_shape(target: &Target) -> anyhow::Result<()> {
    let doc = get_session(target, target.session()?).await?;
    ensure!(
        doc["user"]["id"].as_str().is_some_and(|s| !s.is_empty()),
        "no user.id: {doc}"
    );
    ensure!(
        doc["organizationIds"].is_array(),
        "no organizationIds array: {doc}"
    );
    Ok(())
}

async fn session_mint(target: &Target) -> anyhow::Result<()> {
    let session = target.session()?;
    let orgs = get_session(target, session).await?["organizationIds"].clone();
    let url = format!("{}/api/auth/token", target.api);
    let response = target.http.get(&url).bearer_auth(session).send().await?;
    ensure!(
        response.status() == 200,
        "minting from the session answered {}",
        response.status()
    );
    let body: Value = response.json().await?;
    let token = body["token"].as_str().context("no token")?;
    let claims = verified_claims(target, token).await?;
    ensure!(
        claims["organizationIds"] == orgs,
        "organizationIds {} is not the session's {orgs}",
        claims["organizationIds"]
    );
    Ok(())
}

async fn refresh(target: &Target, refresh_token: &str) -> anyhow::Result<(u16, Value)> {
    let url = target.endpoint("token_endpoint", "/oauth2/token").await?;
    let response = target
        .http
        .post(&url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", "tether-cli"),
        ])
        .send_via(target)
        .await?;
    Ok((
        response.status().as_u16(),
        response.json().await.unwrap_or_default(),
    ))
}

async fn refresh_reuse(target: &Target) -> anyhow::Result<()> {
    let world = target.reference_world("a refresh token needs a test login")?;
    let first = world.auth.state().issue_refresh_token("user_alice");
    let (status, rotated) = refresh(target, &first).await?;
    ensure!(status == 200, "the first refresh answered {status}");
    let second = rotated["refresh_token"]
        .as_str()
        .context("no rotated refresh token")?
        .to_string();
    ensure!(second != first, "the refresh token did not rotate");
    let (status, body) = refresh(target, &first).await?;
    ensure!(
        status == 400 && body["error"] == "invalid_grant",
        "reusing the old token answered {status} {body}"
    );
    let (status, body) = refresh(target, &second).await?;
    ensure!(
        status == 400 && body["error"] == "invalid_grant",
        "after reuse the family is still alive: {status} {body}"
    );
    Ok(())
}
