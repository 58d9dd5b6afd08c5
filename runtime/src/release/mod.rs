//! Releases as the running binary sees them: the public key baked in at build time, and
//! `self-update`'s parts — the signed `latest.json`, the downloaded archive checked
//! against it, and the binaries replaced by rename (contract section 8).

mod error;
pub(crate) mod latest;
pub(crate) mod package_manager;
pub(crate) mod replace;
pub(crate) mod unpack;
pub(crate) mod update;

pub use error::ReleaseError;
pub use latest::{judge, Latest, Verdict};
pub use replace::old as kept_old;
pub use update::{install, offer, Installed, Offer, Source};

/// Where releases are fetched from when `TETHER_DOWNLOAD_URL` is unset: baked in by the
/// release build (`TETHER_DEFAULT_DOWNLOAD_URL`); empty in other builds.
pub const DEFAULT_DOWNLOAD_URL: &str = env!("TETHER_DEFAULT_DOWNLOAD_URL");

/// The release target name (`linux-x64`, …) of a Rust target triple.
pub fn target_name(triple: &str) -> Option<&'static str> {
    tether_contract::release_targets::of_triple(triple).map(|t| t.name)
}

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
        let line = tether_contract::key_file::key_line(file);
        assert_eq!(
            line,
            Some("RWTjsyvCg5nxbNfTLkImcYbMZeDKTpQPfjt2MgTcUYGnRFQfeK97/ix5")
        );
        assert_eq!(
            line.and_then(tether_contract::key_file::key_id).as_deref(),
            Some("6CF19983C22BB3E3")
        );
        assert_eq!(tether_contract::key_file::key_id("bm90IGEga2V5"), None);
        assert_eq!(
            tether_contract::key_file::key_id(PUBLIC_KEY).as_deref(),
            Some(KEY_ID)
        );
    }

    #[test]
    fn each_shipped_triple_has_its_target_name() {
        assert_eq!(target_name("x86_64-unknown-linux-musl"), Some("linux-x64"));
        assert_eq!(
            target_name("aarch64-unknown-linux-gnu"),
            Some("linux-arm64")
        );
        assert_eq!(target_name("aarch64-apple-darwin"), Some("darwin-arm64"));
        assert_eq!(target_name("x86_64-apple-darwin"), Some("darwin-x64"));
        assert_eq!(target_name("riscv64gc-unknown-linux-gnu"), None);
    }
}
