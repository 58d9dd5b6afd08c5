//! Where the authorization server's endpoints are: RFC 8414 metadata, then OpenID
//! Connect discovery, then the contract's default paths.

use serde::Deserialize;

use super::error::AuthError;
use super::transport::send;

/// The endpoints of an authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorization: String,
    /// Where codes and refresh tokens are exchanged.
    pub token: String,
    /// Where refresh tokens are revoked (RFC 7009), when the server has one.
    pub revocation: Option<String>,
    /// The server's signing keys.
    pub jwks: String,
    /// Where the device authorization grant starts (RFC 8628).
    pub device_authorization: String,
    /// OpenID Connect UserInfo, when the server has one.
    pub userinfo: Option<String>,
    /// The issuer the metadata declared (`None` with the default paths).
    pub issuer: Option<String>,
    /// Whether authorization responses carry `iss` (RFC 9207), which must then match.
    pub iss_in_response: bool,
    /// Which document the endpoints came from.
    pub source: EndpointSource,
}

/// Which document the endpoints came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    /// `/.well-known/oauth-authorization-server`.
    Rfc8414,
    /// `/.well-known/openid-configuration`.
    OpenIdConfiguration,
    /// Neither was served: the contract's default paths.
    Defaults,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl Endpoints {
    /// The contract's default paths under `api`.
    pub fn defaults(api: &str) -> Self {
        Endpoints {
            authorization: format!("{api}/oauth2/authorize"),
            token: format!("{api}/oauth2/token"),
            revocation: Some(format!("{api}/oauth2/revoke")),
            jwks: format!("{api}/api/auth/jwks"),
            device_authorization: format!("{api}/oauth2/device/authorize"),
            userinfo: None,
            issuer: None,
            iss_in_response: false,
            source: EndpointSource::Defaults,
        }
    }
}

impl Endpoints {
    /// Every endpoint against the plaintext rule (contract section 9): a metadata document
    /// may not send a token to `http://` on another machine.
    fn check_plaintext(&self) -> Result<(), AuthError> {
        let named = [
            &self.authorization,
            &self.token,
            &self.jwks,
            &self.device_authorization,
        ]
        .into_iter()
        .chain(self.revocation.as_ref())
        .chain(self.userinfo.as_ref());
        for url in named {
            crate::net::plaintext::check(url)?;
        }
        Ok(())
    }
}

/// Finds the endpoints of the server at `api` (no trailing slash).
pub async fn discover(http: &reqwest::Client, api: &str) -> Result<Endpoints, AuthError> {
    let documents = [
        (
            "/.well-known/oauth-authorization-server",
            EndpointSource::Rfc8414,
        ),
        (
            "/.well-known/openid-configuration",
            EndpointSource::OpenIdConfiguration,
        ),
    ];
    for (path, source) in documents {
        let url = format!("{api}{path}");
        let response = send(http.get(&url).header("accept", "application/json"), &url).await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            continue;
        }
        if !status.is_success() {
            return Err(AuthError::Protocol {
                url,
                detail: format!("metadata request answered {status}"),
            });
        }
        let meta: Metadata = super::transport::json(response, &url, "metadata").await?;
        // Exact (RFC 8414 §3.3): `https://a.example/` and `https://a.example` are
        // different issuers (docs/PROTOCOL.md: issuers ending in `/` are not supported).
        if meta.issuer != api {
            return Err(AuthError::Protocol {
                url,
                detail: format!(
                    "metadata issuer {} does not match {api} (RFC 8414 §3.3)",
                    meta.issuer
                ),
            });
        }
        let defaults = Endpoints::defaults(api);
        let endpoints = Endpoints {
            authorization: meta.authorization_endpoint,
            token: meta.token_endpoint,
            revocation: meta.revocation_endpoint,
            jwks: meta.jwks_uri.unwrap_or(defaults.jwks),
            device_authorization: meta
                .device_authorization_endpoint
                .unwrap_or(defaults.device_authorization),
            userinfo: meta.userinfo_endpoint,
            issuer: Some(meta.issuer),
            iss_in_response: meta.authorization_response_iss_parameter_supported,
            source,
        };
        endpoints.check_plaintext()?;
        return Ok(endpoints);
    }
    Ok(Endpoints::defaults(api))
}
