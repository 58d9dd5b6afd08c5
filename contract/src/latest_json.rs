//! `latest.json`'s shape (contract section 8), declared once: `tether self-update` reads
//! it and `cargo xtask sign` writes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `latest.json` (contract section 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    /// The release's version.
    pub version: String,
    /// Each target's archive, by target name (`linux-x64`, …).
    pub targets: BTreeMap<String, LatestTarget>,
}

/// One target's archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestTarget {
    /// Where to download it (absolute, or relative to the download URL).
    pub url: String,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}
