//! TLS for the reference servers: the harness's private PKI ([`pki`]) and serving over
//! it ([`accept`]).

pub mod accept;
pub mod pki;

pub use pki::{pki, pki_with, Pki, Tls};

/// An HTTP client for the harness itself: trusts [`client_config`]'s roots, ignores proxy variables,
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
    builder
        .use_preconfigured_tls((*client_config()).clone())
        .build()
        .unwrap_or_default()
}

/// The harness's own TLS client trust: the OS store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`,
/// for a deployment with a private CA) plus the harness CA. Read from disk once: every
/// relay, browser step and server check asks for it.
pub fn client_config() -> std::sync::Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ClientConfig>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| std::sync::Arc::new(build_client_config()))
        .clone()
}

fn build_client_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Ok(pki) = pki() {
        let _ = roots.add(pki.ca_der());
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        // ring always offers the default versions; this arm only satisfies the types.
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    }
}
