//! Opening a downloaded release archive: the three binaries it must hold, each checked
//! against the archive's own `manifest.json`, for the version and target expected.

use std::io::Read;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use tether_contract::bundle_layout::{self as layout, BundleBinary};

use super::error::ReleaseError;

/// Largest archive or file accepted (a bundle is about 5 MiB).
const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The binaries of a verified bundle, in [`layout::BINARIES`] order.
#[derive(Debug)]
pub struct NewBinaries {
    /// Each binary with its bytes.
    pub files: Vec<(BundleBinary, Vec<u8>)>,
}

#[derive(Deserialize)]
struct Manifest {
    version: String,
    target: String,
    files: Vec<ManifestFile>,
}

#[derive(Deserialize)]
struct ManifestFile {
    path: String,
    sha256: String,
}

/// Unpacks `archive` (gzip tar) and checks it is `tether-<version>-<target>` with every
/// binary present and matching its manifest entry.
pub fn binaries(archive: &[u8], version: &str, target: &str) -> Result<NewBinaries, ReleaseError> {
    let refuse = |why: String| ReleaseError::Archive(why);
    let top = format!("tether-{version}-{target}");
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar
        .entries()
        .map_err(|e| refuse(format!("the archive is not a tar.gz: {e}")))?;
    let mut wanted: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| refuse(format!("the archive is damaged: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| refuse(format!("the archive is damaged: {e}")))?
            .to_string_lossy()
            .into_owned();
        let Some(rel) = path.strip_prefix(&format!("{top}/")) else {
            continue;
        };
        let rel = rel.to_string();
        let keep = rel == layout::MANIFEST || layout::BINARIES.iter().any(|b| b.path == rel);
        if !keep || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| refuse(format!("cannot read {rel} from the archive: {e}")))?;
        wanted.push((rel, bytes));
    }
    let file = |rel: &str| wanted.iter().find(|(p, _)| p == rel).map(|(_, b)| b);
    let manifest = file(layout::MANIFEST)
        .ok_or_else(|| refuse(format!("the archive has no {top}/{}", layout::MANIFEST)))?;
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| refuse(format!("the archive's manifest.json is not valid: {e}")))?;
    if manifest.version != version || manifest.target != target {
        return Err(refuse(format!(
            "the archive holds tether {} for {}, not {version} for {target}",
            manifest.version, manifest.target
        )));
    }
    let mut files = Vec::new();
    for binary in layout::BINARIES {
        let bytes = file(binary.path).ok_or_else(|| {
            refuse(format!(
                "the archive lacks {}: the bundle is incomplete",
                binary.path
            ))
        })?;
        let listed = manifest.files.iter().find(|f| f.path == binary.path);
        let actual = hex(&Sha256::digest(bytes));
        if listed.map(|f| f.sha256.as_str()) != Some(actual.as_str()) {
            return Err(refuse(format!(
                "{} does not match the archive's manifest.json",
                binary.path
            )));
        }
        files.push((binary, bytes.clone()));
    }
    Ok(NewBinaries { files })
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
