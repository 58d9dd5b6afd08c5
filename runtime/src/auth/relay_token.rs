//! Turning the current credential into a JWT the relay accepts (contract section 2):
//! OAuth JWTs pass through while they have more than 60 s left, API keys and session
//! tokens are minted at `/api/auth/token`, cached until `exp - 60 s`, one mint in
//! flight per process, retried on network errors and 5xx only.

use serde::Deserialize;
use tokio::sync::Mutex;

use super::credential::Credential;
use super::error::AuthError;
use super::jwt::held_claims;
use super::now_ms;
use super::refresh::{OAuthAccount, RELAY_PASS_THROUGH_MARGIN_MS};
use super::retry::{Attempt, RetryPolicy};
use super::secret::Secret;
use super::transport::send;

/// Where the credential comes from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Given for this process (`--api-key`, `TETHER_API_KEY`).
    Given(Credential),
    /// The OAuth sign-in stored in `config.json`, refreshed as needed.
    Stored(OAuthAccount),
}

#[derive(Debug)]
struct Minted {
    token: Secret,
    exp_ms: i64,
    minted_for: Secret,
}

/// Hands out relay JWTs for one credential source.
#[derive(Debug)]
pub struct RelayTokenProvider {
    http: reqwest::Client,
    api_url: String,
    source: CredentialSource,
    retry: RetryPolicy,
    minted: Mutex<Option<Minted>>,
    rejected: Mutex<Option<Secret>>,
}

#[derive(Deserialize)]
struct MintAnswer {
    token: String,
}

impl RelayTokenProvider {
    /// A provider for `source` against the API at `api_url`.
    pub fn new(
        http: reqwest::Client,
        api_url: impl Into<String>,
        source: CredentialSource,
        retry: RetryPolicy,
    ) -> Self {
        RelayTokenProvider {
            http,
            api_url: api_url.into(),
            source,
            retry,
            minted: Mutex::new(None),
            rejected: Mutex::new(None),
        }
    }

    /// A JWT for the relay with more than 60 s left.
    pub async fn relay_jwt(&self) -> Result<Secret, AuthError> {
        let credential = match &self.source {
            CredentialSource::Given(credential) => credential.clone(),
            CredentialSource::Stored(account) => {
                let rejected = self.rejected.lock().await.clone();
                let fresh = account
                    .ensure_fresh_rejecting(
                        RELAY_PASS_THROUGH_MARGIN_MS,
                        now_ms(),
                        rejected.as_ref(),
                    )
                    .await?;
                match Credential::classify(fresh.auth.access_token) {
                    Credential::OAuthJwt(jwt) => return pass_through(jwt, &account.api_url),
                    other => other,
                }
            }
        };
        self.mint(&credential).await
    }

    /// The relay called `token` expired: never hand it out again; mint or refresh instead.
    pub async fn reject(&self, token: &Secret) {
        let mut minted = self.minted.lock().await;
        if minted.as_ref().is_some_and(|m| &m.token == token) {
            *minted = None;
        }
        *self.rejected.lock().await = Some(token.clone());
    }

    async fn mint(&self, credential: &Credential) -> Result<Secret, AuthError> {
        // Holding the lock across the request makes concurrent callers wait for this
        // mint and then find its result in the cache: one request in flight.
        let mut slot = self.minted.lock().await;
        if let Some(m) = slot.as_ref() {
            if &m.minted_for == credential.secret()
                && m.exp_ms - RELAY_PASS_THROUGH_MARGIN_MS > now_ms()
            {
                return Ok(m.token.clone());
            }
        }
        let url = format!("{}/api/auth/token", self.api_url);
        let token = self
            .retry
            .run(|| mint_once(&self.http, &url, credential))
            .await?;
        let exp_ms = held_claims(token.expose())
            .map(|c| c.exp_ms())
            .ok_or_else(|| AuthError::Protocol {
                url: url.clone(),
                detail: "the minted token is not a JWT with `exp`".into(),
            })?;
        *slot = Some(Minted {
            token: token.clone(),
            exp_ms,
            minted_for: credential.secret().clone(),
        });
        Ok(token)
    }
}

fn pass_through(jwt: Secret, api_url: &str) -> Result<Secret, AuthError> {
    let exp_ms = held_claims(jwt.expose()).map(|c| c.exp_ms()).unwrap_or(0);
    if exp_ms - RELAY_PASS_THROUGH_MARGIN_MS > now_ms() {
        Ok(jwt)
    } else {
        Err(AuthError::Unreachable {
            url: api_url.to_string(),
            cause: "the access token is about to expire and could not be refreshed".into(),
        })
    }
}

async fn mint_once(
    http: &reqwest::Client,
    url: &str,
    credential: &Credential,
) -> Result<Secret, Attempt<AuthError>> {
    // Transport failures and 5xx are worth retrying; a refused certificate and any other
    // answer are final.
    let response = send(credential.apply(http.get(url)), url)
        .await
        .map_err(|e| match e {
            AuthError::Tls { .. } => Attempt::Fatal(e),
            e => Attempt::Retry(e),
        })?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Attempt::Fatal(AuthError::Refused {
            url: url.to_string(),
            status: 404,
            detail: "this server does not offer tether's own endpoints, so it cannot mint the relay token a host service needs".into(),
        }));
    }
    if status == reqwest::StatusCode::FORBIDDEN {
        let detail = match credential {
            Credential::ApiKey(key) => format!(
                "API key {} may not act in its organization: its owner is no longer a member of the organization it is bound to",
                key.redacted()
            ),
            _ => "the credential may not act in this organization".to_string(),
        };
        return Err(Attempt::Fatal(AuthError::Refused {
            url: url.to_string(),
            status: 403,
            detail,
        }));
    }
    if !status.is_success() {
        return Err(Attempt::Fatal(AuthError::Refused {
            url: url.to_string(),
            status: status.as_u16(),
            detail: format!(
                "{} {} was not accepted",
                credential.method(),
                credential.secret().redacted()
            ),
        }));
    }
    let answer: MintAnswer = super::transport::json(response, url, "answer")
        .await
        .map_err(|e| match e {
            AuthError::Unreachable { .. } => Attempt::Retry(e),
            e => Attempt::Fatal(e),
        })?;
    Ok(Secret::new(answer.token))
}
