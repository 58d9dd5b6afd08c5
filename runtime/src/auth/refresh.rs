//! Keeping the stored OAuth access token usable: proactive refresh before expiry,
//! one refresh across processes (lock, then re-read), rotated refresh tokens
//! persisted, and only a 4xx from the token endpoint treated as "session expired".

use super::config_store::{Config, ConfigStore, StoredAuth};
use super::discovery::discover;
use super::error::AuthError;
use super::printable;
use super::secret::Secret;
use super::token_endpoint::{self, TokenFailure};
use crate::metrics::Refresh;

/// The CLI refreshes when the access token has less than this left (contract section 7).
pub const CLI_REFRESH_WINDOW_MS: i64 = 5 * 60 * 1000;
/// An OAuth JWT is passed to the relay only while it has more than this left (section 2).
pub const RELAY_PASS_THROUGH_MARGIN_MS: i64 = 60 * 1000;

/// What the refresh step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// The token had enough time left; nothing was sent.
    Fresh,
    /// This process refreshed it.
    Refreshed,
    /// Another process refreshed it while we waited for the lock.
    RefreshedElsewhere,
    /// The refresh failed for a transient reason, but the token has not expired yet.
    StillValid {
        /// Why the refresh failed.
        warning: String,
    },
}

/// The usable tokens and how they were obtained.
#[derive(Debug, Clone)]
pub struct FreshAuth {
    /// The stored tokens, possibly just refreshed.
    pub auth: StoredAuth,
    /// What the refresh step did.
    pub freshness: Freshness,
}

/// The stored OAuth sign-in of one state directory against one API.
#[derive(Debug, Clone)]
pub struct OAuthAccount {
    /// Where `config.json` lives.
    pub store: ConfigStore,
    /// The API the tokens must belong to.
    pub api_url: String,
    /// HTTP client for the token endpoint.
    pub http: reqwest::Client,
}

impl OAuthAccount {
    /// Reads the stored tokens, checking they belong to this API.
    pub fn stored(&self) -> Result<(Config, StoredAuth), AuthError> {
        let config = self.store.load()?;
        let auth = config.auth.clone().ok_or(AuthError::NotSignedIn)?;
        if let Some(stored) = config.api_url.as_deref() {
            if stored.trim_end_matches('/') != self.api_url {
                return Err(AuthError::OtherServer {
                    stored: stored.to_string(),
                    current: self.api_url.clone(),
                });
            }
        }
        Ok((config, auth))
    }

    /// Returns tokens with more than `window_ms` left, refreshing under the cross-process lock if needed.
    pub async fn ensure_fresh(&self, window_ms: i64, now_ms: i64) -> Result<FreshAuth, AuthError> {
        self.ensure_fresh_rejecting(window_ms, now_ms, None).await
    }

    /// Like [`Self::ensure_fresh`], but an access token equal to `rejected` (one the relay
    /// just called expired) is refreshed whatever its `exp` says.
    pub async fn ensure_fresh_rejecting(
        &self,
        window_ms: i64,
        now_ms: i64,
        rejected: Option<&Secret>,
    ) -> Result<FreshAuth, AuthError> {
        let usable = |auth: &StoredAuth| {
            auth.expires_at - now_ms > window_ms && Some(&auth.access_token) != rejected
        };
        let (_, auth) = self.stored()?;
        if usable(&auth) {
            return Ok(FreshAuth {
                auth,
                freshness: Freshness::Fresh,
            });
        }
        let _lock = self.store.lock_async().await?;
        // Another process may have refreshed while we waited: re-read before spending the refresh token.
        let (config, current) = self.stored()?;
        if usable(&current) {
            let freshness = if current == auth {
                Freshness::Fresh
            } else {
                crate::metrics::global().refreshed(Refresh::RefreshedElsewhere);
                Freshness::RefreshedElsewhere
            };
            return Ok(FreshAuth {
                auth: current,
                freshness,
            });
        }
        self.refresh(config, current, now_ms).await
    }

    /// Spends the refresh token (the lock is held and the stored token is not usable).
    async fn refresh(
        &self,
        mut config: Config,
        current: StoredAuth,
        now_ms: i64,
    ) -> Result<FreshAuth, AuthError> {
        let Some(refresh_token) = current.refresh_token.clone() else {
            return still_valid_or(current, now_ms, || AuthError::SessionExpired {
                reason: "the access token expired and there is no refresh token".into(),
            });
        };
        let endpoints = match discover(&self.http, &self.api_url).await {
            Ok(endpoints) => endpoints,
            Err(err @ AuthError::Unreachable { .. }) => {
                return still_valid_or(current, now_ms, || err)
            }
            Err(err) => return Err(err),
        };
        // The refresh token is spent by the request below and its successor exists only in
        // the answer: prove config.json can be written before spending it, or a failed save
        // would leave an already-rotated token on disk (reuse → the family is revoked).
        self.store.save(&config)?;
        let outcome = token_endpoint::refresh(
            &self.http,
            &endpoints.token,
            &refresh_token,
            current.scope.as_deref(),
            &self.api_url,
        )
        .await;
        match outcome {
            Ok(response) => {
                let mut fresh =
                    response.into_stored(now_ms, Some(refresh_token), current.scope.clone());
                fresh.extra = current.extra.clone();
                config.auth = Some(fresh.clone());
                config.api_url = Some(self.api_url.clone());
                self.store.save(&config)?;
                crate::metrics::global().refreshed(Refresh::Refreshed);
                tracing::debug!("access token refreshed");
                Ok(FreshAuth {
                    auth: fresh,
                    freshness: Freshness::Refreshed,
                })
            }
            Err(TokenFailure::Rejected {
                status,
                error,
                description,
            }) => {
                // The stored tokens are left in place: deleting them could throw away a
                // token another process is about to need, and login overwrites them anyway.
                crate::metrics::global().refreshed(Refresh::Rejected);
                Err(refused(status, &error, description.as_deref()))
            }
            Err(failure) => {
                crate::metrics::global().refreshed(Refresh::Transient);
                let url = endpoints.token.clone();
                still_valid_or(current, now_ms, || AuthError::Unreachable {
                    url,
                    cause: failure.to_string(),
                })
            }
        }
    }
}

/// A refresh the authorization server refused: the session is over.
fn refused(status: u16, error: &str, description: Option<&str>) -> AuthError {
    let error = printable(error);
    let reason = match description.map(printable) {
        Some(d) => format!("the authorization server answered {status} {error}: {d}"),
        None => format!("the authorization server answered {status} {error}"),
    };
    AuthError::SessionExpired { reason }
}

/// After a transient failure: the current token if it has not expired yet, else the error.
fn still_valid_or(
    auth: StoredAuth,
    now_ms: i64,
    error: impl FnOnce() -> AuthError,
) -> Result<FreshAuth, AuthError> {
    if auth.expires_at > now_ms {
        let warning = error().to_string();
        tracing::warn!(
            "could not refresh the access token, using the current one until it expires: {warning}"
        );
        Ok(FreshAuth {
            auth,
            freshness: Freshness::StillValid { warning },
        })
    } else {
        Err(error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unwritable_config_is_found_before_the_refresh_token_is_spent() {
        let server = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/oauth2/token"))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"access_token": "at_new", "refresh_token": "rt_new", "expires_in": 3600}),
            ))
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = ConfigStore::new(dir.path().join("tether"));
        let config: Config = serde_json::from_value(serde_json::json!({
            "auth": {"accessToken": "at_old", "refreshToken": "rt_old", "expiresAt": 0},
            "apiUrl": server.uri(),
        }))
        .expect("config");
        store.save(&config).expect("save");
        // A directory where this process's temp file would go: every save now fails.
        std::fs::create_dir(
            dir.path()
                .join(format!("tether/.config.json.tmp-{}", std::process::id())),
        )
        .expect("block");
        let account = OAuthAccount {
            store: store.clone(),
            api_url: server.uri(),
            http: reqwest::Client::new(),
        };
        let result = account.ensure_fresh(CLI_REFRESH_WINDOW_MS, 1_000).await;
        assert!(result.is_err(), "{result:?}");
        let spent = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/oauth2/token")
            .count();
        assert_eq!(
            spent, 0,
            "the refresh token was spent although it could not be saved"
        );
        let kept = store.load().expect("load");
        assert_eq!(
            kept.auth.expect("auth").refresh_token,
            Some(Secret::new("rt_old"))
        );
    }
}
