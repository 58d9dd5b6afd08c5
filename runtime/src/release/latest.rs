//! `latest.json` and its signature: what a release server says is the newest release,
//! believed only when its minisign signature verifies with the key this build trusts.

pub use tether_contract::latest_json::Latest;

use super::error::ReleaseError;

/// Checks `signature` (a `.minisig` file's text) over `bytes` with the base64 minisign
/// `public_key`, then parses `bytes`; the error says which of the two failed.
pub fn verified(bytes: &[u8], signature: &str, public_key: &str) -> Result<Latest, ReleaseError> {
    let key = minisign_verify::PublicKey::from_base64(public_key)
        .map_err(|e| ReleaseError::BadKey(e.to_string()))?;
    let signature = minisign_verify::Signature::decode(signature)
        .map_err(|e| ReleaseError::BadSignature(e.to_string()))?;
    key.verify(bytes, &signature, false)
        .map_err(|_| ReleaseError::Unsigned)?;
    serde_json::from_slice(bytes).map_err(|e| ReleaseError::BadDocument(e.to_string()))
}

/// What a release's version is to the installed one, by semver precedence (contract
/// section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Newer: offer it.
    Newer,
    /// The installed version.
    Same,
    /// Older than what is installed: the release server is behind (a frozen mirror).
    Older,
    /// A newer pre-release, offered only to pre-release installs or by `--version`.
    PreRelease,
}

/// Compares `candidate` (a release's version) with `current` (this build's).
pub fn judge(candidate: &str, current: &str) -> Result<Verdict, ReleaseError> {
    let parse = |v: &str, whose: &'static str| {
        semver::Version::parse(v).map_err(|e| ReleaseError::BadVersion {
            whose,
            version: v.to_string(),
            detail: e.to_string(),
        })
    };
    let candidate = parse(candidate, "the release's")?;
    let current = parse(current, "this build's")?;
    Ok(match candidate.cmp_precedence(&current) {
        std::cmp::Ordering::Equal => Verdict::Same,
        std::cmp::Ordering::Less => Verdict::Older,
        std::cmp::Ordering::Greater if !candidate.pre.is_empty() && current.pre.is_empty() => {
            Verdict::PreRelease
        }
        std::cmp::Ordering::Greater => Verdict::Newer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_semver_precedence() {
        let cases = [
            ("0.10.0", "0.9.1", Verdict::Newer),
            ("1.0.0", "0.99.99", Verdict::Newer),
            ("0.1.0", "0.1.0", Verdict::Same),
            ("0.1.0+build.7", "0.1.0", Verdict::Same),
            ("0.1.0", "0.2.0", Verdict::Older),
            ("0.2.0-rc.1", "0.2.0", Verdict::Older),
            ("0.3.0-rc.1", "0.2.0", Verdict::PreRelease),
            ("0.2.0-rc.2", "0.2.0-rc.1", Verdict::Newer),
            ("0.2.0-rc.10", "0.2.0-rc.9", Verdict::Newer),
            ("0.2.0", "0.2.0-rc.1", Verdict::Newer),
        ];
        for (candidate, current, want) in cases {
            assert_eq!(
                judge(candidate, current).ok(),
                Some(want),
                "{candidate} vs {current}"
            );
        }
        assert!(judge("latest", "0.1.0").is_err());
    }

    #[test]
    fn an_unsigned_or_garbled_document_is_refused() {
        let key = "RWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5";
        let refused = verified(b"{}", "not a signature", key);
        assert!(
            matches!(refused, Err(ReleaseError::BadSignature(_))),
            "{refused:?}"
        );
    }
}
