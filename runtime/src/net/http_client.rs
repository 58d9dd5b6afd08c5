//! The HTTP clients: one for the API (shared TLS trust, proxies from the environment,
//! bounded timeouts, no redirects) and one for this machine's own loopback services.

use std::time::Duration;

use super::{proxy, trust};

/// The client every API call uses.
pub fn http_client() -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("tether/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
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
