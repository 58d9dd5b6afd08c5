//! Calls to the OAuth token and revocation endpoints (RFC 6749 §4.1.3, §6; RFC 7009),
//! and what their answers mean.

use serde::Deserialize;

use super::config_store::StoredAuth;
use super::jwt::held_claims;
use super::secret::Secret;
use super::transport::describe;
use super::CLIENT_ID;

/// A successful token response.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<Secret>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenFailure {
    /// A 4xx: the grant is no good (`invalid_grant` and friends). Only this means "sign in again".
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// A 5xx: the server is having trouble; the grant may still be good.
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// The request failed in transit; `sent` is false when it never left (connection refused).
    Network {
        /// What went wrong.
        cause: String,
        /// Whether the request may have reached the server (a spent refresh token).
        sent: bool,
    },
    /// A 2xx whose body is not a token response.
    Malformed {
        /// What was wrong with the answer.
        detail: String,
    },
}

impl std::fmt::Display for TokenFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenFailure::Rejected {
                status,
                error,
                description,
            } => {
                write!(f, "{error} ({status})")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            TokenFailure::ServerError { status } => write!(f, "server error {status}"),
            TokenFailure::Network { cause, .. } => f.write_str(cause),
            TokenFailure::Malformed { detail } => write!(f, "malformed token response: {detail}"),
        }
    }
}

impl TokenResponse {
    /// The OpenID Connect ID token, when the server sent one.
    pub fn id_token(&self) -> Option<&Secret> {
        self.id_token.as_ref()
    }

    /// The tokens to store, keeping `previous_refresh` when the server did not rotate it
    /// and `previous_scope` when it did not echo the scope.
    pub fn into_stored(
        self,
        now_ms: i64,
        previous_refresh: Option<Secret>,
        previous_scope: Option<String>,
    ) -> StoredAuth {
        // A server's numbers are clamped: no lifetime below zero or above ten years, no overflow.
        const TEN_YEARS_S: i64 = 10 * 365 * 24 * 3600;
        let expires_at = match (self.expires_in, held_claims(self.access_token.expose())) {
            (Some(secs), _) => now_ms.saturating_add(secs.clamp(0, TEN_YEARS_S) * 1000),
            (None, Some(claims)) => claims.exp.saturating_mul(1000),
            (None, None) => now_ms.saturating_add(3600 * 1000),
        };
        StoredAuth {
            access_token: self.access_token,
            refresh_token: self.refresh_token.or(previous_refresh),
            expires_at,
            scope: self.scope.or(previous_scope),
            extra: Default::default(),
        }
    }
}

/// Posts a form to the token endpoint and sorts the answer.
async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<TokenResponse, TokenFailure> {
    let response = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| TokenFailure::Network {
            cause: describe(&e),
            sent: !e.is_connect(),
        })?;
    let status = response.status();
    if status.is_server_error() {
        return Err(TokenFailure::ServerError {
            status: status.as_u16(),
        });
    }
    let body = super::transport::body(response)
        .await
        .map_err(|e| match e {
            super::transport::BodyError::Network(cause) => {
                TokenFailure::Network { cause, sent: true }
            }
            super::transport::BodyError::TooLong => TokenFailure::Malformed {
                detail: format!(
                    "the answer is longer than {} KiB",
                    super::transport::BODY_LIMIT / 1024
                ),
            },
        })?;
    if status.is_client_error() {
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        return Err(TokenFailure::Rejected {
            status: status.as_u16(),
            error: parsed
                .as_ref()
                .map(|b| b.error.clone())
                .unwrap_or_else(|| "rejected".into()),
            description: parsed.and_then(|b| b.error_description),
        });
    }
    if !status.is_success() {
        return Err(TokenFailure::Malformed {
            detail: format!("status {status}"),
        });
    }
    serde_json::from_slice(&body).map_err(|e| TokenFailure::Malformed {
        detail: e.to_string(),
    })
}

/// Exchanges an authorization code and its PKCE verifier for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    token_url: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    resource: &str,
) -> Result<TokenResponse, TokenFailure> {
    post_form(
        http,
        token_url,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT_ID),
            ("code_verifier", verifier),
            ("resource", resource),
        ],
    )
    .await
}

/// Asks once whether the device code has been approved (RFC 8628 §3.4).
pub async fn poll_device_code(
    http: &reqwest::Client,
    token_url: &str,
    device_code: &Secret,
    resource: &str,
) -> Result<TokenResponse, TokenFailure> {
    post_form(
        http,
        token_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.expose()),
            ("client_id", CLIENT_ID),
            ("resource", resource),
        ],
    )
    .await
}

/// Uses a refresh token once. Never retried after the request may have reached the
/// server: a lost answer would leave us holding a rotated-away token whose reuse
/// revokes the whole family.
pub async fn refresh(
    http: &reqwest::Client,
    token_url: &str,
    refresh_token: &Secret,
    scope: Option<&str>,
    resource: &str,
) -> Result<TokenResponse, TokenFailure> {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
        ("client_id", CLIENT_ID),
        ("resource", resource),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    post_form(http, token_url, &form).await
}

/// Revokes a refresh token (RFC 7009). Best effort: the caller reports a failure but goes on.
pub async fn revoke(
    http: &reqwest::Client,
    revoke_url: &str,
    refresh_token: &Secret,
) -> Result<(), String> {
    let response = http
        .post(revoke_url)
        .form(&[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .map_err(|e| describe(&e))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("revocation answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_response_shows_no_token_and_survives_any_expires_in() {
        let response: TokenResponse = serde_json::from_str(
            r#"{"access_token":"at_secret_value_123","refresh_token":"rt_secret_value_456","expires_in":9223372036854775807}"#,
        )
        .expect("parse");
        let debug = format!("{response:?}");
        assert!(
            !debug.contains("at_secret_value_123") && !debug.contains("rt_secret_value_456"),
            "{debug}"
        );
        let stored = response.into_stored(1_000, None, None);
        assert!(stored.expires_at > 1_000, "{}", stored.expires_at);
    }
}
