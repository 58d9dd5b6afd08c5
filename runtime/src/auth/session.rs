//! `GET {api}/api/auth/get-session`: who a credential belongs to and which
//! organizations it may act in.

use serde::{Deserialize, Serialize};

use super::credential::Credential;
use super::error::AuthError;
use super::transport::send;

/// The user a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    /// User id.
    pub id: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
}

/// The `session` object of `get-session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The organization the credential acts in; for an API key, its bound org.
    #[serde(default)]
    pub active_organization_id: Option<crate::OrgId>,
}

/// The answer of `get-session`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The signed-in user.
    pub user: SessionUser,
    /// Active organization.
    #[serde(default)]
    pub session: SessionInfo,
    /// Every organization the credential may act in.
    #[serde(default)]
    pub organization_ids: Vec<crate::OrgId>,
}

/// Asks the API who `credential` belongs to.
pub async fn get_session(
    http: &reqwest::Client,
    api: &str,
    credential: &Credential,
) -> Result<Session, AuthError> {
    let url = format!("{api}/api/auth/get-session");
    let response = send(credential.apply(http.get(&url)), &url).await?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED && !matches!(credential, Credential::ApiKey(_)) {
        return Err(AuthError::SessionExpired {
            reason: format!("{url} no longer accepts the token"),
        });
    }
    if !status.is_success() {
        return Err(AuthError::Refused {
            url,
            status: status.as_u16(),
            detail: format!(
                "{} {} was not accepted",
                credential.method(),
                credential.secret().redacted()
            ),
        });
    }
    super::transport::json(response, &url, "get-session answer").await
}
