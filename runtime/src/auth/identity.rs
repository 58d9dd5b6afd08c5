//! Who a credential belongs to, from whatever the server offers (contract section 3):
//! this API's `get-session` (user and organizations), else OpenID Connect UserInfo, else
//! the ID token kept from sign-in, else unknown — which is not an error.

use serde::Deserialize;

use super::credential::Credential;
use super::discovery::{discover, Endpoints};
use super::error::AuthError;
use super::session::{get_session, SessionUser};
use super::transport::send;

/// What is known about the signed-in user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Who, when known.
    pub user: Option<SessionUser>,
    /// The active organization, from `get-session`.
    pub organization_id: Option<crate::OrgId>,
    /// Every organization the credential may act in, from `get-session`.
    pub organization_ids: Vec<crate::OrgId>,
}

#[derive(Debug, Deserialize)]
struct UserInfo {
    sub: String,
    #[serde(default)]
    email: Option<String>,
}

/// True when `error` says the API has no `get-session` (a standard authorization server).
pub fn is_missing_endpoint(error: &AuthError) -> bool {
    matches!(error, AuthError::Refused { status: 404, .. })
}

/// Asks `get-session`; on a server without it, UserInfo as `endpoints` name it (found by
/// discovery when the caller has not discovered them), then `fallback`.
pub async fn identify(
    http: &reqwest::Client,
    api: &str,
    credential: &Credential,
    endpoints: Option<&Endpoints>,
    fallback: Option<SessionUser>,
) -> Result<Identity, AuthError> {
    match get_session(http, api, credential).await {
        Ok(session) => {
            return Ok(Identity {
                user: Some(session.user),
                organization_id: session.session.active_organization_id,
                organization_ids: session.organization_ids,
            })
        }
        Err(e) if is_missing_endpoint(&e) && !matches!(credential, Credential::ApiKey(_)) => {}
        Err(e) if is_missing_endpoint(&e) => {
            return Err(AuthError::Refused {
                url: format!("{api}/api/auth/get-session"),
                status: 404,
                detail: "this server does not offer tether's own endpoints, so API keys cannot be used with it".into(),
            })
        }
        Err(e) => return Err(e),
    }
    let userinfo = match endpoints {
        Some(known) => known.userinfo.clone(),
        None => discover(http, api).await?.userinfo,
    };
    if let Some(url) = userinfo {
        match user_info(http, &url, credential).await {
            Ok(user) => {
                return Ok(Identity {
                    user: Some(user),
                    ..Identity::default()
                })
            }
            Err(e) => tracing::debug!("UserInfo did not say who is signed in: {e}"),
        }
    }
    Ok(Identity {
        user: fallback,
        ..Identity::default()
    })
}

async fn user_info(
    http: &reqwest::Client,
    url: &str,
    credential: &Credential,
) -> Result<SessionUser, AuthError> {
    let request = http
        .get(url)
        .header("accept", "application/json")
        .bearer_auth(credential.secret().expose());
    let response = send(request, url).await?;
    let status = response.status();
    if !status.is_success() {
        return Err(AuthError::Refused {
            url: url.to_string(),
            status: status.as_u16(),
            detail: "UserInfo refused the access token".into(),
        });
    }
    let info: UserInfo = super::transport::json(response, url, "UserInfo answer").await?;
    Ok(SessionUser {
        id: info.sub,
        email: info.email,
    })
}
