//! Reading a JWT's claims without verifying it: the client only needs `exp` and
//! `organizationIds` to decide what to do; the relay does the verifying.

use serde::Deserialize;

/// The claims tether reads from a JWT it holds.
#[derive(Debug, Clone, Deserialize)]
pub struct HeldClaims {
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Subject (user id).
    #[serde(default)]
    pub sub: Option<String>,
    /// Organizations the token may act in, as the token says (unchecked: see [`Self::orgs`]).
    #[serde(default, rename = "organizationIds")]
    pub organization_ids: Vec<String>,
}

impl HeldClaims {
    /// The token's organizations, each checked against contract section 1.
    pub fn orgs(&self) -> Result<Vec<crate::OrgId>, crate::org_id::InvalidOrgId> {
        self.organization_ids
            .iter()
            .map(|org| crate::OrgId::parse(org))
            .collect()
    }

    /// Expiry in unix milliseconds (saturating: a hostile `exp` cannot wrap around).
    pub fn exp_ms(&self) -> i64 {
        self.exp.saturating_mul(1000)
    }
}

/// True when `token` has the shape of a JWS compact serialization: three base64url parts.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Decodes the claims of a JWT without checking its signature.
pub fn held_claims(token: &str) -> Option<HeldClaims> {
    if !looks_like_jwt(token) {
        return None;
    }
    jsonwebtoken::dangerous::insecure_decode::<HeldClaims>(token)
        .ok()
        .map(|data| data.claims)
}

/// Who an OpenID Connect ID token names (`sub`, `email`), read without verification:
/// it came straight from the token endpoint over TLS (OIDC Core §3.1.3.7), and tether only
/// shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    /// The user the ID token is about (`sub`).
    pub sub: String,
    /// Email, when the server shares it.
    #[serde(default)]
    pub email: Option<String>,
}

/// The claims of an ID token, if it is a JWT with a `sub`.
pub fn id_token_claims(token: &str) -> Option<IdTokenClaims> {
    if !looks_like_jwt(token) {
        return None;
    }
    jsonwebtoken::dangerous::insecure_decode::<IdTokenClaims>(token)
        .ok()
        .map(|data| data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_is_three_base64url_parts() {
        assert!(looks_like_jwt("eyJh.eyJz.sig-_"));
        assert!(!looks_like_jwt("sk_live_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c d"));
        assert!(!looks_like_jwt("..sig"));
    }

    #[test]
    fn claims_are_read_without_a_key() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#),
            b64(r#"{"exp":1700000000,"sub":"u1","organizationIds":["org_a"]}"#),
            b64("not-a-real-signature")
        );
        let claims = held_claims(&token).expect("claims");
        assert_eq!(claims.exp, 1_700_000_000);
        assert_eq!(claims.organization_ids, vec!["org_a"]);
    }
}
