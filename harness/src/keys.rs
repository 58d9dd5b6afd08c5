//! Signing keys from `fixtures/keys/`: the authorization server signs with them and
//! publishes their public halves as a JWKS.

use anyhow::Context;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};

/// One signing key and its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, the fixture's file stem.
    pub kid: String,
    /// Signature algorithm.
    pub alg: Algorithm,
    /// Private key.
    pub encoding: EncodingKey,
    /// Public key as a JWK with `kid`.
    pub jwk: Jwk,
}

impl SigningKey {
    /// A JWT of `claims` signed with this key, its `kid` in the header: every token the
    /// harness and the runtime's tests make comes from here.
    pub fn sign(&self, claims: &serde_json::Value) -> anyhow::Result<String> {
        let mut header = jsonwebtoken::Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The fixture keys, built into the binary so the harness runs anywhere (a `FROM scratch` image too).
const EMBEDDED: [(&str, &[u8]); 3] = [
    (
        "rs256-2026a",
        include_bytes!("../../fixtures/keys/rs256-2026a.pem"),
    ),
    (
        "rs256-2026b",
        include_bytes!("../../fixtures/keys/rs256-2026b.pem"),
    ),
    (
        "ed25519-2026c",
        include_bytes!("../../fixtures/keys/ed25519-2026c.pem"),
    ),
];

/// Loads the fixture key `fixtures/keys/<kid>.pem`.
pub fn load(kid: &str) -> anyhow::Result<SigningKey> {
    let pem = EMBEDDED
        .iter()
        .find(|(name, _)| *name == kid)
        .map(|(_, pem)| *pem)
        .with_context(|| format!("no fixture key {kid}"))?;
    let (alg, encoding) = if kid.starts_with("ed25519") {
        (Algorithm::EdDSA, EncodingKey::from_ed_pem(pem)?)
    } else {
        (Algorithm::RS256, EncodingKey::from_rsa_pem(pem)?)
    };
    let mut jwk = Jwk::from_encoding_key(&encoding, alg)?;
    jwk.common.key_id = Some(kid.to_string());
    Ok(SigningKey {
        kid: kid.to_string(),
        alg,
        encoding,
        jwk,
    })
}

/// The first RSA key: what the server signs with unless a test rotates keys.
pub const PRIMARY: &str = "rs256-2026a";
/// The key a rotation switches to.
pub const NEXT: &str = "rs256-2026b";
