//! The reference authorization server's state and rules: users, organizations and
//! memberships, API keys bound to an org, sessions, authorization codes bound to a
//! redirect URI and a PKCE challenge, and refresh tokens that rotate with reuse detection.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{encode, Header};
use rand::Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::profile::{DeviceFlows, IssAnswer, Profile};
use crate::keys::{self, SigningKey};

/// The OAuth client the CLI is.
pub const CLIENT_ID: &str = "tether-cli";

/// An injected fault on one path.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Answer this status instead of the real answer.
    pub status: Option<u16>,
    /// Answer (the real answer or `status`) after this delay.
    pub delay: Option<Duration>,
    /// How many requests it applies to; `None` for all.
    pub remaining: Option<u32>,
}

/// Server-side rules the reference can break on purpose (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokenAuth {
    /// Mint API-key tokens for every organization of the key's owner.
    pub mint_all_orgs: bool,
    /// Publish the issuer with a trailing slash.
    pub issuer_trailing_slash: bool,
    /// Publish a private member (`d`) in the JWKS.
    pub jwks_private_member: bool,
    /// Accept a rotated refresh token again (no reuse detection).
    pub refresh_reuse_accepted: bool,
}

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// Id, the JWT `sub`.
    pub id: String,
    /// Email.
    pub email: String,
    /// Default organization.
    pub active_org: String,
}

/// An API key: bound at mint time to one organization, immutable after.
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Public id, for `api-key/update`.
    pub id: String,
    /// Owner.
    pub user: String,
    /// `metadata.organizationId`.
    pub organization_id: String,
    /// Disabled keys are refused.
    pub enabled: bool,
    /// Display name.
    pub name: String,
}

#[derive(Debug, Clone)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    user: String,
    scope: String,
    expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    Active,
    Rotated,
}

#[derive(Debug, Clone)]
struct Refresh {
    family: String,
    user: String,
    scope: String,
    state: RefreshState,
}

/// A reply before it becomes an HTTP response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// JSON body (`Value::Null` for none).
    pub body: Value,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body,
            headers: vec![],
        }
    }
    pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Reply::json(
            status,
            json!({"error": error, "error_description": description}),
        )
    }
}

/// Everything the server knows.
pub struct AuthState {
    /// `iss` and `aud` of every token: the server's base URL.
    pub issuer: String,
    /// Signing keys; the first signs, all are published.
    pub keys: Vec<SigningKey>,
    /// Users by id.
    pub users: HashMap<String, User>,
    /// Memberships: user → organizations.
    pub members: HashMap<String, BTreeSet<String>>,
    /// API keys by secret.
    pub api_keys: HashMap<String, ApiKey>,
    /// Session tokens → user.
    pub sessions: HashMap<String, String>,
    /// The user the "browser" signs in as at `/oauth2/authorize`.
    pub login_user: String,
    /// Lifetime of access tokens and minted JWTs.
    pub access_ttl: Duration,
    /// Added to the server's clock when it stamps tokens (negative: the server runs behind).
    pub clock_offset_s: i64,
    /// Serve RFC 8414 metadata (off tests the CLI's fallback to defaults).
    pub metadata_enabled: bool,
    /// Serve OpenID Connect discovery at `/.well-known/openid-configuration`.
    pub openid_configuration_enabled: bool,
    /// Which kind of server this is (see [`Profile`]).
    pub profile: Profile,
    /// What the `iss` of authorization responses says (standard profile).
    pub iss_answer: IssAnswer,
    /// Answer the next authorization with `error=access_denied`.
    pub deny_next_authorization: bool,
    /// Send ID tokens (standard profile).
    pub id_tokens: bool,
    /// Rules deliberately broken, to prove the `server.*` checks catch each.
    pub broken: BrokenAuth,
    /// Device authorization grant: script, timing and what was polled.
    pub device: DeviceFlows,
    /// Faults by path.
    pub faults: HashMap<String, Fault>,
    /// Redirect URI prefixes allowed besides loopback `http://127.0.0.1:<port>/callback`.
    pub extra_redirect_prefixes: Vec<String>,
    codes: HashMap<String, Code>,
    refresh: HashMap<String, Refresh>,
    revoked_families: BTreeSet<String>,
    /// Opaque access tokens of the standard profile → (user, expiry).
    pub(super) opaque_access: HashMap<String, (String, i64)>,
}

/// A random URL-safe token with a prefix.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub(super) fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl AuthState {
    /// The default world: alice (member of org_a and org_b, default org_a) and bob (org_b).
    pub fn new(issuer: String) -> anyhow::Result<Self> {
        let mut state = AuthState {
            issuer,
            keys: vec![keys::load(keys::PRIMARY)?],
            users: HashMap::new(),
            members: HashMap::new(),
            api_keys: HashMap::new(),
            sessions: HashMap::new(),
            login_user: "user_alice".into(),
            access_ttl: Duration::from_secs(3600),
            clock_offset_s: 0,
            metadata_enabled: true,
            openid_configuration_enabled: false,
            profile: Profile::Tether,
            iss_answer: IssAnswer::Correct,
            deny_next_authorization: false,
            id_tokens: true,
            broken: BrokenAuth::default(),
            device: DeviceFlows::default(),
            faults: HashMap::new(),
            extra_redirect_prefixes: Vec::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            revoked_families: BTreeSet::new(),
            opaque_access: HashMap::new(),
        };
        state.add_user("user_alice", "alice@example.com", &["org_a", "org_b"]);
        state.add_user("user_bob", "bob@example.com", &["org_b"]);
        Ok(state)
    }

    /// Adds a user who is a member of `orgs` (the first is the default).
    pub fn add_user(&mut self, id: &str, email: &str, orgs: &[&str]) {
        let active_org = orgs.first().copied().unwrap_or_default().to_string();
        self.users.insert(
            id.into(),
            User {
                id: id.into(),
                email: email.into(),
                active_org,
            },
        );
        self.members
            .insert(id.into(), orgs.iter().map(|o| o.to_string()).collect());
    }

    /// Makes `user` a member of `org`.
    pub fn add_member(&mut self, user: &str, org: &str) {
        self.members
            .entry(user.into())
            .or_default()
            .insert(org.into());
    }

    /// Removes `user` from `org`.
    pub fn remove_member(&mut self, user: &str, org: &str) {
        if let Some(orgs) = self.members.get_mut(user) {
            orgs.remove(org);
        }
    }

    /// Mints an API key for `user` bound to `org`.
    pub fn issue_api_key(&mut self, user: &str, org: &str) -> String {
        let secret = random_token("sk_live_");
        let id = random_token("key_");
        self.api_keys.insert(
            secret.clone(),
            ApiKey {
                id,
                user: user.into(),
                organization_id: org.into(),
                enabled: true,
                name: "test key".into(),
            },
        );
        secret
    }

    /// Issues a session token for `user`.
    pub fn issue_session(&mut self, user: &str) -> String {
        let token = random_token("sess_");
        self.sessions.insert(token.clone(), user.into());
        token
    }

    /// A refresh token of a new family for `user`, as a completed login would hold.
    pub fn issue_refresh_token(&mut self, user: &str) -> String {
        let token = random_token("rt_");
        self.refresh.insert(
            token.clone(),
            Refresh {
                family: random_token("fam_"),
                user: user.into(),
                scope: crate::authserver::LOGIN_SCOPE.into(),
                state: RefreshState::Active,
            },
        );
        token
    }

    /// Starts signing with a new key while still publishing the old one.
    pub fn rotate_signing_key(&mut self) -> anyhow::Result<()> {
        let next = if self.keys[0].kid == keys::NEXT {
            keys::PRIMARY
        } else {
            keys::NEXT
        };
        let key = keys::load(next)?;
        self.keys.retain(|k| k.kid != next);
        self.keys.insert(0, key);
        Ok(())
    }

    fn orgs_of(&self, user: &str) -> Vec<String> {
        self.members
            .get(user)
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Signs a JWT for `user` acting in `orgs`, with the configured lifetime and clock.
    pub fn sign(&self, user: &str, orgs: &[String]) -> String {
        let now = now_s() + self.clock_offset_s;
        let key = &self.keys[0];
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        let claims = json!({
            "iss": self.issuer, "aud": [self.issuer], "sub": user, "iat": now,
            "exp": now + self.access_ttl.as_secs() as i64, "organizationIds": orgs,
            "jti": random_token(""),
        });
        encode(&header, &claims, &key.encoding).unwrap_or_default()
    }

    /// The user behind one of our access JWTs, if it verifies and has not expired.
    fn user_of_access_token(&self, token: &str) -> Option<String> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let key = self
            .keys
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).ok()?;
        let mut validation = jsonwebtoken::Validation::new(key.alg);
        validation.set_audience(&[&self.issuer]);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation).ok()?;
        data.claims["sub"].as_str().map(str::to_string)
    }

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
        let redirect_error = |error: &str| {
            let mut url = url::Url::parse(&redirect_uri).expect("checked above");
            url.query_pairs_mut()
                .append_pair("error", error)
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
        let mut url = url::Url::parse(&redirect_uri).expect("checked above");
        url.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &state);
        if let Some(iss) = &iss {
            url.query_pairs_mut().append_pair("iss", iss);
        }
        Reply {
            status: 302,
            body: Value::Null,
            headers: vec![("location".into(), url.into())],
        }
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

    /// `GET /api/auth/token`: a relay JWT from an API key or a session token.
    pub fn mint(&self, api_key: Option<&str>, bearer: Option<&str>) -> Reply {
        if let Some(secret) = api_key {
            let Some(key) = self.api_keys.get(secret).filter(|k| k.enabled) else {
                return Reply::json(401, json!({"error": "invalid_api_key"}));
            };
            if !self.orgs_of(&key.user).contains(&key.organization_id) {
                return Reply::json(
                    403,
                    json!({"error": "forbidden", "message": "the key's owner is no longer a member of its organization"}),
                );
            }
            let orgs = if self.broken.mint_all_orgs {
                self.orgs_of(&key.user)
            } else {
                vec![key.organization_id.clone()]
            };
            return Reply::json(200, json!({"token": self.sign(&key.user, &orgs)}));
        }
        match bearer.and_then(|t| self.sessions.get(t)) {
            Some(user) => Reply::json(200, json!({"token": self.sign(user, &self.orgs_of(user))})),
            // OAuth access tokens are not sessions: passing one here is the bug the pass-through avoids.
            None => Reply::json(401, json!({"error": "invalid_token"})),
        }
    }

    /// `GET /api/auth/get-session`.
    pub fn get_session(&self, api_key: Option<&str>, bearer: Option<&str>) -> Reply {
        let session = |user: &User, active: &str, orgs: Vec<String>| {
            Reply::json(
                200,
                json!({
                    "user": {"id": user.id, "email": user.email},
                    "session": {"activeOrganizationId": active},
                    "organizationIds": orgs,
                }),
            )
        };
        if let Some(secret) = api_key {
            let Some(key) = self.api_keys.get(secret).filter(|k| k.enabled) else {
                return Reply::json(401, json!({"error": "invalid_api_key"}));
            };
            let Some(user) = self.users.get(&key.user) else {
                return Reply::json(401, json!({"error": "no_user"}));
            };
            let orgs = if self.orgs_of(&key.user).contains(&key.organization_id) {
                vec![key.organization_id.clone()]
            } else {
                vec![]
            };
            return session(user, &key.organization_id, orgs);
        }
        let user = bearer.and_then(|t| {
            self.sessions
                .get(t)
                .cloned()
                .or_else(|| self.user_of_access_token(t))
        });
        match user.and_then(|u| self.users.get(&u)) {
            Some(user) => session(user, &user.active_org, self.orgs_of(&user.id)),
            None => Reply::json(401, json!({"error": "invalid_token"})),
        }
    }

    /// `GET /api/auth/jwks`: every key, old and new.
    pub fn jwks(&self) -> Reply {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| serde_json::to_value(&k.jwk).unwrap_or_default())
            .map(|mut k| {
                if self.broken.jwks_private_member {
                    k["d"] = "bGVha2VkLXByaXZhdGUtZXhwb25lbnQ".into();
                }
                k
            })
            .collect();
        Reply::json(200, json!({"keys": keys}))
    }

    /// `POST /api/auth/api-key/update`: name and enabled only; `metadata` is immutable.
    pub fn update_api_key(&mut self, api_key: Option<&str>, body: &Value) -> Reply {
        if body.get("metadata").is_some() {
            return Reply::json(
                400,
                json!({"error": "invalid_request", "message": "metadata cannot be changed after a key is minted"}),
            );
        }
        let Some(caller) = api_key
            .and_then(|k| self.api_keys.get(k))
            .map(|k| k.user.clone())
        else {
            return Reply::json(401, json!({"error": "invalid_api_key"}));
        };
        let key_id = body["keyId"].as_str().unwrap_or_default();
        let Some(key) = self
            .api_keys
            .values_mut()
            .find(|k| k.id == key_id && k.user == caller)
        else {
            return Reply::json(404, json!({"error": "not_found"}));
        };
        if let Some(name) = body["name"].as_str() {
            key.name = name.into();
        }
        if let Some(enabled) = body["enabled"].as_bool() {
            key.enabled = enabled;
        }
        Reply::json(
            200,
            json!({"id": key.id, "name": key.name, "enabled": key.enabled}),
        )
    }

    /// The id of an API key, for `api-key/update`.
    pub fn api_key_id(&self, secret: &str) -> Option<String> {
        self.api_keys.get(secret).map(|k| k.id.clone())
    }
}
