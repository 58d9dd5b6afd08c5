//! `tether auth login --device`: the device authorization grant (RFC 8628) for machines
//! with no browser. The user opens a URL on any other device and types a short code;
//! this process polls the token endpoint no faster than the server allows.

use std::time::Duration;

use serde::Deserialize;

use super::discovery::Endpoints;
use super::error::AuthError;
use super::login::SignIn;
use super::secret::Secret;
use super::token_endpoint::{poll_device_code, TokenFailure};
use super::transport::send;
use super::{printable, CLIENT_ID, LOGIN_SCOPE};

/// The polling interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Added to the interval, for the rest of the flow, on each `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest a device code is waited for, whatever the server says.
const LONGEST_WAIT: Duration = Duration::from_secs(30 * 60);

/// The device authorization response: what the user must do.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    device_code: Secret,
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// The same with the code filled in, when the server offers it.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds the codes live.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default)]
    pub interval: Option<u64>,
}

/// Asks the server for a device code and a user code.
pub async fn start(
    http: &reqwest::Client,
    api: &str,
    endpoints: &Endpoints,
) -> Result<DeviceAuthorization, AuthError> {
    let url = &endpoints.device_authorization;
    let request = http.post(url).header("accept", "application/json").form(&[
        ("client_id", CLIENT_ID),
        ("scope", LOGIN_SCOPE),
        ("resource", api),
    ]);
    let response = send(request, url).await?;
    let status = response.status();
    if !status.is_success() {
        let body = super::transport::body(response)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return Err(AuthError::Refused {
            url: url.clone(),
            status: status.as_u16(),
            detail: format!(
                "the server refused to start a device sign-in: {}",
                printable(&body)
            ),
        });
    }
    super::transport::json(response, url, "device authorization answer").await
}

/// Polls until the user approves, refuses, or the code expires; `now_ms` stamps the tokens.
pub async fn wait_for_approval(
    http: &reqwest::Client,
    api: &str,
    endpoints: &Endpoints,
    device: &DeviceAuthorization,
    now_ms: impl Fn() -> i64,
) -> Result<SignIn, AuthError> {
    let mut interval = device
        .interval
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_INTERVAL)
        .clamp(Duration::from_secs(1), LONGEST_WAIT);
    let lifetime = Duration::from_secs(device.expires_in).min(LONGEST_WAIT);
    let deadline = tokio::time::Instant::now() + lifetime;
    loop {
        if tokio::time::Instant::now() + interval > deadline {
            return Err(expired());
        }
        tokio::time::sleep(interval).await;
        match poll_device_code(http, &endpoints.token, &device.device_code, api).await {
            Ok(response) => return Ok(SignIn::from_response(response, now_ms())),
            Err(TokenFailure::Rejected {
                error, description, ..
            }) => match error.as_str() {
                "authorization_pending" => {}
                "slow_down" => {
                    interval = (interval + SLOW_DOWN_STEP).min(LONGEST_WAIT);
                    tracing::debug!(
                        interval_s = interval.as_secs(),
                        "slow_down: polling less often"
                    );
                }
                "access_denied" => {
                    return Err(AuthError::Login(
                        "denied: the sign-in was refused on the other device".into(),
                    ))
                }
                "expired_token" => return Err(expired()),
                other => {
                    let description = description
                        .map(|d| format!(": {}", printable(&d)))
                        .unwrap_or_default();
                    return Err(AuthError::Login(format!(
                        "the authorization server answered {}{description}",
                        printable(other)
                    )));
                }
            },
            // The code stays valid through a network hiccup or a 5xx: poll again.
            Err(failure @ (TokenFailure::Network { .. } | TokenFailure::ServerError { .. })) => {
                tracing::warn!(
                    "polling {} failed ({failure}); trying again",
                    endpoints.token
                );
            }
            Err(TokenFailure::Malformed { detail }) => {
                return Err(AuthError::Protocol {
                    url: endpoints.token.clone(),
                    detail: format!("malformed token response: {detail}"),
                })
            }
        }
    }
}

fn expired() -> AuthError {
    AuthError::Login("the code expired before it was approved; run the command again".into())
}

/// Why this machine cannot open a browser, if it cannot: Linux with no display, or an
/// SSH session (contract section 7). `env` reads a variable.
pub fn no_browser_reason(env: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    if set("SSH_CONNECTION") {
        return Some("this is an SSH session");
    }
    if cfg!(target_os = "linux") && !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        return Some("there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)");
    }
    None
}

/// The QR code of `url` as text for a terminal (two rows per line).
pub fn qr_code(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ssh_session_or_a_missing_display_means_no_browser() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(no_browser_reason(env(&[
            ("SSH_CONNECTION", "1.2.3.4 5 6.7.8.9 22"),
            ("DISPLAY", ":0")
        ]))
        .is_some());
        if cfg!(target_os = "linux") {
            assert!(no_browser_reason(env(&[])).is_some());
            assert!(no_browser_reason(env(&[("DISPLAY", "")])).is_some());
            assert!(no_browser_reason(env(&[("WAYLAND_DISPLAY", "wayland-0")])).is_none());
            assert!(no_browser_reason(env(&[("DISPLAY", ":0")])).is_none());
        }
    }

    #[test]
    fn a_qr_code_is_drawn_for_the_complete_uri() {
        let qr = qr_code("https://auth.example.com/device?user_code=WDJB-MJHT").expect("qr");
        assert!(qr.lines().count() > 10, "{qr}");
        assert!(
            qr.contains('▀') || qr.contains('▄') || qr.contains('█'),
            "{qr}"
        );
    }
}
