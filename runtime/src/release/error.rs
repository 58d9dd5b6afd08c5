//! Why an update was not offered, not installed or not rolled back: one variant per
//! refusal, each saying what to do about it.

use std::path::PathBuf;

/// A step of `tether self-update` that did not happen; nothing installed was touched
/// unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The release server could not be reached, or did not answer 200.
    #[error("cannot download {url}: {detail}")]
    Download {
        /// What was fetched.
        url: String,
        /// Why it failed.
        detail: String,
    },
    /// A body larger than any release (a hostile server may stream without end).
    #[error("{url} is larger than {limit_mib} MiB: not a tether release")]
    TooLarge {
        /// What was fetched.
        url: String,
        /// The limit.
        limit_mib: u64,
    },
    /// The public key compiled into this build does not parse.
    #[error("the release key baked into this build is unusable: {0}")]
    BadKey(String),
    /// `latest.json.minisig` is not a minisign signature.
    #[error("latest.json.minisig is not a minisign signature: {0}")]
    BadSignature(String),
    /// The signature does not verify with the release key.
    #[error("latest.json is not signed by the tether release key: refusing it")]
    Unsigned,
    /// Signed, but not a `latest.json` this build reads.
    #[error("latest.json is not valid: {0}")]
    BadDocument(String),
    /// A version that is not semver.
    #[error("{whose} version {version:?} is not a semver version: {detail}")]
    BadVersion {
        /// `the release's` or `this build's`.
        whose: &'static str,
        /// The text.
        version: String,
        /// The parser's complaint.
        detail: String,
    },
    /// `--version` asked for another version than the server offers.
    #[error("{base} offers tether {offered}, not {wanted}: point TETHER_DOWNLOAD_URL at {wanted}'s release")]
    NotWanted {
        /// The release directory.
        base: String,
        /// What it offers.
        offered: String,
        /// What was asked for.
        wanted: String,
    },
    /// The server offers an older version than the one installed (a frozen mirror).
    #[error("{base} offers tether {offered}, older than this {current}: the release server is behind (a stale mirror?)")]
    Older {
        /// The release directory.
        base: String,
        /// What it offers.
        offered: String,
        /// This build's version.
        current: String,
    },
    /// The release has no archive for this machine.
    #[error("tether {version} has no archive for {target}")]
    NoArchive {
        /// The release's version.
        version: String,
        /// This build's target.
        target: String,
    },
    /// The archive's bytes are not the ones `latest.json` names.
    #[error("{url} does not match latest.json (sha256 {actual}, expected {expected})")]
    Checksum {
        /// The archive's URL.
        url: String,
        /// Its sha256.
        actual: String,
        /// The sha256 in `latest.json`.
        expected: String,
    },
    /// The archive is not a well-formed bundle of this version for this target.
    #[error("{0}")]
    Archive(String),
    /// A file could not be staged, swapped or locked; what was swapped went back.
    #[error("cannot {action} {}: {source}", .path.display())]
    Files {
        /// `stage a new`, `replace`, `roll back`, `open`, `lock`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// `--rollback` with no `.old` beside a binary.
    #[error("no previous version to roll back to: {} is missing", .0.display())]
    NoPrevious(PathBuf),
    /// Asked to replace no file at all.
    #[error("nothing to replace")]
    Nothing,
}
