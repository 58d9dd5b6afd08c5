//! `manifest.json`: what a bundle holds, written once by `dist` and read by `verify`.

use serde::{Deserialize, Serialize};

/// The bundle manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always `tether`.
    pub name: String,
    /// The workspace version.
    pub version: String,
    /// The `--target` name, e.g. `linux-x64`.
    pub target: String,
    /// The Rust target triple.
    pub triple: String,
    /// The commit the bundle was built from.
    pub git_sha: String,
    /// The id of the release public key baked into `tether` (`keys/release.pub`'s in a
    /// release; another in a test build, which `verify --release` refuses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_key_id: Option<String>,
    /// Every file in the bundle but the manifest itself, sorted by path.
    pub files: Vec<ManifestFile>,
}

/// One file of the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Path inside the bundle's top directory, e.g. `lib/tether-ptyd`.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// `elf`, `mach-o` or `text`.
    pub format: String,
    /// `x86_64` / `aarch64` for binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// `static` or `dynamic` for binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkage: Option<String>,
}

/// The manifest inside archive `bytes` (the first `*/manifest.json`).
pub fn in_archive(bytes: &[u8]) -> anyhow::Result<Manifest> {
    let entry = crate::bundle::archive::read(bytes)?
        .into_iter()
        .find(|e| {
            e.path
                .ends_with(&format!("/{}", tether_contract::bundle_layout::MANIFEST))
        })
        .ok_or_else(|| anyhow::anyhow!("the archive has no manifest.json"))?;
    Ok(serde_json::from_slice(&entry.bytes)?)
}

/// The name of the bundle's top directory and archive stem: `tether-<version>-<target>`.
pub fn bundle_stem(version: &str, target: &str) -> String {
    format!("tether-{version}-{target}")
}

/// Builds the manifest of `files` for `target`, reading each binary's facts from its bytes.
pub fn describe(
    version: &str,
    target: &crate::targets::Target,
    git_sha: &str,
    release_key_id: &str,
    files: &[crate::bundle::archive::BundleFile],
) -> Manifest {
    let mut described: Vec<ManifestFile> = files
        .iter()
        .map(|file| {
            let facts = crate::bundle::binary::inspect(&file.bytes);
            ManifestFile {
                path: file.path.clone(),
                size: file.bytes.len() as u64,
                sha256: crate::bundle::digest::sha256_hex(&file.bytes),
                format: facts
                    .as_ref()
                    .map(|f| f.format.name())
                    .unwrap_or("text")
                    .to_string(),
                arch: facts
                    .as_ref()
                    .and_then(|f| f.arch)
                    .map(|a| a.name().to_string()),
                linkage: facts.as_ref().map(|f| f.linkage().to_string()),
            }
        })
        .collect();
    described.sort_by(|a, b| a.path.cmp(&b.path));
    Manifest {
        name: "tether".into(),
        version: version.into(),
        target: target.name.into(),
        triple: target.triple.into(),
        git_sha: git_sha.into(),
        release_key_id: Some(release_key_id.into()),
        files: described,
    }
}
