//! Minting relay JWTs (contract sections 2 and 3): what the token says, whom it is for,
//! and which requests must be refused. Only the given key is used, read-only.

use anyhow::{ensure, Context};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Value};

use super::{check, Check, SendVia, Target};
use crate::clock::now_s;

pub fn checks() -> Vec<Check> {
    vec![
        check!("server.mint_api_key", "x-api-key mints a JWT that verifies against the JWKS, with iss, aud, a future exp and a kid", "contract §3", mint_api_key),
        check!("server.mint_bound_org", "the minted JWT's organizationIds is exactly the key's bound organization", "contract §3", mint_bound_org),
        check!("server.mint_key_as_bearer", "the API key sent as Authorization: Bearer is refused with 401", "contract §2", key_as_bearer),
        check!("server.mint_foreign_jwt", "a JWT signed by a key the server never published is refused with 401", "contract §3", foreign_jwt),
        check!("server.key_metadata_immutable", "api-key/update carrying metadata is refused with 400", "contract §3", metadata_immutable),
    ]
}

/// The claims of `token` after checking its signature against the target's JWKS.
pub async fn verified_claims(target: &Target, token: &str) -> anyhow::Result<Value> {
    let header = jsonwebtoken::decode_header(token).context("the minted token is not a JWT")?;
    let kid = header.kid.clone().context("the minted JWT has no kid")?;
    let jwks: JwkSet =
        serde_json::from_value(target.jwks().await?).context("the JWKS does not parse")?;
    let jwk = jwks
        .find(&kid)
        .with_context(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).context("the JWKS key does not load")?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&target.api]);
    validation.set_audience(&[&target.api]);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| anyhow::anyhow!("the minted JWT does not verify: {e}"))?;
    Ok(data.claims)
}

async fn mint_api_key(target: &Target) -> anyhow::Result<()> {
    let token = target.minted().await?;
    verified_claims(target, &token).await.map(drop)
}

async fn mint_bound_org(target: &Target) -> anyhow::Result<()> {
    let url = format!("{}/api/auth/get-session", target.api);
    let session: Value = target
        .http
        .get(&url)
        .header("x-api-key", &target.api_key)
        .send_via(target)
        .await?
        .json()
        .await
        .context("get-session with the API key")?;
    let bound = session["session"]["activeOrganizationId"]
        .as_str()
        .context("get-session names no active organization for the key")?;
    let claims = verified_claims(target, &target.minted().await?).await?;
    ensure!(
        claims["organizationIds"] == json!([bound]),
        "organizationIds is {}, not exactly [{bound:?}]",
        claims["organizationIds"]
    );
    Ok(())
}

async fn status_of(request: reqwest::RequestBuilder) -> anyhow::Result<u16> {
    Ok(request.send().await?.status().as_u16())
}

async fn key_as_bearer(target: &Target) -> anyhow::Result<()> {
    let url = format!("{}/api/auth/token", target.api);
    let status = status_of(target.http.get(&url).bearer_auth(&target.api_key)).await?;
    ensure!(status == 401, "answered {status}, not 401");
    Ok(())
}

/// A JWT with the right claims for `target`, signed by a key it never published.
pub fn foreign_token(target: &Target, exp_in_s: i64) -> anyhow::Result<String> {
    let key = crate::keys::load(crate::keys::NEXT)?;
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some("tether-conformance-foreign".into());
    let now = now_s();
    let claims = json!({
        "iss": target.api, "aud": [target.api], "sub": "conformance", "iat": now,
        "exp": now + exp_in_s, "organizationIds": ["org_conformance"],
    });
    Ok(jsonwebtoken::encode(&header, &claims, &key.encoding)?)
}

async fn foreign_jwt(target: &Target) -> anyhow::Result<()> {
    let url = format!("{}/api/auth/token", target.api);
    let token = foreign_token(target, 600)?;
    let status = status_of(target.http.get(&url).bearer_auth(token)).await?;
    ensure!(status == 401, "answered {status}, not 401");
    Ok(())
}

async fn metadata_immutable(target: &Target) -> anyhow::Result<()> {
    let url = format!("{}/api/auth/api-key/update", target.api);
    // A key id that does not exist: a server that wrongly accepts metadata changes nothing.
    let body = json!({"keyId": "key_conformance_does_not_exist", "metadata": {"organizationId": "org_conformance"}});
    let status = status_of(
        target
            .http
            .post(&url)
            .header("x-api-key", &target.api_key)
            .json(&body),
    )
    .await?;
    ensure!(status == 400, "answered {status}, not 400");
    Ok(())
}
