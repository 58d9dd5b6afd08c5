//! `tether auth login`: OAuth 2.0 authorization code with PKCE S256 and a loopback
//! redirect on `127.0.0.1` at an ephemeral port (RFC 6749 §4.1, RFC 7636, RFC 8252).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use oauth2::{CsrfToken, PkceCodeChallenge};
use tokio::sync::oneshot;

use super::config_store::{ConfigStore, StoredAuth};
use super::credential::Credential;
use super::discovery::Endpoints;
use super::error::AuthError;
use super::identity::{identify, Identity};
use super::jwt::id_token_claims;
use super::session::SessionUser;
use super::token_endpoint::{self, TokenFailure, TokenResponse};
use super::{printable, CLIENT_ID, LOGIN_SCOPE};

/// How long the browser has to come back (contract section 3).
pub const LOGIN_DEADLINE: Duration = Duration::from_secs(300);

/// The answer the browser brought back to the loopback listener.
type CallbackResult = Result<String, AuthError>;

#[derive(Clone)]
struct CallbackState {
    expected_state: String,
    /// The issuer an `iss` parameter must name (RFC 9207).
    expected_iss: String,
    /// Whether the server promised `iss` in every response.
    iss_required: bool,
    reply: Arc<Mutex<Option<oneshot::Sender<CallbackResult>>>>,
}

/// The authorize URL for one login attempt.
pub fn authorize_url(
    endpoints: &Endpoints,
    api: &str,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<String, AuthError> {
    let mut url = url::Url::parse(&endpoints.authorization).map_err(|e| AuthError::Protocol {
        url: endpoints.authorization.clone(),
        detail: format!("authorization endpoint is not a URL: {e}"),
    })?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", LOGIN_SCOPE)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", api);
    Ok(url.into())
}

/// Runs the whole browser flow and returns the tokens to store. `show_url` is called
/// once with the URL the user must open; the browser is opened too when `open_browser`.
pub async fn login(
    http: &reqwest::Client,
    api: &str,
    endpoints: &Endpoints,
    open_browser: bool,
    show_url: impl FnOnce(&str),
    now_ms: impl Fn() -> i64,
) -> Result<SignIn, AuthError> {
    let (listener, port) = loopback_listener().await?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = CsrfToken::new_random().secret().clone();
    let url = authorize_url(endpoints, api, &redirect_uri, &state, challenge.as_str())?;

    let (tx, rx) = oneshot::channel();
    let app = Router::new()
        .route("/callback", get(callback))
        .with_state(CallbackState {
            expected_state: state,
            expected_iss: endpoints.issuer.clone().unwrap_or_else(|| api.to_string()),
            iss_required: endpoints.iss_in_response,
            reply: Arc::new(Mutex::new(Some(tx))),
        });
    let server = tokio::spawn(crate::http_server::serve(
        listener,
        app,
        CALLBACK_CONNECTIONS,
    ));

    show_url(&url);
    if open_browser {
        if let Err(e) = webbrowser::open(&url) {
            tracing::warn!("could not open a browser ({e}); open the URL above by hand");
        }
    }

    let answer = tokio::time::timeout(LOGIN_DEADLINE, rx).await;
    // Whatever connections are still open (a browser's keep-alive, a client holding half
    // a request) end with the login: the deadline is the deadline.
    server.abort();
    let code = match answer {
        Err(_) => Err(AuthError::Login(
            "the browser did not come back within 5 minutes".into(),
        )),
        Ok(Err(_)) => Err(AuthError::Login(
            "the loopback listener stopped unexpectedly".into(),
        )),
        Ok(Ok(result)) => result,
    }?;
    let response = exchange(
        http,
        api,
        endpoints,
        &code,
        &redirect_uri,
        verifier.secret(),
    )
    .await?;
    Ok(SignIn::from_response(response, now_ms()))
}

/// A listener on a free loopback port for the browser's redirect, and the port.
async fn loopback_listener() -> Result<(tokio::net::TcpListener, u16), AuthError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| {
            AuthError::Login(format!(
                "cannot listen on 127.0.0.1 for the browser's redirect: {e}"
            ))
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| AuthError::Login(format!("cannot read the loopback port: {e}")))?
        .port();
    Ok((listener, port))
}

/// Trades the authorization code for tokens; a refusal is a failed login, a network
/// error or 5xx says the server was unreachable.
async fn exchange(
    http: &reqwest::Client,
    api: &str,
    endpoints: &Endpoints,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<TokenResponse, AuthError> {
    token_endpoint::exchange_code(http, &endpoints.token, code, redirect_uri, verifier, api)
        .await
        .map_err(|failure| match failure {
            TokenFailure::Network { cause, .. } => AuthError::Unreachable {
                url: endpoints.token.clone(),
                cause,
            },
            TokenFailure::ServerError { status } => AuthError::Unreachable {
                url: endpoints.token.clone(),
                cause: format!("server error {status}"),
            },
            other => AuthError::Login(format!(
                "the authorization server refused the code: {other}"
            )),
        })
}

/// Open connections the callback listener serves at once (a browser opens a few).
const CALLBACK_CONNECTIONS: usize = 16;

async fn callback(
    State(state): State<CallbackState>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, Html<&'static str>) {
    // The state is compared before anything else is looked at (RFC 6749 §10.12). A
    // callback without this login's state may come from any local process or web page
    // that found the port: it is logged and ignored, and the login keeps waiting.
    if params.get("state") != Some(&state.expected_state) {
        tracing::warn!("ignored a callback whose state does not match this login (possible CSRF); still waiting for the browser");
        return (
            StatusCode::BAD_REQUEST,
            Html("This is not the sign-in the terminal is waiting for."),
        );
    }
    let Some(reply) = state.reply.lock().ok().and_then(|mut slot| slot.take()) else {
        return (
            StatusCode::BAD_REQUEST,
            Html("This sign-in was already handled. You can close this window."),
        );
    };
    // Mix-up defence (RFC 9207 §2.4): an `iss` that is there must name the server the
    // request went to; one the server promised must be there. Checked before the error
    // and the code, and the code is never redeemed when it fails.
    let iss_problem = check_iss(
        params.get("iss").map(String::as_str),
        &state.expected_iss,
        state.iss_required,
    );
    if let Err(problem) = iss_problem {
        let _ = reply.send(Err(AuthError::Login(problem)));
        return (
            StatusCode::BAD_REQUEST,
            Html("Sign-in refused: the answer did not come from the expected server. Return to the terminal."),
        );
    }
    if let Some(error) = params.get("error") {
        let description = params
            .get("error_description")
            .map(|d| format!(": {}", printable(d)))
            .unwrap_or_default();
        let _ = reply.send(Err(AuthError::Login(format!(
            "the authorization server answered {}{description}",
            printable(error)
        ))));
        return (
            StatusCode::OK,
            Html("Sign-in was not completed. Return to the terminal."),
        );
    }
    match params.get("code") {
        Some(code) => {
            let _ = reply.send(Ok(code.clone()));
            (
                StatusCode::OK,
                Html("Signed in to tether. You can close this window."),
            )
        }
        None => {
            let _ = reply.send(Err(AuthError::Login(
                "the redirect carried neither a code nor an error".into(),
            )));
            (
                StatusCode::BAD_REQUEST,
                Html("Sign-in failed: no code. Return to the terminal."),
            )
        }
    }
}

/// Stores a fresh sign-in: tokens and API under the config lock, then who signed in
/// and the active organization, from whatever the server offers ([`identify`]).
pub async fn save_sign_in(
    store: &ConfigStore,
    api: &str,
    sign_in: &SignIn,
    http: &reqwest::Client,
    endpoints: &Endpoints,
) -> Result<Identity, AuthError> {
    {
        let _lock = store.lock_async().await?;
        let mut config = store.load()?;
        config.auth = Some(sign_in.auth.clone());
        config.api_url = Some(api.to_string());
        config.user = None;
        store.save(&config)?;
    }
    let credential = Credential::classify(sign_in.auth.access_token.clone());
    let identity = identify(
        http,
        api,
        &credential,
        Some(endpoints),
        sign_in.id_token_user.clone(),
    )
    .await?;
    if identity.organization_id.is_some() || identity.user.is_some() {
        let _lock = store.lock_async().await?;
        let mut config = store.load()?;
        if let Some(org) = &identity.organization_id {
            config.organization_id = Some(org.clone());
        }
        config.user = identity.user.clone();
        store.save(&config)?;
    }
    Ok(identity)
}

/// Tokens from a completed sign-in, and who the ID token (if any) names.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// What goes into `config.json`.
    pub auth: StoredAuth,
    /// `sub` and `email` of the ID token.
    pub id_token_user: Option<SessionUser>,
}

impl SignIn {
    /// From a token endpoint's answer at `now_ms`.
    pub fn from_response(response: TokenResponse, now_ms: i64) -> SignIn {
        let id_token_user = response
            .id_token()
            .and_then(|t| id_token_claims(t.expose()))
            .map(|c| SessionUser {
                id: c.sub,
                email: c.email,
            });
        SignIn {
            auth: response.into_stored(now_ms, None, None),
            id_token_user,
        }
    }
}

/// The mix-up defence of RFC 9207 §2.4 for one authorization response: an `iss` that is
/// there must name `expected`; when the server promised one (`required`) it must be there.
/// The error says why, for the user; the code must then not be redeemed.
pub fn check_iss(iss: Option<&str>, expected: &str, required: bool) -> Result<(), String> {
    match iss {
        Some(iss) if iss != expected => Err(format!(
            "the redirect came from issuer {}, not {expected} (RFC 9207 mix-up defence); the code was not redeemed",
            printable(iss),
        )),
        None if required => Err(format!(
            "the redirect carries no iss although {expected} promises one (RFC 9207 mix-up defence); the code was not redeemed"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redirect_values_cannot_drive_the_terminal() {
        let hostile = format!("\u{1b}]0;pwned\u{7}{}", "x".repeat(500));
        let safe = super::super::printable(&hostile);
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert_eq!(safe.chars().count(), 200);
    }
}
