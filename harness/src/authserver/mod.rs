//! The reference authorization server, on `wiremock`: every request goes through one
//! responder that routes it to the strict rules in [`state`], after any injected fault.

pub mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub use state::{AuthState, Fault, Reply};

/// A running reference authorization server.
pub struct AuthServer {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
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
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
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
        let reply = match (method, path.as_str()) {
            ("GET", "/.well-known/oauth-authorization-server") => state.metadata(),
            ("GET", "/oauth2/authorize") => state.authorize(&query),
            ("POST", "/oauth2/token") => state.token(&form(request)),
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
        Self::start_with(MockServer::start().await).await
    }

    /// Starts on a given listener (e.g. a fixed port for `tether-harness serve`).
    pub async fn start_on(listener: std::net::TcpListener) -> anyhow::Result<Self> {
        Self::start_with(MockServer::builder().listener(listener).start().await).await
    }

    async fn start_with(server: MockServer) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(AuthState::new(server.uri())?));
        Mock::given(wiremock::matchers::any())
            .respond_with(Dispatch(state.clone()))
            .mount(&server)
            .await;
        Ok(AuthServer { server, state })
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT`: the `TETHER_API_URL`.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The state, for knobs and admin actions.
    pub fn state(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
