//! The one TLS client configuration of a tether process: the OS's trust store plus
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`, the Mozilla roots only where the OS has none
//! (a `FROM scratch` image), and a verifier that names every refusal
//! ([`CertFailure`]). Built once; the HTTP client and the relay WebSocket share it.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::cert_failure::CertFailure;

/// Where the trusted roots came from while building the configuration.
#[derive(Default)]
struct TrustSources {
    /// Roots read from the OS store.
    os: usize,
    /// Roots read from `SSL_CERT_FILE` / `SSL_CERT_DIR`.
    env: usize,
    /// Files that could not be read or parsed, with why.
    problems: Vec<String>,
}

struct Trust {
    config: Arc<ClientConfig>,
}

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(build)
}

/// The shared client configuration (no ALPN: HTTP/1.1 for the API, and the relay's
/// WebSocket upgrade needs HTTP/1.1 too).
pub fn client_config() -> Arc<ClientConfig> {
    trust().config.clone()
}

fn build() -> Trust {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let mut sources = TrustSources::default();

    let env_file = env_path("SSL_CERT_FILE");
    let env_dir = env_path("SSL_CERT_DIR");
    if env_file.is_some() || env_dir.is_some() {
        let loaded =
            rustls_native_certs::load_certs_from_paths(env_file.as_deref(), env_dir.as_deref());
        sources.env = add_all(&mut roots, loaded.certs);
        sources
            .problems
            .extend(loaded.errors.iter().map(|e| e.to_string()));
        if sources.env == 0 {
            sources.problems.push(format!(
                "no certificate in {}",
                [env_file, env_dir]
                    .iter()
                    .flatten()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
    }
    for dir in openssl_probe::candidate_cert_dirs() {
        let loaded = rustls_native_certs::load_certs_from_paths(None, Some(dir));
        sources.os += add_all(&mut roots, loaded.certs);
    }
    if sources.os == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for problem in &sources.problems {
        tracing::warn!("trusted certificates: {problem}");
    }

    let config = match WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    {
        Ok(verifier) => ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(Arc::new(NamingVerifier { inner: verifier }))
                    .with_no_client_auth()
            }),
        Err(e) => Err(rustls::Error::General(e.to_string())),
    };
    let config = match config {
        Ok(config) => config,
        // Only reachable with an empty root store, which the Mozilla fallback prevents:
        // fall back to those roots alone rather than fail every connection.
        Err(e) => {
            tracing::warn!(
                "cannot build the TLS configuration ({e}): using the Mozilla roots only"
            );
            let mut mozilla = RootCertStore::empty();
            mozilla.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            ClientConfig::builder()
                .with_root_certificates(mozilla)
                .with_no_client_auth()
        }
    };
    Trust {
        config: Arc::new(config),
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn add_all(roots: &mut RootCertStore, certs: Vec<CertificateDer<'static>>) -> usize {
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    added
}

/// WebPKI verification whose refusals carry a [`CertFailure`].
#[derive(Debug)]
struct NamingVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for NamingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| {
                let host = server_name.to_str();
                let failure = CertFailure::from_rustls(&host, &e, end_entity);
                rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    rustls::OtherError(Arc::new(failure)),
                ))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
