//! Sending a request to the API: a transport failure or a 5xx answer becomes
//! [`AuthError::Unreachable`] naming the URL; everything else is the caller's to read.

use super::error::AuthError;
use crate::net::CertFailure;

/// Sends `request` to `url`.
pub async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, AuthError> {
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
