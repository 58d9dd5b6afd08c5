//! `tether doctor`'s look at a server: how it is reached (direct or which proxy), and
//! the TLS version and certificate issuer it presents, or the named failure.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde::Serialize;

use super::cert_failure::{issuer_of, CertFailure};
use super::{proxy, stream, trust};

/// What a TLS handshake with a server showed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// The URL probed.
    pub url: String,
    /// "direct" or "proxy http://host:port".
    pub route: String,
    /// `TLSv1_3`, `TLSv1_2`, or `None` for plaintext or a failure.
    pub tls_version: Option<String>,
    /// The server certificate's issuer.
    pub issuer: Option<String>,
    /// Why the connection or handshake failed.
    pub error: Option<String>,
    /// Whether the failure was a refused certificate.
    pub tls_error: bool,
}

/// Connects to `url` the way tether would and reports what it saw.
pub async fn probe(url: &str) -> Probe {
    let mut report = Probe {
        url: url.to_string(),
        route: "direct".into(),
        tls_version: None,
        issuer: None,
        error: None,
        tls_error: false,
    };
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => {
            report.error = Some(format!("not a URL: {e}"));
            return report;
        }
    };
    report.route = proxy::describe(proxy::route(&parsed).as_ref());
    let (tcp, _) = match stream::connect(&parsed).await {
        Ok(connected) => connected,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    if !matches!(parsed.scheme(), "https" | "wss") {
        return report;
    }
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        report.error = Some(format!("{host} is not a valid TLS server name"));
        return report;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&trust::client_config()));
    match tokio::time::timeout(stream::CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Err(_) => report.error = Some("TLS handshake timed out".into()),
        Ok(Err(e)) => match CertFailure::find(&e) {
            Some(failure) => {
                report.issuer = failure.issuer.clone();
                report.error = Some(failure.to_string());
                report.tls_error = true;
            }
            None => report.error = Some(format!("TLS handshake failed: {e}")),
        },
        Ok(Ok(tls)) => {
            let (_, session) = tls.get_ref();
            report.tls_version = session.protocol_version().map(|v| format!("{v:?}"));
            report.issuer = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| issuer_of(cert));
        }
    }
    report
}
