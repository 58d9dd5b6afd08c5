//! The reference server's API endpoints: relay JWT minting bound to the API key's org,
//! `get-session`, the JWKS and API key updates.

use serde_json::{json, Value};

use super::state::{AuthState, Reply, User};

impl AuthState {
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
