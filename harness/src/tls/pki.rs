//! The harness's private PKI (rcgen): a CA generated at start, written to a PEM file
//! that `tether` trusts through `SSL_CERT_FILE`, and server certificates in four kinds —
//! good, expired, for another name, and from a CA nobody trusts — so the reference
//! servers speak HTTPS and WSS the way real deployments do, and can fail the way they do.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The names every good certificate covers: loopback, and `*.tether.test` for proxy
/// scenarios (a name only the harness's proxy can resolve).
pub const NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "tether.test",
    "*.tether.test",
];

/// Which certificate a server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain `http://` / `ws://`.
    Off,
    /// Valid, from the harness CA, for [`NAMES`] and any extra names.
    Good,
    /// From the harness CA, but its validity ended yesterday.
    Expired,
    /// From the harness CA, valid, but only for `elsewhere.tether.invalid`.
    WrongName,
    /// Valid for [`NAMES`], but from a second CA that is in no trust store.
    Untrusted,
}

impl Tls {
    /// `https` or `http`.
    pub fn http_scheme(self) -> &'static str {
        if self == Tls::Off {
            "http"
        } else {
            "https"
        }
    }

    /// `wss` or `ws`.
    pub fn ws_scheme(self) -> &'static str {
        if self == Tls::Off {
            "ws"
        } else {
            "wss"
        }
    }
}

/// The generated CA and its PEM file.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    rogue: CertifiedIssuer<'static, KeyPair>,
    ca_file: PathBuf,
    extra_names: Vec<String>,
}

static PKI: OnceLock<Result<Pki, String>> = OnceLock::new();

/// The process's PKI; `extra_names` (e.g. container names for the smoke) and `ca_dir`
/// only count on the first call. With `ca_dir`, the CA key is kept there and reused, so a
/// restarted harness (the same container started again) is trusted by the same CA file.
/// Generated once, under the lock: two generations would leave a CA file that does not
/// match the certificates served.
pub fn pki_with(
    extra_names: &[String],
    ca_dir: Option<&std::path::Path>,
) -> anyhow::Result<&'static Pki> {
    PKI.get_or_init(|| Pki::generate(extra_names, ca_dir).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("cannot set up the harness CA: {e}"))
}

/// The process's PKI.
pub fn pki() -> anyhow::Result<&'static Pki> {
    pki_with(&[], None)
}

/// The CA key in `dir` (made and saved there the first time).
fn ca_key(dir: Option<&std::path::Path>) -> anyhow::Result<KeyPair> {
    let Some(dir) = dir else {
        return Ok(KeyPair::generate()?);
    };
    let path = dir.join("ca-key.pem");
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return KeyPair::from_pem(&pem).with_context(|| format!("{} is not a key", path.display()));
    }
    let key = KeyPair::generate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, key.serialize_pem())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

fn ca_params(name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "tether conformance harness");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

impl Pki {
    fn generate(extra_names: &[String], ca_dir: Option<&std::path::Path>) -> anyhow::Result<Pki> {
        // A trust anchor is its name and key: the same key and name make a CA certificate
        // that verifies what an earlier run's CA signed.
        let ca = CertifiedIssuer::self_signed(ca_params("tether harness CA")?, ca_key(ca_dir)?)?;
        let rogue =
            CertifiedIssuer::self_signed(ca_params("untrusted rogue CA")?, KeyPair::generate()?)?;
        let dir = match ca_dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::temp_dir().join(format!("tether-harness-{}", std::process::id())),
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem())
            .with_context(|| format!("cannot write {}", ca_file.display()))?;
        Ok(Pki {
            ca,
            rogue,
            ca_file,
            extra_names: extra_names.to_vec(),
        })
    }

    /// The CA certificate's PEM file, for `SSL_CERT_FILE`.
    pub fn ca_file(&self) -> &PathBuf {
        &self.ca_file
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A server configuration presenting a certificate of `kind` (`None` for [`Tls::Off`]).
    pub fn server_config(&self, kind: Tls) -> anyhow::Result<Option<Arc<ServerConfig>>> {
        let mut names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        names.extend(self.extra_names.iter().cloned());
        let (issuer, names, expired) = match kind {
            Tls::Off => return Ok(None),
            Tls::Good => (&self.ca, names, false),
            Tls::Expired => (&self.ca, names, true),
            Tls::WrongName => (
                &self.ca,
                vec!["elsewhere.tether.invalid".to_string()],
                false,
            ),
            Tls::Untrusted => (&self.rogue, names, false),
        };
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "tether harness server");
        let now = time_now();
        if expired {
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        } else {
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(30);
        }
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, issuer)?;
        let chain = vec![cert.der().clone(), issuer.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Some(Arc::new(config)))
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
