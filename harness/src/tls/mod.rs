//! TLS for the reference servers: the harness's private PKI ([`pki`]) and serving over
//! it ([`accept`]).

pub mod accept;
pub mod pki;

pub use pki::{pki, pki_with, Pki, Tls};

/// An HTTP client for the harness itself: trusts the harness CA, ignores proxy variables,
/// follows no redirects.
pub fn http_client(timeout: Option<std::time::Duration>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    // The names only the reference proxy resolves: the harness reaches them directly.
    for name in ["tether.test", "api.tether.test", "relay.tether.test"] {
        builder = builder.resolve(name, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    if let Ok(pki) = pki() {
        if let Ok(cert) = reqwest::Certificate::from_der(pki.ca_der().as_ref()) {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().unwrap_or_default()
}
