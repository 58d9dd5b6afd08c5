//! The reference authorization server's state and rules: users, organizations and
//! memberships, API keys bound to an org, sessions, authorization codes bound to a
//! redirect URI and a PKCE challenge, and refresh tokens that rotate with reuse detection.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};

use super::profile::{DeviceFlows, IssAnswer, Profile};
use crate::clock::now_s;
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
pub(super) struct Code {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
    pub(super) user: String,
    pub(super) scope: String,
    pub(super) expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefreshState {
    Active,
    Rotated,
}

#[derive(Debug, Clone)]
pub(super) struct Refresh {
    pub(super) family: String,
    pub(super) user: String,
    pub(super) scope: String,
    pub(super) state: RefreshState,
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
    pub(super) codes: HashMap<String, Code>,
    pub(super) refresh: HashMap<String, Refresh>,
    pub(super) revoked_families: BTreeSet<String>,
    /// Opaque access tokens of the standard profile → (user, expiry).
    pub(super) opaque_access: HashMap<String, (String, i64)>,
}

/// The `iss` the server answers by default: the correct one, unless
/// `TETHER_HARNESS_BREAK=iss` asks for a broken reference server (the report's own test
/// breaks a scenario on purpose with it, docs/HARNESS.md).
fn sabotaged_iss() -> IssAnswer {
    if std::env::var("TETHER_HARNESS_BREAK").is_ok_and(|v| v == "iss") {
        IssAnswer::Wrong
    } else {
        IssAnswer::Correct
    }
}

/// A random URL-safe token with a prefix.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::rng().random();
    let token = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    // Ids (`key_`, `fam_`) are not secrets; everything else this makes is.
    if !matches!(prefix, "key_" | "fam_") {
        crate::transcript::issued(&token);
    }
    token
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
            iss_answer: sabotaged_iss(),
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
        self.add_api_key(&secret, user, org);
        secret
    }

    /// Accepts `secret` as an API key of `user` bound to `org` (a test's fixed key).
    pub fn add_api_key(&mut self, secret: &str, user: &str, org: &str) {
        self.api_keys.insert(
            secret.to_string(),
            ApiKey {
                id: random_token("key_"),
                user: user.into(),
                organization_id: org.into(),
                enabled: true,
                name: "test key".into(),
            },
        );
    }

    /// Issues a session token for `user`.
    pub fn issue_session(&mut self, user: &str) -> String {
        let token = random_token("sess_");
        self.sessions.insert(token.clone(), user.into());
        token
    }

    /// How many refresh-token families were revoked (reuse detected).
    pub fn revoked_family_count(&self) -> usize {
        self.revoked_families.len()
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

    pub(super) fn orgs_of(&self, user: &str) -> Vec<String> {
        self.members
            .get(user)
            .map(|o| o.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Signs a JWT for `user` acting in `orgs`, with the configured lifetime and clock.
    pub fn sign(&self, user: &str, orgs: &[String]) -> String {
        let now = now_s() + self.clock_offset_s;
        let claims = json!({
            "iss": self.issuer, "aud": [self.issuer], "sub": user, "iat": now,
            "exp": now + self.access_ttl.as_secs() as i64, "organizationIds": orgs,
            "jti": random_token(""),
        });
        self.keys[0].sign(&claims).unwrap_or_default()
    }

    /// The user behind one of our access JWTs, if it verifies and has not expired.
    pub(super) fn user_of_access_token(&self, token: &str) -> Option<String> {
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
}
