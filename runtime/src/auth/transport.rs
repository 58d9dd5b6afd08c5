//! Sending a request to the API: a transport failure or a 5xx answer becomes
//! [`AuthError::Unreachable`] naming the URL; everything else is the caller's to read.

use super::error::AuthError;
use crate::net::CertFailure;

/// Sends `request` to `url`.
pub async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, AuthError> {
    crate::net::plaintext::check(url)?;
    let response = request
        .send()
        .await
        .map_err(|e| match CertFailure::find(&e) {
            Some(failure) => AuthError::Tls {
                url: url.to_string(),
                failure,
            },
            None => AuthError::Unreachable {
                url: url.to_string(),
                cause: with_route(describe(&e), url),
            },
        })?;
    let status = response.status();
    if status.is_server_error() {
        return Err(AuthError::Unreachable {
            url: url.to_string(),
            cause: format!("server error {status}"),
        });
    }
    Ok(response)
}

/// The most of an API or token response tether reads (contract section 1): a server that
/// streams without end cannot grow a process past its memory budget.
pub const BODY_LIMIT: usize = 1 << 20;

/// Why a bounded body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed while reading; the transport error, described.
    Network(String),
    /// The body is longer than [`BODY_LIMIT`].
    TooLong,
}

impl BodyError {
    /// As an [`AuthError`] about `url`.
    pub fn for_url(self, url: &str) -> AuthError {
        match self {
            BodyError::Network(cause) => AuthError::Unreachable {
                url: url.to_string(),
                cause,
            },
            BodyError::TooLong => AuthError::Protocol {
                url: url.to_string(),
                detail: format!("the answer is longer than {} KiB", BODY_LIMIT / 1024),
            },
        }
    }
}

/// Reads `response`'s body, at most [`BODY_LIMIT`] bytes.
pub async fn body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Network(describe(&e)))?
    {
        if out.len() + chunk.len() > BODY_LIMIT {
            return Err(BodyError::TooLong);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads `response`'s body (bounded) as the JSON of a `T`; `what` names it in the error.
pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    url: &str,
    what: &str,
) -> Result<T, AuthError> {
    let bytes = body(response).await.map_err(|e| e.for_url(url))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Protocol {
        url: url.to_string(),
        detail: format!("invalid {what}: {e}"),
    })
}

/// A one-line cause for a transport error: what kind, and the innermost cause's words
/// (they name sockets and protocols, never URLs' secrets or bodies).
pub fn describe(error: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = error;
    while let Some(source) = root.source() {
        root = source;
    }
    let kind = if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_decode() || error.is_body() {
        "connection dropped while reading the answer"
    } else {
        "request failed"
    };
    let root = root.to_string();
    if root.is_empty() || root == error.to_string() {
        kind.to_string()
    } else {
        format!("{kind} ({root})")
    }
}

/// `cause`, naming the proxy when `url` goes through one (a dead proxy looks like a dead
/// server otherwise).
pub fn with_route(cause: String, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .as_ref()
        .and_then(crate::net::proxy::route)
    {
        Some(hop) => format!("{cause}, through {hop}"),
        None => cause,
    }
}
