//! What makes the reference server a *standard* OAuth 2.0 / OpenID Connect server when
//! asked (contract section 3): no `get-session` and no minting, opaque access tokens,
//! UserInfo and ID tokens, `iss` in authorization responses (RFC 9207) — plus the device
//! authorization grant (RFC 8628) with scripted answers, in both profiles.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::profile::{DeviceAnswer, IssAnswer, Profile};
use super::state::{random_token, AuthState, Reply, CLIENT_ID};
use crate::clock::now_s;

/// The user code every device flow shows (the harness has one user at a time).
pub const USER_CODE: &str = "WDJB-MJHT";

impl AuthState {
    /// The metadata document, as RFC 8414 or OpenID Connect discovery serves it.
    pub fn metadata_document(&self) -> Value {
        let i = &self.issuer;
        let published = if self.broken.issuer_trailing_slash {
            format!("{i}/")
        } else {
            i.clone()
        };
        let mut doc = json!({
            "issuer": published,
            "authorization_endpoint": format!("{i}/oauth2/authorize"),
            "token_endpoint": format!("{i}/oauth2/token"),
            "revocation_endpoint": format!("{i}/oauth2/revoke"),
            "device_authorization_endpoint": format!("{i}/oauth2/device/authorize"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
        });
        match self.profile {
            Profile::Tether => doc["jwks_uri"] = format!("{i}/api/auth/jwks").into(),
            Profile::Standard => {
                doc["jwks_uri"] = format!("{i}/oauth2/jwks").into();
                doc["userinfo_endpoint"] = format!("{i}/oauth2/userinfo").into();
                doc["authorization_response_iss_parameter_supported"] = true.into();
                doc["subject_types_supported"] = json!(["public"]);
                doc["id_token_signing_alg_values_supported"] = json!(["RS256"]);
            }
        }
        doc
    }

    /// The `iss` to put in an authorization response, if any: the standard profile sends
    /// it (RFC 9207); a wrong one is sent in any profile (a mixed-up server need not have
    /// promised it, and a client must refuse an `iss` that names another server).
    pub(super) fn iss_parameter(&self) -> Option<String> {
        match (self.iss_answer, self.profile) {
            (IssAnswer::Wrong, _) => Some("https://attacker.example".into()),
            (IssAnswer::Correct, Profile::Standard) => Some(self.issuer.clone()),
            _ => None,
        }
    }

    /// A new opaque access token for `user`.
    pub(super) fn opaque_access_token(&mut self, user: &str) -> String {
        let token = random_token("at_");
        let expires = now_s() + self.clock_offset_s + self.access_ttl.as_secs() as i64;
        self.opaque_access
            .insert(token.clone(), (user.to_string(), expires));
        token
    }

    /// An OpenID Connect ID token for `user`.
    pub(super) fn id_token(&self, user: &str) -> String {
        let now = now_s() + self.clock_offset_s;
        let email = self.users.get(user).map(|u| u.email.clone());
        let claims = json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": user, "email": email,
            "iat": now, "exp": now + 300,
        });
        self.keys[0].sign(&claims).unwrap_or_default()
    }

    /// `GET /oauth2/userinfo` with an opaque access token.
    pub fn userinfo(&self, bearer: Option<&str>) -> Reply {
        let user = bearer
            .and_then(|t| self.opaque_access.get(t))
            .filter(|(_, exp)| *exp > now_s())
            .map(|(user, _)| user.clone());
        match user.and_then(|u| self.users.get(&u)) {
            Some(user) => Reply::json(200, json!({"sub": user.id, "email": user.email})),
            None => Reply::json(401, json!({"error": "invalid_token"})),
        }
    }

    /// `POST /oauth2/device/authorize` (RFC 8628 §3.1).
    pub fn device_authorize(&mut self, form: &HashMap<String, String>) -> Reply {
        if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
            return Reply::oauth_error(400, "invalid_client", "unknown client_id");
        }
        let device_code = random_token("dc_");
        let expires = now_s() + self.device.expires_in_s as i64;
        self.device
            .codes
            .insert(device_code.clone(), (self.login_user.clone(), expires));
        let i = &self.issuer;
        Reply::json(
            200,
            json!({
                "device_code": device_code, "user_code": USER_CODE,
                "verification_uri": format!("{i}/device"),
                "verification_uri_complete": format!("{i}/device?user_code={USER_CODE}"),
                "expires_in": self.device.expires_in_s, "interval": self.device.interval_s,
            }),
        )
    }

    /// The device-code grant at the token endpoint: the next scripted answer.
    pub(super) fn device_token(&mut self, device_code: &str) -> Reply {
        self.device.polls.push(Instant::now());
        let Some((user, expires)) = self.device.codes.get(device_code).cloned() else {
            return Reply::oauth_error(400, "invalid_grant", "unknown device code");
        };
        if expires < now_s() {
            return Reply::oauth_error(400, "expired_token", "the device code expired");
        }
        let answer = self
            .device
            .script
            .pop_front()
            .unwrap_or(DeviceAnswer::Approve);
        match answer {
            DeviceAnswer::Pending => {
                Reply::oauth_error(400, "authorization_pending", "waiting for the user")
            }
            DeviceAnswer::SlowDown => Reply::oauth_error(400, "slow_down", "polling too fast"),
            DeviceAnswer::Denied => {
                self.device.codes.remove(device_code);
                Reply::oauth_error(400, "access_denied", "the user said no")
            }
            DeviceAnswer::Expired => {
                Reply::oauth_error(400, "expired_token", "the device code expired")
            }
            DeviceAnswer::Approve => {
                self.device.codes.remove(device_code);
                self.token_response(&user, crate::authserver::LOGIN_SCOPE, None)
            }
        }
    }

    /// Gaps between consecutive device polls.
    pub fn device_poll_gaps(&self) -> Vec<Duration> {
        self.device
            .polls
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .collect()
    }
}
