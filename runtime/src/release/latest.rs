//! `latest.json` and its signature: what a release server says is the newest release,
//! believed only when its minisign signature verifies with the key this build trusts.

pub use super::latest_json::{Latest, LatestTarget};

/// Checks `signature` (a `.minisig` file's text) over `bytes` with the base64 minisign
/// `public_key`, then parses `bytes`; the error says which of the two failed.
pub fn verified(bytes: &[u8], signature: &str, public_key: &str) -> Result<Latest, String> {
    let key = minisign_verify::PublicKey::from_base64(public_key)
        .map_err(|e| format!("the release key baked into this build is unusable: {e}"))?;
    let signature = minisign_verify::Signature::decode(signature)
        .map_err(|e| format!("latest.json.minisig is not a minisign signature: {e}"))?;
    key.verify(bytes, &signature, false).map_err(|_| {
        "latest.json is not signed by the tether release key: refusing it".to_string()
    })?;
    serde_json::from_slice(bytes).map_err(|e| format!("latest.json is not valid: {e}"))
}

/// Orders dotted versions numerically (`0.10.0` > `0.9.1`); a pre-release suffix sorts by text.
pub fn newer(candidate: &str, current: &str) -> bool {
    let parts = |v: &str| -> Vec<(u64, String)> {
        v.split(['.', '-', '+'])
            .map(|p| (p.parse().unwrap_or(0), p.to_string()))
            .collect()
    };
    parts(candidate) > parts(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(newer("0.10.0", "0.9.1"));
        assert!(newer("1.0.0", "0.99.99"));
        assert!(!newer("0.1.0", "0.1.0"));
        assert!(!newer("0.1.0", "0.2.0"));
    }

    #[test]
    fn an_unsigned_or_garbled_document_is_refused() {
        let key = "RWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5";
        let refused = verified(b"{}", "not a signature", key);
        assert!(refused.is_err_and(|e| e.contains("not a minisign signature")));
    }
}
