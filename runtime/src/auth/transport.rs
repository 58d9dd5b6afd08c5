//! Sending a request to the API: a transport failure or a 5xx answer becomes
//! [`AuthError::Unreachable`] naming the URL; everything else is the caller's to read.

use super::error::AuthError;

/// Sends `request` to `url`.
pub async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, AuthError> {
    let response = request.send().await.map_err(|e| AuthError::Unreachable {
        url: url.to_string(),
        cause: describe(&e),
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

/// A one-line cause for a transport error, without URLs' query strings or bodies.
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_connect() {
        let root = std::error::Error::source(error)
            .and_then(|s| s.source())
            .map(|s| s.to_string())
            .unwrap_or_default();
        if root.is_empty() {
            "connection failed".to_string()
        } else {
            format!("connection failed ({root})")
        }
    } else if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_decode() || error.is_body() {
        "connection dropped while reading the answer".to_string()
    } else {
        "request failed".to_string()
    }
}
