//! The HTTP clients: one for the API (shared TLS trust, proxies from the environment,
//! bounded timeouts, no redirects), one for release downloads (the same, but following
//! redirects to https — release hosts such as GitHub answer with one — and bounded by
//! stalls rather than by total time), and one for this machine's own loopback services.

use std::time::Duration;

use super::{proxy, trust};

/// The client every API call uses.
pub fn http_client() -> reqwest::Client {
    configured(
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none()),
    )
}

/// The client `self-update` downloads with: up to 5 redirects, none from https to plain
/// http; a download may take long but may not stall for 30 s.
pub fn download_client() -> reqwest::Client {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() != "https";
        if downgrade {
            attempt.error("a redirect from https to plain http")
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    });
    configured(
        reqwest::Client::builder()
            .read_timeout(Duration::from_secs(30))
            .redirect(redirects),
    )
}

/// `builder` with tether's user agent, TLS trust and proxies.
fn configured(builder: reqwest::ClientBuilder) -> reqwest::Client {
    let mut builder = builder
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .use_preconfigured_tls((*trust::client_config()).clone())
        .no_proxy();
    // One custom proxy per scheme, each with that scheme's credentials: the decision is
    // `net::proxy::route`, the same one the relay WebSocket follows.
    for scheme in ["http", "https"] {
        let auth = proxy::credentials_for_scheme(scheme);
        let mut rule = reqwest::Proxy::custom(move |url| {
            if url.scheme() != scheme {
                return None;
            }
            proxy::route(url).map(|hop| hop.uri.to_string())
        });
        if let Some(auth) = auth {
            rule = rule.custom_http_auth(auth);
        }
        builder = builder.proxy(rule);
    }
    builder.build().unwrap_or_else(|e| {
        tracing::warn!("cannot build the HTTP client ({e}): using defaults");
        reqwest::Client::new()
    })
}

/// A client for `http://127.0.0.1` services on this machine: never through a proxy.
pub fn local_http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}
