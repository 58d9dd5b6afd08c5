//! Discovery: the metadata document (RFC 8414 / OpenID Connect Discovery) and the JWKS.

use anyhow::ensure;
use serde_json::Value;

use super::{check, Check, Target};
use crate::scenarios::NotApplicable;

pub fn checks() -> Vec<Check> {
    vec![
        check!(
            "server.metadata_issuer",
            "the metadata's issuer is exactly the API URL",
            "RFC 8414 §3.3, contract §3",
            metadata_issuer
        ),
        check!(
            "server.metadata_endpoints",
            "every endpoint in the metadata is an absolute https URL (http only on loopback)",
            "RFC 8414 §2",
            metadata_endpoints
        ),
        check!(
            "server.metadata_pkce",
            "code_challenge_methods_supported has S256 and not plain",
            "RFC 7636 §4.2, RFC 9700 §2.1.1, contract §3",
            metadata_pkce
        ),
        check!(
            "server.jwks_public_keys",
            "every JWKS key has a kid, an allowed alg and no private member",
            "RFC 7517 §4–6, contract §3",
            jwks_public_keys
        ),
    ]
}

async fn served(target: &Target) -> anyhow::Result<Value> {
    target.metadata().await?.ok_or_else(|| {
        NotApplicable("the server publishes no RFC 8414 or OpenID Connect metadata".into()).into()
    })
}

async fn metadata_issuer(target: &Target) -> anyhow::Result<()> {
    let meta = served(target).await?;
    ensure!(
        meta["issuer"] == target.api.as_str(),
        "issuer {} is not exactly {}",
        meta["issuer"],
        target.api
    );
    Ok(())
}

/// Absolute `https://`, or `http://` to a loopback host.
pub fn acceptable_endpoint(url: &str) -> bool {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => u.host().is_some(),
        Ok(u) if u.scheme() == "http" => {
            matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        }
        _ => false,
    }
}

async fn metadata_endpoints(target: &Target) -> anyhow::Result<()> {
    let meta = served(target).await?;
    let object = meta
        .as_object()
        .ok_or_else(|| anyhow::anyhow!("metadata is not an object"))?;
    let endpoints: Vec<(&String, &Value)> = object
        .iter()
        .filter(|(k, _)| k.ends_with("_endpoint") || k.as_str() == "jwks_uri")
        .collect();
    ensure!(!endpoints.is_empty(), "the metadata names no endpoint");
    for (name, value) in endpoints {
        let url = value.as_str().unwrap_or_default();
        ensure!(
            acceptable_endpoint(url),
            "{name} = {value} is not an absolute https URL"
        );
    }
    Ok(())
}

async fn metadata_pkce(target: &Target) -> anyhow::Result<()> {
    let meta = served(target).await?;
    let methods: Vec<&str> = meta["code_challenge_methods_supported"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ensure!(
        methods.contains(&"S256"),
        "code_challenge_methods_supported {methods:?} lacks S256"
    );
    ensure!(
        !methods.contains(&"plain"),
        "code_challenge_methods_supported offers plain"
    );
    Ok(())
}

/// Algorithms a relay JWT may use (contract section 3: RS256 or EdDSA; ES256 is allowed
/// for a deployment's own choice).
const ALLOWED_ALGS: &[&str] = &["RS256", "EdDSA", "ES256"];
/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

async fn jwks_public_keys(target: &Target) -> anyhow::Result<()> {
    let jwks = target.jwks().await?;
    let keys = jwks["keys"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("JWKS has no keys array"))?;
    ensure!(!keys.is_empty(), "the JWKS is empty");
    for key in keys {
        let kid = key["kid"].as_str().unwrap_or_default();
        ensure!(!kid.is_empty(), "a key has no kid: {key}");
        let alg = key["alg"].as_str().unwrap_or_default();
        ensure!(
            ALLOWED_ALGS.contains(&alg),
            "key {kid} has alg {alg:?}, not one of {ALLOWED_ALGS:?}"
        );
        for member in PRIVATE_MEMBERS {
            ensure!(
                key.get(member).is_none(),
                "key {kid} publishes the private member {member:?}"
            );
        }
    }
    Ok(())
}
