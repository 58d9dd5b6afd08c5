//! The reference server's OAuth endpoints: discovery documents, `authorize` (redirect URI,
//! PKCE and `iss` rules), `token` (code exchange, rotating refresh with reuse detection)
//! and `revoke`.

use std::collections::{BTreeSet, HashMap};

use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::profile::Profile;
use super::state::{random_token, AuthState, Code, Refresh, RefreshState, Reply, CLIENT_ID};
use crate::clock::now_s;

impl AuthState {
    /// `GET /.well-known/oauth-authorization-server` (RFC 8414).
    pub fn metadata(&self) -> Reply {
        if !self.metadata_enabled {
            return Reply::json(404, json!({"error": "not_found"}));
        }
        Reply::json(200, self.metadata_document())
    }

    /// `GET /.well-known/openid-configuration` (OpenID Connect Discovery).
    pub fn openid_configuration(&self) -> Reply {
        if !self.openid_configuration_enabled {
            return Reply::json(404, json!({"error": "not_found"}));
        }
        Reply::json(200, self.metadata_document())
    }

    fn redirect_allowed(&self, uri: &str) -> bool {
        if let Ok(url) = url::Url::parse(uri) {
            if url.scheme() == "http"
                && url.host_str() == Some("127.0.0.1")
                && url.path() == "/callback"
            {
                return true;
            }
        }
        self.extra_redirect_prefixes
            .iter()
            .any(|p| uri.starts_with(p.as_str()))
    }

    /// `GET /oauth2/authorize`: the signed-in browser approves at once.
    pub fn authorize(&mut self, query: &HashMap<String, String>) -> Reply {
        let get = |k: &str| query.get(k).cloned().unwrap_or_default();
        let redirect_uri = get("redirect_uri");
        if get("client_id") != CLIENT_ID {
            return Reply::oauth_error(400, "invalid_client", "unknown client_id");
        }
        // An unregistered redirect URI is never redirected to (RFC 6749 §4.1.2.1).
        if !self.redirect_allowed(&redirect_uri) {
            return Reply::oauth_error(400, "invalid_request", "redirect_uri is not registered");
        }
        let state = get("state");
        let iss = self.iss_parameter();
        // Back to the client with `name=value`, the state and (when promised) `iss`.
        let redirect = |name: &str, value: &str| {
            let mut url = url::Url::parse(&redirect_uri).expect("checked above");
            url.query_pairs_mut()
                .append_pair(name, value)
                .append_pair("state", &state);
            if let Some(iss) = &iss {
                url.query_pairs_mut().append_pair("iss", iss);
            }
            Reply {
                status: 302,
                body: Value::Null,
                headers: vec![("location".into(), url.into())],
            }
        };
        let redirect_error = |error: &str| redirect("error", error);
        if get("response_type") != "code" {
            return redirect_error("unsupported_response_type");
        }
        if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
            return redirect_error("invalid_request");
        }
        if std::mem::take(&mut self.deny_next_authorization) {
            return redirect_error("access_denied");
        }
        let code = random_token("code_");
        self.codes.insert(
            code.clone(),
            Code {
                client_id: get("client_id"),
                redirect_uri: redirect_uri.clone(),
                challenge: get("code_challenge"),
                user: self.login_user.clone(),
                scope: get("scope"),
                expires_at: now_s() + 600,
            },
        );
        redirect("code", &code)
    }

    pub(super) fn token_response(
        &mut self,
        user: &str,
        scope: &str,
        family: Option<String>,
    ) -> Reply {
        let orgs = self.orgs_of(user);
        let access = match self.profile {
            Profile::Tether => self.sign(user, &orgs),
            Profile::Standard => self.opaque_access_token(user),
        };
        let refresh = random_token("rt_");
        let family = family.unwrap_or_else(|| random_token("fam_"));
        self.refresh.insert(
            refresh.clone(),
            Refresh {
                family,
                user: user.into(),
                scope: scope.into(),
                state: RefreshState::Active,
            },
        );
        let mut body = json!({
            "access_token": access, "token_type": "Bearer",
            "expires_in": self.access_ttl.as_secs(), "refresh_token": refresh, "scope": scope,
        });
        if self.profile == Profile::Standard && self.id_tokens {
            body["id_token"] = self.id_token(user).into();
        }
        Reply::json(200, body)
    }

    /// `POST /oauth2/token`.
    pub fn token(&mut self, form: &HashMap<String, String>) -> Reply {
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        if get("client_id") != CLIENT_ID {
            return Reply::oauth_error(400, "invalid_client", "unknown client_id");
        }
        match get("grant_type").as_str() {
            "authorization_code" => {
                // Single use: the code is gone whatever happens next.
                let Some(code) = self.codes.remove(&get("code")) else {
                    return Reply::oauth_error(400, "invalid_grant", "unknown or used code");
                };
                if code.expires_at < now_s() || code.client_id != get("client_id") {
                    return Reply::oauth_error(400, "invalid_grant", "expired code");
                }
                if code.redirect_uri != get("redirect_uri") {
                    return Reply::oauth_error(
                        400,
                        "invalid_grant",
                        "redirect_uri does not match the authorization request",
                    );
                }
                let verifier = get("code_verifier");
                let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if verifier.len() < 43 || hashed != code.challenge {
                    return Reply::oauth_error(400, "invalid_grant", "PKCE verification failed");
                }
                self.token_response(&code.user.clone(), &code.scope.clone(), None)
            }
            "refresh_token" => {
                let presented = get("refresh_token");
                let Some(entry) = self.refresh.get(&presented).cloned() else {
                    return Reply::oauth_error(400, "invalid_grant", "unknown refresh token");
                };
                if self.revoked_families.contains(&entry.family) {
                    return Reply::oauth_error(400, "invalid_grant", "refresh token revoked");
                }
                if entry.state == RefreshState::Rotated && !self.broken.refresh_reuse_accepted {
                    // Reuse of a rotated token: revoke the whole family (RFC 9700 §4.14.2).
                    self.revoked_families.insert(entry.family.clone());
                    return Reply::oauth_error(
                        400,
                        "invalid_grant",
                        "refresh token reused; the session was revoked",
                    );
                }
                let requested = get("scope");
                let granted: BTreeSet<&str> = entry.scope.split(' ').collect();
                if !requested.is_empty() && !requested.split(' ').all(|s| granted.contains(s)) {
                    return Reply::oauth_error(
                        400,
                        "invalid_scope",
                        "scope exceeds the original grant",
                    );
                }
                if let Some(e) = self.refresh.get_mut(&presented) {
                    e.state = RefreshState::Rotated;
                }
                let scope = if requested.is_empty() {
                    entry.scope.clone()
                } else {
                    requested
                };
                self.token_response(&entry.user, &scope, Some(entry.family))
            }
            "urn:ietf:params:oauth:grant-type:device_code" => {
                self.device_token(&get("device_code"))
            }
            other => Reply::oauth_error(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other:?}"),
            ),
        }
    }

    /// `POST /oauth2/revoke` (RFC 7009): always 200.
    pub fn revoke(&mut self, form: &HashMap<String, String>) -> Reply {
        if let Some(entry) = form.get("token").and_then(|t| self.refresh.get(t)) {
            self.revoked_families.insert(entry.family.clone());
        }
        Reply::json(200, json!({}))
    }
}
