//! The reference authorization server, on `wiremock`: every request goes through one
//! responder that routes it to the strict rules in [`state`], after any injected fault.

mod api_endpoints;
mod oauth_endpoints;
pub mod profile;
pub mod proxy;
pub mod standard;
pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::lock::lock;
use crate::tls::Tls;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub use profile::{DeviceAnswer, IssAnswer, Profile};
pub use state::{AuthState, BrokenAuth, Fault, Reply};

/// The scope the CLI asks for.
pub const LOGIN_SCOPE: &str = "openid profile email offline_access";

/// A running reference authorization server.
pub struct AuthServer {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
    drops: proxy::DropRules,
    uri: String,
}

struct Dispatch(Arc<Mutex<AuthState>>);

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(request: &Request) -> Option<&str> {
    header(request, "authorization").and_then(|v| v.strip_prefix("Bearer "))
}

fn form(request: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

impl Respond for Dispatch {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.0);
        let path = request.url.path().to_string();
        let mut delay = None;
        if let Some(fault) = state.faults.get_mut(&path) {
            if fault.remaining != Some(0) {
                if let Some(n) = fault.remaining.as_mut() {
                    *n -= 1;
                }
                delay = fault.delay;
                if let Some(status) = fault.status {
                    let mut template = ResponseTemplate::new(status)
                        .set_body_json(serde_json::json!({"error": "injected"}));
                    if let Some(d) = delay {
                        template = template.set_delay(d);
                    }
                    return template;
                }
            }
        }
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let method = request.method.as_str();
        // A standard server has none of tether's own endpoints.
        let standard = state.profile == Profile::Standard;
        let reply = match (method, path.as_str()) {
            (_, p) if standard && p.starts_with("/api/auth/") => Reply {
                status: 404,
                body: serde_json::json!({"error": "not_found"}),
                headers: vec![],
            },
            ("GET", "/.well-known/oauth-authorization-server") => state.metadata(),
            ("GET", "/.well-known/openid-configuration") => state.openid_configuration(),
            ("GET", "/oauth2/jwks") if standard => state.jwks(),
            ("GET", "/oauth2/userinfo") if standard => state.userinfo(bearer(request)),
            ("POST", "/oauth2/device/authorize") => state.device_authorize(&form(request)),
            ("GET", "/oauth2/authorize") => state.authorize(&query),
            ("POST", "/oauth2/token") => {
                // Token answers are never cached (RFC 6749 §5.1).
                let mut reply = state.token(&form(request));
                reply
                    .headers
                    .push(("cache-control".into(), "no-store".into()));
                reply.headers.push(("pragma".into(), "no-cache".into()));
                reply
            }
            ("POST", "/oauth2/revoke") => state.revoke(&form(request)),
            ("GET", "/api/auth/token") => state.mint(header(request, "x-api-key"), bearer(request)),
            ("GET", "/api/auth/get-session") => {
                state.get_session(header(request, "x-api-key"), bearer(request))
            }
            ("GET", "/api/auth/jwks") => state.jwks(),
            ("POST", "/api/auth/api-key/update") => {
                let body = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
                state.update_api_key(header(request, "x-api-key"), &body)
            }
            _ => Reply {
                status: 404,
                body: serde_json::json!({"error": "not_found"}),
                headers: vec![],
            },
        };
        let mut template = ResponseTemplate::new(reply.status);
        if !reply.body.is_null() {
            template = template.set_body_json(reply.body);
        }
        for (name, value) in reply.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        if let Some(d) = delay {
            template = template.set_delay(d);
        }
        template
    }
}

impl AuthServer {
    /// Starts a server on a free loopback port with the default world.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(std::net::TcpListener::bind("127.0.0.1:0")?).await
    }

    /// Starts over HTTPS with its front door on `listener` (e.g. a fixed port for
    /// `tether-harness serve`).
    pub async fn start_on(listener: std::net::TcpListener) -> anyhow::Result<Self> {
        Self::start_tls(listener, Tls::Good).await
    }

    /// Starts with its front door on `listener`, presenting a certificate of kind `tls`.
    pub async fn start_tls(listener: std::net::TcpListener, tls: Tls) -> anyhow::Result<Self> {
        let server_config = crate::tls::pki()?.server_config(tls)?;
        let listener = crate::server_runtime::listener(listener)?;
        let uri = format!("{}://{}", tls.http_scheme(), listener.local_addr()?);
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(AuthState::new(uri.clone())?));
        Mock::given(wiremock::matchers::any())
            .respond_with(Dispatch(state.clone()))
            .mount(&server)
            .await;
        let drops = proxy::DropRules::default();
        crate::server_runtime::spawn(proxy::run(
            listener,
            *server.address(),
            drops.clone(),
            server_config,
            crate::transcript::current(),
        ));
        Ok(AuthServer {
            server,
            state,
            drops,
            uri,
        })
    }

    /// Serves `bytes` at `GET path` ahead of every OAuth and API route (the files of a
    /// release, for `install.sh` and `tether self-update`).
    pub async fn serve_file(&self, path: &str, bytes: Vec<u8>) {
        Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(path))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// Drops the next `count` connections whose first request is for `path` (`None`: any).
    pub fn drop_connections(&self, path: Option<&str>, count: u32) {
        lock(&self.drops).push(proxy::DropRule {
            path: path.map(str::to_string),
            remaining: count,
        });
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT`: the `TETHER_API_URL`.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// The state, for knobs and admin actions.
    pub fn state(&self) -> MutexGuard<'_, AuthState> {
        lock(&self.state)
    }

    /// Every request received so far.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// Requests received on `path`.
    pub async fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .await
            .into_iter()
            .filter(|r| r.url.path() == path)
            .collect()
    }

    /// `refresh_token` grants received.
    pub async fn refresh_requests(&self) -> usize {
        self.requests_to("/oauth2/token")
            .await
            .iter()
            .filter(|r| form(r).get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    }

    /// Injects a fault on `path`.
    pub fn inject(&self, path: &str, fault: Fault) {
        self.state().faults.insert(path.to_string(), fault);
    }
}
