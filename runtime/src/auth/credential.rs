//! The three credential kinds and how each travels to the API (contract section 2).

use super::jwt::looks_like_jwt;
use super::secret::Secret;

/// Prefix that marks an API key.
pub const API_KEY_PREFIX: &str = "sk_live_";

/// A credential ready to be attached to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key: sent as `x-api-key`, never in `Authorization`.
    ApiKey(Secret),
    /// An OAuth access token that is a JWT: `Authorization: Bearer`, passed through to the relay.
    OAuthJwt(Secret),
    /// Anything else (a session token, or a non-JWT access token): `Authorization: Bearer`,
    /// exchanged at `/api/auth/token` for a relay JWT.
    Session(Secret),
}

impl Credential {
    /// Classifies a token the user gave us or that we stored.
    pub fn classify(token: Secret) -> Self {
        let value = token.expose();
        if value.starts_with(API_KEY_PREFIX) {
            Credential::ApiKey(token)
        } else if looks_like_jwt(value) {
            Credential::OAuthJwt(token)
        } else {
            Credential::Session(token)
        }
    }

    /// The name used in `auth status --json`'s `method`.
    pub fn method(&self) -> &'static str {
        match self {
            Credential::ApiKey(_) => "api_key",
            Credential::OAuthJwt(_) => "oauth",
            Credential::Session(_) => "session",
        }
    }

    /// The secret itself.
    pub fn secret(&self) -> &Secret {
        match self {
            Credential::ApiKey(s) | Credential::OAuthJwt(s) | Credential::Session(s) => s,
        }
    }

    /// Attaches the credential to a request in the header its kind requires.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::ApiKey(key) => request.header("x-api-key", key.expose()),
            Credential::OAuthJwt(token) | Credential::Session(token) => {
                request.bearer_auth(token.expose())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_shape_of_the_token() {
        assert_eq!(
            Credential::classify(Secret::new("sk_live_x")).method(),
            "api_key"
        );
        assert_eq!(Credential::classify(Secret::new("a.b.c")).method(), "oauth");
        assert_eq!(
            Credential::classify(Secret::new("opaque-session")).method(),
            "session"
        );
    }

    #[test]
    fn api_key_travels_in_x_api_key_only() {
        let client = reqwest::Client::new();
        let req = Credential::classify(Secret::new("sk_live_abc"))
            .apply(client.get("http://127.0.0.1:1/"))
            .build()
            .expect("request");
        assert_eq!(req.headers()["x-api-key"], "sk_live_abc");
        assert!(req.headers().get("authorization").is_none());
    }

    #[test]
    fn session_token_travels_as_bearer() {
        let client = reqwest::Client::new();
        let req = Credential::classify(Secret::new("sess_1"))
            .apply(client.get("http://127.0.0.1:1/"))
            .build()
            .expect("request");
        assert_eq!(req.headers()["authorization"], "Bearer sess_1");
        assert!(req.headers().get("x-api-key").is_none());
    }
}
