//! The release public key a build bakes into `tether`: `keys/release.pub`, or for a test
//! build the file `TETHER_RELEASE_PUBKEY` names (the runtime's build script reads the same).

use std::path::PathBuf;

use anyhow::Context;

use super::archive;
use super::manifest::Manifest;
use tether_contract::{bundle_layout as layout, key_file};

/// The environment variable naming a test build's public key file.
pub const TEST_KEY_ENV: &str = "TETHER_RELEASE_PUBKEY";

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseKey {
    /// The base64 line, as baked into `tether`.
    pub base64: String,
    /// Its id, as `minisign` prints it.
    pub id: String,
}

/// `keys/release.pub`: the key every published bundle must trust.
pub fn official() -> anyhow::Result<ReleaseKey> {
    read(crate::flags::project_root().join("keys/release.pub"))
}

/// The key a build made now bakes in: [`TEST_KEY_ENV`]'s file, else [`official`].
pub fn baked() -> anyhow::Result<ReleaseKey> {
    match std::env::var_os(TEST_KEY_ENV) {
        Some(path) => read(PathBuf::from(path)),
        None => official(),
    }
}

/// Reads a minisign public key file.
pub fn read(path: PathBuf) -> anyhow::Result<ReleaseKey> {
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the release public key {}", path.display()))?;
    let base64 = key_file::key_line(&text).unwrap_or_default();
    let id = key_file::key_id(base64)
        .with_context(|| format!("{} is not a minisign public key", path.display()))?;
    Ok(ReleaseKey {
        base64: base64.to_string(),
        id,
    })
}

/// What makes the archive `name` a test build rather than a release: `tether` must hold
/// `key` (`keys/release.pub`) and `manifest.json` must name its id.
pub fn release_problems(name: &str, bytes: &[u8], key: &ReleaseKey) -> Vec<String> {
    let top = name.strip_suffix(".tar.gz").unwrap_or(name);
    let Ok(entries) = archive::read(bytes) else {
        return vec![format!("{name}: (archive): unreadable")];
    };
    let file = |rel: &str| {
        entries
            .iter()
            .find(|e| e.path == format!("{top}/{rel}"))
            .map(|e| e.bytes.as_slice())
    };
    let mut out = Vec::new();
    let manifest: Option<Manifest> =
        file(layout::MANIFEST).and_then(|m| serde_json::from_slice(m).ok());
    let named = manifest.and_then(|m| m.release_key_id);
    if named.as_deref() != Some(key.id.as_str()) {
        out.push(format!(
            "{name}: {}: a test build: its release key is {}, not keys/release.pub's {}",
            layout::MANIFEST,
            named.as_deref().unwrap_or("unnamed"),
            key.id
        ));
    }
    let holds_key = file(layout::CLI.path).is_some_and(|cli| {
        cli.windows(key.base64.len())
            .any(|w| w == key.base64.as_bytes())
    });
    if !holds_key {
        out.push(format!(
            "{name}: {}: does not trust keys/release.pub ({}): not a release build",
            layout::CLI.path,
            key.id
        ));
    }
    out
}
