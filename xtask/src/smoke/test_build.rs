//! The smoke's test build: a copy of the bundle under test whose `tether` trusts the
//! smoke's key instead of `keys/release.pub`. The baked key is a 56-character base64 line
//! (`release::PUBLIC_KEY`), so it is swapped in place in the release binary — found exactly
//! once, same length — and the manifest rewritten; the copy is verified like any bundle.
//! The update steps thus run the binaries that ship, without a second release build
//! (which cost 80 s of every smoke, cold or warm: a fresh key rebuilt the runtime).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};

use crate::bundle::archive::{self, BundleFile, EntryKind};
use crate::bundle::dependencies::sbom_name;
use crate::bundle::manifest::{describe, Manifest};
use crate::bundle::release_key::ReleaseKey;
use crate::targets;
use tether_contract::bundle_layout as layout;

/// Writes into `out_dir` a copy of the bundle `archive` whose `tether` trusts `to` instead
/// of `from` (the key the bundle was built with); returns the copy's path.
pub(super) fn rekeyed(
    archive: &Path,
    from: &ReleaseKey,
    to: &ReleaseKey,
    out_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let name = archive
        .file_name()
        .context("the archive has no file name")?
        .to_string_lossy()
        .into_owned();
    let bytes =
        std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let top = name.strip_suffix(".tar.gz").unwrap_or(&name);
    let mut described: Option<Manifest> = None;
    let mut mtime = 0;
    let mut files = Vec::new();
    for entry in archive::read(&bytes)? {
        let Some(path) = entry.path.strip_prefix(&format!("{top}/")) else {
            continue;
        };
        if path == layout::MANIFEST {
            described = Some(serde_json::from_slice(&entry.bytes).context("manifest.json")?);
            continue;
        }
        if entry.kind != EntryKind::File {
            continue;
        }
        mtime = entry.mtime;
        files.push(BundleFile {
            path: path.to_string(),
            bytes: entry.bytes,
            executable: entry.mode & 0o111 != 0,
        });
    }
    let described = described.with_context(|| format!("{name} has no manifest.json"))?;
    ensure!(
        described.release_key_id.as_deref() == Some(from.id.as_str()),
        "{name} was built with the key {:?}, not {}: rebuild it with `cargo xtask dist`",
        described.release_key_id,
        from.id
    );
    let target = targets::by_name(&described.target)?;
    let cli = files
        .iter_mut()
        .find(|file| file.path == layout::CLI.path)
        .with_context(|| format!("{name} has no {}", layout::CLI.path))?;
    cli.bytes =
        swap_key(&cli.bytes, from, to).with_context(|| format!("{name}: {}", layout::CLI.path))?;
    let manifest = describe(
        &described.version,
        &target,
        &described.git_sha,
        &to.id,
        &files,
    );
    files.push(BundleFile {
        path: layout::MANIFEST.into(),
        bytes: serde_json::to_vec_pretty(&manifest)?,
        executable: false,
    });
    let packed = archive::pack(top, &files, mtime)?;
    let sbom_path = archive.with_file_name(sbom_name(&name));
    let sbom = std::fs::read_to_string(&sbom_path)
        .with_context(|| format!("cannot read the SBOM {}", sbom_path.display()))?;
    crate::dist::write_verified(out_dir, &name, &packed, &sbom)?;
    Ok(out_dir.join(name))
}

/// `binary` with the baked key `from` replaced by `to`; refuses unless `from` occurs
/// exactly once and both are the same length.
fn swap_key(binary: &[u8], from: &ReleaseKey, to: &ReleaseKey) -> anyhow::Result<Vec<u8>> {
    let (old, new) = (from.base64.as_bytes(), to.base64.as_bytes());
    ensure!(
        old.len() == new.len() && !old.is_empty(),
        "the keys differ in length ({} and {} bytes)",
        old.len(),
        new.len()
    );
    let mut found = binary
        .windows(old.len())
        .enumerate()
        .filter(|(_, window)| *window == old)
        .map(|(at, _)| at);
    let (Some(at), None) = (found.next(), found.next()) else {
        bail!(
            "the key {} is not baked in exactly once, so it cannot be swapped",
            from.id
        );
    };
    let mut out = binary.to_vec();
    out[at..at + new.len()].copy_from_slice(new);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(base64: &str) -> ReleaseKey {
        ReleaseKey {
            base64: base64.into(),
            id: "id".into(),
        }
    }

    #[test]
    fn the_key_is_swapped_where_it_was_baked() {
        let binary = b"\x7fELF..RWQold-key..rest".to_vec();
        let out = swap_key(&binary, &key("RWQold-key"), &key("RWQnew-key")).unwrap();
        assert_eq!(out, b"\x7fELF..RWQnew-key..rest");
    }

    #[test]
    fn a_key_missing_twice_baked_or_of_another_length_is_refused() {
        let (old, new) = (key("RWQold-key"), key("RWQnew-key"));
        assert!(swap_key(b"no key here", &old, &new).is_err());
        assert!(swap_key(b"RWQold-key RWQold-key", &old, &new).is_err());
        assert!(swap_key(b"RWQold-key", &old, &key("RWQlonger-key")).is_err());
    }
}
