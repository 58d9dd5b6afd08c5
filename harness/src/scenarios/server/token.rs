//! The token and revocation endpoints' answers to requests that must fail (RFC 6749 §5.2,
//! RFC 7009): nothing here can succeed, so nothing is changed on the server.

use anyhow::{ensure, Context};

use super::{check, Check, SendVia, Target};

pub fn checks() -> Vec<Check> {
    vec![
        check!(
            "server.token_bogus_code",
            "an unknown authorization code gets 400 invalid_grant",
            "RFC 6749 §5.2",
            bogus_code
        ),
        check!(
            "server.token_bogus_refresh",
            "an unknown refresh token gets 400 invalid_grant",
            "RFC 6749 §5.2",
            bogus_refresh
        ),
        check!(
            "server.token_unknown_grant",
            "an unknown grant_type gets 400 unsupported_grant_type",
            "RFC 6749 §5.2",
            unknown_grant
        ),
        check!(
            "server.token_headers",
            "token endpoint answers are application/json with Cache-Control: no-store",
            "RFC 6749 §5.1–5.2",
            headers
        ),
        check!(
            "server.revoke_unknown",
            "revoking an unknown token answers 200",
            "RFC 7009 §2.2",
            revoke_unknown
        ),
    ]
}

const CLIENT_ID: &str = "tether-cli";

async fn post(target: &Target, form: &[(&str, &str)]) -> anyhow::Result<reqwest::Response> {
    let url = target.endpoint("token_endpoint", "/oauth2/token").await?;
    target
        .http
        .post(&url)
        .form(form)
        .send_via(target)
        .await
        .with_context(|| format!("POST {url}"))
}

async fn error_of(response: reqwest::Response) -> anyhow::Result<(u16, String)> {
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the error answer is not JSON")?;
    Ok((
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    ))
}

async fn expect_error(target: &Target, form: &[(&str, &str)], want: &str) -> anyhow::Result<()> {
    let (status, error) = error_of(post(target, form).await?).await?;
    ensure!(
        status == 400 && error == want,
        "answered {status} {error:?}, not 400 {want:?}"
    );
    Ok(())
}

async fn bogus_code(target: &Target) -> anyhow::Result<()> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "code_that_was_never_issued"),
        ("redirect_uri", "http://127.0.0.1:1/callback"),
        ("client_id", CLIENT_ID),
        (
            "code_verifier",
            "verifier-that-is-long-enough-to-be-valid-0123456789",
        ),
    ];
    expect_error(target, &form, "invalid_grant").await
}

async fn bogus_refresh(target: &Target) -> anyhow::Result<()> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "rt_that_was_never_issued"),
        ("client_id", CLIENT_ID),
    ];
    expect_error(target, &form, "invalid_grant").await
}

async fn unknown_grant(target: &Target) -> anyhow::Result<()> {
    let form = [
        ("grant_type", "urn:tether:no-such-grant"),
        ("client_id", CLIENT_ID),
    ];
    expect_error(target, &form, "unsupported_grant_type").await
}

async fn headers(target: &Target) -> anyhow::Result<()> {
    let response = post(
        target,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt_unknown"),
            ("client_id", CLIENT_ID),
        ],
    )
    .await?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    ensure!(
        header("content-type").starts_with("application/json"),
        "Content-Type is {:?}",
        header("content-type")
    );
    ensure!(
        header("cache-control").contains("no-store"),
        "Cache-Control is {:?}",
        header("cache-control")
    );
    Ok(())
}

async fn revoke_unknown(target: &Target) -> anyhow::Result<()> {
    let url = target
        .endpoint("revocation_endpoint", "/oauth2/revoke")
        .await?;
    let response = target
        .http
        .post(&url)
        .form(&[
            ("token", "rt_that_was_never_issued"),
            ("token_type_hint", "refresh_token"),
            ("client_id", CLIENT_ID),
        ])
        .send_via(target)
        .await
        .with_context(|| format!("POST {url}"))?;
    ensure!(response.status() == 200, "answered {}", response.status());
    Ok(())
}
