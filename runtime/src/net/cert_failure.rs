//! A certificate the TLS handshake refused, named: which host, what failed and who
//! issued it, so the error says what to fix instead of "invalid peer certificate".

use std::error::Error as StdError;
use std::fmt;

/// What was wrong with a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// No trusted root issued it (a private CA, or a proxy that intercepts TLS).
    UnknownIssuer,
    /// Its validity period is over (or has not begun).
    Expired,
    /// It is valid, but not for the host name that was dialed.
    NameMismatch,
    /// Anything else rustls refused, in its words.
    Other(String),
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertProblem::UnknownIssuer => f.write_str("unknown issuer"),
            CertProblem::Expired => f.write_str("expired"),
            CertProblem::NameMismatch => f.write_str("name mismatch"),
            CertProblem::Other(what) => f.write_str(what),
        }
    }
}

/// A refused server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFailure {
    /// The host name (or IP) that was dialed.
    pub host: String,
    /// What failed.
    pub problem: CertProblem,
    /// The certificate's issuer (RFC 4514), when the certificate could be read.
    pub issuer: Option<String>,
}

impl fmt::Display for CertFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TLS certificate of {} refused: {}",
            self.host, self.problem
        )?;
        if let Some(issuer) = &self.issuer {
            write!(f, " (issuer: {issuer})")?;
        }
        f.write_str("; set SSL_CERT_FILE to your CA bundle")
    }
}

impl StdError for CertFailure {}

impl CertFailure {
    /// Names `error` (a rustls verification error) for `host`, reading the issuer from `cert`.
    pub fn from_rustls(host: &str, error: &rustls::Error, cert: &[u8]) -> CertFailure {
        use rustls::CertificateError as C;
        let problem = match error {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => CertProblem::UnknownIssuer,
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => CertProblem::Expired,
                C::NotValidForName | C::NotValidForNameContext { .. } => CertProblem::NameMismatch,
                other => CertProblem::Other(format!("{other:?}")),
            },
            other => CertProblem::Other(other.to_string()),
        };
        CertFailure {
            host: host.to_string(),
            problem,
            issuer: issuer_of(cert),
        }
    }

    /// Finds a certificate failure anywhere in `error`'s chain (reqwest, hyper, tungstenite
    /// and tokio-rustls wrap it in `io::Error`s, whose `source()` skips the wrapped error).
    pub fn find(error: &(dyn StdError + 'static)) -> Option<CertFailure> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(current) = next {
            if let Some(found) = Self::at(current) {
                return Some(found);
            }
            if let Some(inner) = current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                if let Some(found) = Self::find(inner) {
                    return Some(found);
                }
            }
            next = current.source();
        }
        None
    }

    fn at(error: &(dyn StdError + 'static)) -> Option<CertFailure> {
        if let Some(found) = error.downcast_ref::<CertFailure>() {
            return Some(found.clone());
        }
        match error.downcast_ref::<rustls::Error>()? {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<CertFailure>().cloned()
            }
            _ => None,
        }
    }
}

/// The certificate's issuer as an RFC 4514 string, if it parses.
pub fn issuer_of(cert: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(cert).ok()?;
    Some(cert.tbs_certificate.issuer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_host_problem_issuer_and_the_hint() {
        let failure = CertFailure {
            host: "api.example.com".into(),
            problem: CertProblem::UnknownIssuer,
            issuer: Some("CN=Corp Root".into()),
        };
        assert_eq!(
            failure.to_string(),
            "TLS certificate of api.example.com refused: unknown issuer (issuer: CN=Corp Root); set SSL_CERT_FILE to your CA bundle"
        );
    }

    #[test]
    fn a_failure_is_found_inside_io_errors_and_rustls_errors() {
        let failure = CertFailure {
            host: "h".into(),
            problem: CertProblem::Expired,
            issuer: None,
        };
        let rustls_error = rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
            rustls::OtherError(std::sync::Arc::new(failure.clone())),
        ));
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls_error);
        let outer = std::io::Error::other(io);
        assert_eq!(CertFailure::find(&outer), Some(failure));
        let plain = std::io::Error::other("connection refused");
        assert_eq!(CertFailure::find(&plain), None);
    }
}
