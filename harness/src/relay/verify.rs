//! How the relay checks a host's JWT (contract section 4): signature by `kid` against the
//! authorization server's JWKS (refetched on an unknown `kid`), `iss`, `aud`, `exp` with
//! at most 30 s leeway, an algorithm allow-list, and the org in `organizationIds`.

use std::collections::HashMap;

use crate::lock::lock;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Algorithms a host token may use: never `none`, never HS* (a public key is no secret).
pub const ALLOWED_ALGS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::EdDSA];
/// Clock leeway on `exp`.
pub const LEEWAY_S: u64 = 30;

/// The claims the relay uses.
#[derive(Debug, Clone, Deserialize)]
pub struct HostClaims {
    /// User id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Organizations the token may act in.
    #[serde(rename = "organizationIds", default)]
    pub organization_ids: Vec<String>,
}

/// Why a handshake is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: missing, malformed, badly signed or expired token.
    Unauthorized(String),
    /// 403: the token may not act in the requested org.
    Forbidden(String),
}

/// Least time between two JWKS fetches: a flood of unknown `kid`s waits, it does not
/// turn the relay into a load generator against the authorization server.
pub const REFETCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// Deadline for one JWKS fetch.
pub const FETCH_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A JWKS cache that refetches when it meets an unknown `kid`, at most once per
/// [`REFETCH_INTERVAL`].
pub struct Verifier {
    issuer: String,
    jwks_url: String,
    http: reqwest::Client,
    keys: Mutex<HashMap<String, (Algorithm, DecodingKey)>>,
    /// When the last fetch started; held while fetching, so fetches never overlap.
    last_fetch: Mutex<Option<tokio::time::Instant>>,
    /// How many times the JWKS was fetched (for tests of the refetch rule).
    pub fetches: std::sync::atomic::AtomicU32,
    /// Rules broken on purpose.
    pub broken: std::sync::Mutex<BrokenRelay>,
}

impl Verifier {
    /// A verifier for tokens issued by `issuer`, whose keys are at `{issuer}/api/auth/jwks`.
    pub fn new(issuer: &str) -> Self {
        Verifier {
            issuer: issuer.to_string(),
            jwks_url: format!("{issuer}/api/auth/jwks"),
            http: crate::tls::http_client(Some(FETCH_LIMIT)),
            keys: Mutex::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            fetches: std::sync::atomic::AtomicU32::new(0),
            broken: std::sync::Mutex::new(BrokenRelay::default()),
        }
    }

    async fn refetch(&self) -> Result<(), String> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch the JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            // A key that does not say its algorithm is not used: guessing is how HS256
            // confusion starts.
            let alg = match jwk.common.key_algorithm.map(|a| a.to_string()).as_deref() {
                Some("EdDSA") => Algorithm::EdDSA,
                Some("RS256") => Algorithm::RS256,
                _ => continue,
            };
            keys.insert(kid, (alg, key));
        }
        *self.keys.lock().await = keys;
        Ok(())
    }

    /// Verifies `token` for `org`.
    pub async fn verify(&self, token: &str, org: &str) -> Result<HostClaims, Refusal> {
        let broken = *lock(&self.broken);
        if broken.accept_alg_none {
            if let Some(claims) = unsigned_claims(token) {
                return Ok(claims);
            }
        }
        let claims = self.verify_signed(token, org).await;
        match claims {
            Err(Refusal::Forbidden(_)) if broken.ignore_org => {
                let unverified = jsonwebtoken::dangerous::insecure_decode::<HostClaims>(token)
                    .map_err(|e| Refusal::Unauthorized(e.to_string()))?;
                Ok(unverified.claims)
            }
            other => other,
        }
    }

    async fn verify_signed(&self, token: &str, org: &str) -> Result<HostClaims, Refusal> {
        let unauthorized = |why: &str| Refusal::Unauthorized(why.to_string());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        if !ALLOWED_ALGS.contains(&header.alg) {
            return Err(unauthorized("algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| unauthorized("token has no kid"))?;
        let mut found = self.keys.lock().await.get(&kid).cloned();
        if found.is_none() {
            let mut last = self.last_fetch.lock().await;
            // Another handshake may have fetched while this one waited.
            found = self.keys.lock().await.get(&kid).cloned();
            if found.is_none() {
                if let Some(at) = *last {
                    tokio::time::sleep_until(at + REFETCH_INTERVAL).await;
                }
                *last = Some(tokio::time::Instant::now());
                self.refetch().await.map_err(Refusal::Unauthorized)?;
                found = self.keys.lock().await.get(&kid).cloned();
            }
        }
        let (alg, key) = found.ok_or_else(|| unauthorized("unknown kid"))?;
        if alg != header.alg {
            return Err(unauthorized("algorithm does not match the key"));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.issuer]);
        validation.leeway = LEEWAY_S;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<HostClaims>(token, &key, &validation)
            .map_err(|e| Refusal::Unauthorized(format!("invalid token: {e}")))?;
        if !data.claims.organization_ids.iter().any(|o| o == org) {
            return Err(Refusal::Forbidden(format!(
                "organization {org} is not in the token"
            )));
        }
        Ok(data.claims)
    }
}

/// Rules of the relay the reference can break on purpose (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokenRelay {
    /// Accept an unsigned token (`alg: none`).
    pub accept_alg_none: bool,
    /// Accept a token for an organization it does not name.
    pub ignore_org: bool,
    /// Never send unacknowledged input again after a `hello` (a relay that loses keystrokes
    /// typed across a reconnect).
    pub forget_unacked_input: bool,
}

/// The claims of an `alg: none` token, for [`BrokenRelay::accept_alg_none`] only.
fn unsigned_claims(token: &str) -> Option<HostClaims> {
    use base64::Engine;
    let mut parts = token.split('.');
    let header = parts.next()?;
    let payload = parts.next()?;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = serde_json::from_slice(&engine.decode(header).ok()?).ok()?;
    if header["alg"] != "none" {
        return None;
    }
    serde_json::from_slice(&engine.decode(payload).ok()?).ok()
}
