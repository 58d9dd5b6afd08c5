//! server: does a deployment's authorization server and relay keep *their* side of the
//! contract? Each check needs only the URLs, an API key bound to an organization
//! (`TETHER_E2E_API_KEY`) and optionally a session token (`TETHER_E2E_SESSION_TOKEN`);
//! without `TETHER_E2E_*` they run against a fresh reference world. Nothing destructive is
//! sent: the given key is never revoked or changed, no organization is touched.
//!
//! A check that cannot apply (no metadata served, no session token given, a rule only
//! the reference's signing key can exercise) says so with [`NotApplicable`].

mod discovery;
mod mint;
mod relay;
mod session;
mod token;

use anyhow::Context;
use serde_json::Value;

use super::env::World;
use super::{NotApplicable, Run, Scenario};

/// One check: an id, a statement, its source, and the function that runs it on a target.
pub struct Check {
    /// Scenario id.
    pub id: &'static str,
    /// What it proves.
    pub statement: &'static str,
    /// Where the rule comes from.
    pub source: &'static str,
    /// Runs it.
    pub run: for<'a> fn(&'a Target) -> futures_util::future::BoxFuture<'a, anyhow::Result<()>>,
}

macro_rules! check {
    ($id:literal, $statement:literal, $source:literal, $f:path) => {
        $crate::scenarios::server::Check {
            id: $id,
            statement: $statement,
            source: $source,
            run: |t| Box::pin($f(t)),
        }
    };
}
pub(crate) use check;

/// Every server check, in a stable order.
pub fn checks() -> Vec<Check> {
    [
        discovery::checks(),
        token::checks(),
        mint::checks(),
        relay::checks(),
        session::checks(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The checks as scenarios (black-box: they run against a deployment too).
pub fn scenarios() -> Vec<Scenario> {
    checks()
        .into_iter()
        .map(|c| Scenario {
            id: c.id,
            statement: c.statement,
            source: c.source,
            black_box: true,
            run: Run::ServerCheck,
        })
        .collect()
}

/// Runs the check `id` on the target the environment names (or a reference world).
pub async fn run_one(id: &'static str) -> anyhow::Result<()> {
    let target = Target::from_env_or_reference().await?;
    let check = checks()
        .into_iter()
        .find(|c| c.id == id)
        .with_context(|| format!("no check {id}"))?;
    (check.run)(&target).await
}

/// What the checks run against.
pub struct Target {
    /// `TETHER_API_URL` of the deployment (no trailing slash).
    pub api: String,
    /// Its relay (`wss://…`).
    pub relay: String,
    /// An API key bound to one organization.
    pub api_key: String,
    /// A session token, when given.
    pub session: Option<String>,
    /// The reference world, when the target is one: checks that need its signing key or
    /// its test login use it.
    pub world: Option<World>,
    /// HTTP client trusting the harness CA, `SSL_CERT_FILE` and the public roots.
    pub http: reqwest::Client,
}

/// Sending a request of a server check, recorded in the scenario's transcript when the
/// target is a deployment (against the reference servers, their front door records it).
pub trait SendVia {
    /// Sends the request as `target`'s checks do.
    fn send_via(
        self,
        target: &Target,
    ) -> impl std::future::Future<Output = anyhow::Result<reqwest::Response>> + Send;
}

impl SendVia for reqwest::RequestBuilder {
    async fn send_via(self, target: &Target) -> anyhow::Result<reqwest::Response> {
        if target.world.is_some() || crate::transcript::current().is_none() {
            return Ok(self.send().await?);
        }
        let (client, request) = self.build_split();
        let request = request?;
        let method = request.method().to_string();
        let path = request.url().to_string();
        let headers = |map: &reqwest::header::HeaderMap| -> Vec<(String, String)> {
            map.iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect()
        };
        let request_headers = headers(request.headers());
        let request_body = request
            .body()
            .and_then(|b| b.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let response = client.execute(request).await;
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                crate::transcript::record(crate::transcript::EventKind::Http {
                    server: "deployment".into(),
                    method,
                    path,
                    status: None,
                    request_headers,
                    request_body,
                    response_headers: vec![],
                    response_body: format!("(no answer: {e})"),
                });
                return Err(e.into());
            }
        };
        let status = response.status();
        let response_headers = response.headers().clone();
        let body = response.bytes().await?;
        crate::transcript::record(crate::transcript::EventKind::Http {
            server: "deployment".into(),
            method,
            path,
            status: Some(status.as_u16()),
            request_headers,
            request_body,
            response_headers: headers(&response_headers),
            response_body: String::from_utf8_lossy(&body).into_owned(),
        });
        // The body read for the transcript, handed back as a response of its own.
        let mut rebuilt = http::Response::builder().status(status);
        if let Some(map) = rebuilt.headers_mut() {
            *map = response_headers;
        }
        Ok(reqwest::Response::from(rebuilt.body(body)?))
    }
}

impl Target {
    /// `TETHER_E2E_API_URL` / `_RELAY_URL` / `_API_KEY` (and `_SESSION_TOKEN`), or a
    /// fresh reference world with alice's key for org_a and a session of hers.
    pub async fn from_env_or_reference() -> anyhow::Result<Target> {
        if let Some((api, relay, api_key)) = super::env::deployment() {
            return Ok(Target {
                api: api.trim_end_matches('/').to_string(),
                relay: relay.trim_end_matches('/').to_string(),
                api_key,
                session: std::env::var("TETHER_E2E_SESSION_TOKEN").ok(),
                world: None,
                http: crate::tls::http_client(Some(std::time::Duration::from_secs(15))),
            });
        }
        Self::reference(World::start().await?)
    }

    /// A target on `world` (the broken-server tests build their own).
    pub fn reference(world: World) -> anyhow::Result<Target> {
        let (api_key, session) = {
            let mut state = world.auth.state();
            (
                state.issue_api_key("user_alice", "org_a"),
                state.issue_session("user_alice"),
            )
        };
        Ok(Target {
            api: world.auth.uri(),
            relay: world.relay.url(),
            api_key,
            session: Some(session),
            http: crate::tls::http_client(Some(std::time::Duration::from_secs(15))),
            world: Some(world),
        })
    }

    /// The reference world, or "not applicable" for a deployment.
    pub fn reference_world(&self, why: &str) -> Result<&World, NotApplicable> {
        self.world
            .as_ref()
            .ok_or_else(|| NotApplicable(format!("{why}: only the reference servers offer that")))
    }

    /// The session token, or "not applicable".
    pub fn session(&self) -> Result<&str, NotApplicable> {
        self.session.as_deref().ok_or_else(|| {
            NotApplicable("no session token given (TETHER_E2E_SESSION_TOKEN)".into())
        })
    }

    /// The metadata document (RFC 8414, else OIDC discovery), or `None` when neither is served.
    pub async fn metadata(&self) -> anyhow::Result<Option<Value>> {
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let url = format!("{}{path}", self.api);
            let response = self.get(&url).await?;
            if response.status() == 404 {
                continue;
            }
            return json_of(&url, response).await.map(Some);
        }
        Ok(None)
    }

    /// `GET url` as the checks send it.
    async fn get(&self, url: &str) -> anyhow::Result<reqwest::Response> {
        self.http
            .get(url)
            .send_via(self)
            .await
            .with_context(|| format!("GET {url}"))
    }

    /// An endpoint: from the metadata when served, else the contract's default path.
    pub async fn endpoint(&self, field: &str, default_path: &str) -> anyhow::Result<String> {
        let advertised = self
            .metadata()
            .await?
            .and_then(|m| m[field].as_str().map(str::to_string));
        Ok(advertised.unwrap_or_else(|| format!("{}{default_path}", self.api)))
    }

    /// The JWKS document.
    pub async fn jwks(&self) -> anyhow::Result<Value> {
        let url = self.endpoint("jwks_uri", "/api/auth/jwks").await?;
        let response = self.get(&url).await?;
        json_of(&url, response).await
    }

    /// A relay JWT minted from the API key.
    pub async fn minted(&self) -> anyhow::Result<String> {
        let url = format!("{}/api/auth/token", self.api);
        let response = self
            .http
            .get(&url)
            .header("x-api-key", &self.api_key)
            .send_via(self)
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(
            response.status() == 200,
            "minting answered {}",
            response.status()
        );
        let body: Value = response.json().await?;
        body["token"]
            .as_str()
            .map(str::to_string)
            .context("no token in the answer")
    }
}

/// The JSON body of a successful answer from `url`; an error naming `url` otherwise.
async fn json_of(url: &str, response: reqwest::Response) -> anyhow::Result<Value> {
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    response
        .json()
        .await
        .with_context(|| format!("{url} is not JSON"))
}
