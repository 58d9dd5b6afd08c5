//! Shared helpers: a state directory per test, JWTs signed with the harness's fixture key,
//! a mock authorization server, and a runner for the real `tether` binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, HOME_ENV, LOG_ENV, RELAY_URL_ENV};
use tether_harness::keys;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const API_KEY: &str = "sk_live_TESTKEYabcdefghijklmnopqrstuvwxyz";
pub const SESSION_TOKEN: &str = "sess_opaqueSESSIONtoken0123456789";
pub const REFRESH_TOKEN: &str = "rt_original_REFRESH_0123456789";

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A JWT signed with the harness's primary fixture key (`rs256-2026a`), expiring `ttl_s`
/// from now.
pub fn jwt(iss: &str, ttl_s: i64, orgs: &[&str]) -> String {
    let now = now_s();
    let claims = json!({
        "iss": iss, "aud": [iss], "sub": "user_alice", "iat": now, "exp": now + ttl_s,
        "organizationIds": orgs, "jti": format!("{}", rand_u64()),
    });
    keys::load(keys::PRIMARY)
        .and_then(|key| key.sign(&claims))
        .expect("sign")
}

fn rand_u64() -> u64 {
    static N: AtomicU32 = AtomicU32::new(0);
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64)
        ^ N.fetch_add(1, Ordering::SeqCst) as u64
}

/// One test's `TETHER_HOME`.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Home {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("tether")
    }
    pub fn config_path(&self) -> PathBuf {
        self.path().join("config.json")
    }
    pub fn write_config(&self, value: &Value) {
        std::fs::create_dir_all(self.path()).expect("mkdir");
        std::fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(value).expect("json"),
        )
        .expect("write");
    }
    pub fn read_config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.config_path()).expect("read config"))
            .expect("config json")
    }
    /// Stores an OAuth sign-in whose access token expires in `ttl_s` seconds.
    pub fn sign_in(&self, api: &str, access: &str, ttl_s: i64) {
        self.write_config(&json!({
            "auth": {
                "accessToken": access,
                "refreshToken": REFRESH_TOKEN,
                "expiresAt": (now_s() + ttl_s) * 1000,
                "scope": "openid profile email offline_access",
            },
            "apiUrl": api,
            "organizationId": "org_a",
        }));
    }
}

/// Runs the real `tether` binary with a clean environment pointed at `api`.
pub fn tether(home: &Home, api: &str, args: &[&str]) -> Output {
    tether_cmd(home, api, args).output().expect("run tether")
}

pub fn tether_cmd(home: &Home, api: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tether"));
    cmd.args(args)
        .env_remove(API_KEY_ENV)
        .env_remove(RELAY_URL_ENV)
        .env(HOME_ENV, home.path())
        .env(API_URL_ENV, api)
        .env(LOG_ENV, "debug")
        .env("HOME", home.dir.path());
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails if any of `secrets` appears in the process's output.
pub fn assert_no_secrets(out: &Output, secrets: &[&str]) {
    let all = format!("{}{}", stdout(out), stderr(out));
    for secret in secrets {
        assert!(
            !all.contains(secret),
            "secret {}… leaked into output:\n{all}",
            &secret[..8.min(secret.len())]
        );
    }
}

/// The user the mock server reports.
pub fn session_body(active_org: &str, orgs: &[&str]) -> Value {
    json!({
        "user": {"id": "user_alice", "email": "alice@example.com"},
        "session": {"activeOrganizationId": active_org},
        "organizationIds": orgs,
    })
}

/// Mounts `get-session` answering for any credential.
pub async fn mount_session(server: &MockServer, active_org: &str, orgs: &[&str]) {
    Mock::given(method("GET"))
        .and(path("/api/auth/get-session"))
        .respond_with(ResponseTemplate::new(200).set_body_json(session_body(active_org, orgs)))
        .mount(server)
        .await;
}

/// A token endpoint that rotates: every refresh answers a new access JWT and a new refresh token.
pub struct RotatingTokens {
    pub issuer: String,
    pub count: Arc<AtomicU32>,
}

impl Respond for RotatingTokens {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": jwt(&self.issuer, 3600, &["org_a", "org_b"]),
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": format!("rt_rotated_{n}"),
            "scope": "openid profile email offline_access",
        }))
    }
}

/// Mounts a rotating token endpoint at the default path; returns its call counter.
pub async fn mount_rotating_token_endpoint(server: &MockServer) -> Arc<AtomicU32> {
    let count = Arc::new(AtomicU32::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(RotatingTokens {
            issuer: server.uri(),
            count: count.clone(),
        })
        .mount(server)
        .await;
    count
}

/// Requests the server received on `p`.
pub async fn requests_to(server: &MockServer, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .collect()
}

/// The form fields of a form-encoded request body.
pub fn form(request: &Request) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

/// An address on loopback where nothing listens.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
