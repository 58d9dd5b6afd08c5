//! Who the current credential is: the report `auth status`, `auth login`, `doctor` and
//! `host start` (to pick the organization) all read.

use serde::Serialize;

use crate::auth::config_store::ConfigStore;
use crate::auth::credential::Credential;
use crate::auth::identity::identify;
use crate::auth::jwt::held_claims;
use crate::auth::refresh::{OAuthAccount, CLI_REFRESH_WINDOW_MS};
use crate::auth::relay_token::{CredentialSource, RelayTokenProvider};
use crate::auth::retry::RetryPolicy;
use crate::auth::session::SessionUser;
use crate::auth::{now_ms, AuthError};
use crate::net::http_client;
use crate::settings::Settings;

/// What `auth status --json` (and `auth login --json`) prints: no secrets, ever.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// `oauth`, `api_key` or `session`.
    pub method: &'static str,
    /// Who, when the server says (`null` when it does not).
    pub user: Option<SessionUser>,
    /// The organization commands act in; for an API key, its bound org.
    pub organization_id: Option<crate::OrgId>,
    /// Every organization the credential may act in.
    pub organization_ids: Vec<crate::OrgId>,
    /// When the stored access token expires (unix ms); `null` for API keys.
    pub expires_at: Option<i64>,
}

fn account(settings: &Settings) -> OAuthAccount {
    OAuthAccount {
        store: ConfigStore::new(&settings.home),
        api_url: settings.api_url.clone(),
        http: http_client(),
    }
}

/// Works out who the current credential is, refreshing stored tokens if they are close to expiry.
pub async fn current_status(settings: &Settings) -> Result<StatusReport, AuthError> {
    let http = http_client();
    if let Some(key) = &settings.api_key {
        let credential = Credential::classify(key.clone());
        let identity = identify(&http, &settings.api_url, &credential, None, None).await?;
        // The bound organization is what a minted token may act in; a 403 here means the
        // key's owner has left that organization.
        let provider = RelayTokenProvider::new(
            http.clone(),
            settings.api_url.clone(),
            CredentialSource::Given(credential.clone()),
            RetryPolicy::default(),
        );
        let minted = provider.relay_jwt().await?;
        let minted_orgs = match held_claims(minted.expose()) {
            Some(claims) => claims.orgs().map_err(|e| AuthError::Protocol {
                url: format!("{}/api/auth/token", settings.api_url),
                detail: format!("the minted token's organizationIds: {e}"),
            })?,
            None => Vec::new(),
        };
        let bound = match minted_orgs.as_slice() {
            [only] => Some(only.clone()),
            _ => identity.organization_id.clone(),
        };
        return Ok(StatusReport {
            method: credential.method(),
            user: identity.user,
            organization_id: bound,
            organization_ids: minted_orgs,
            expires_at: None,
        });
    }
    let account = account(settings);
    let fresh = account
        .ensure_fresh(CLI_REFRESH_WINDOW_MS, now_ms())
        .await?;
    let credential = Credential::classify(fresh.auth.access_token.clone());
    let config = account.store.load()?;
    // A standard server has no get-session: UserInfo (found by discovery), else who the
    // ID token named at sign-in.
    let identity = identify(
        &http,
        &settings.api_url,
        &credential,
        None,
        config.user.clone(),
    )
    .await?;
    Ok(StatusReport {
        method: credential.method(),
        user: identity.user,
        organization_id: config.organization_id.or(identity.organization_id),
        organization_ids: identity.organization_ids,
        expires_at: Some(fresh.auth.expires_at),
    })
}
