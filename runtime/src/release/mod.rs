//! Releases as the running binary sees them: the public key baked in at build time, and
//! checking what a release server hands out against it.

pub mod key_file;

/// The minisign public key (base64) this build trusts for updates.
pub const PUBLIC_KEY: &str = env!("TETHER_RELEASE_PUBKEY");

/// The id of [`PUBLIC_KEY`], as `minisign` prints it.
pub const KEY_ID: &str = env!("TETHER_RELEASE_KEY_ID");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baked_key_has_the_id_minisign_prints() {
        let file = "untrusted comment: minisign public key 6CF19983C22BB3E3\nRWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5\n";
        let line = key_file::key_line(file);
        assert_eq!(
            line,
            Some("RWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5")
        );
        assert_eq!(
            line.and_then(key_file::key_id).as_deref(),
            Some("6CF19983C22BB3E3")
        );
        assert_eq!(key_file::key_id("bm90IGEga2V5"), None);
        assert_eq!(key_file::key_id(PUBLIC_KEY).as_deref(), Some(KEY_ID));
    }
}
