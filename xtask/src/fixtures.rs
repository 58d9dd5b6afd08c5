//! Test helpers: the sample binaries in `fixtures/bin/`, and bundles made of them.

use std::path::PathBuf;

use crate::bundle::archive::{pack, BundleFile};
use crate::bundle::manifest::describe;

/// Path of a sample binary.
pub fn fixture_path(name: &str) -> PathBuf {
    crate::flags::project_root().join("fixtures/bin").join(name)
}

/// Bytes of a sample binary.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A linux-x64 bundle's files made of sample binaries (without `lib/tether-ptyd` when `ptyd` is `None`).
pub fn bundle_files(ptyd: Option<Vec<u8>>) -> Vec<BundleFile> {
    let bin = |path: &str, bytes: Vec<u8>| BundleFile {
        path: path.into(),
        bytes,
        executable: true,
    };
    let mut files = vec![
        bin("bin/tether", fixture("static-x86_64")),
        bin("lib/tether-host", fixture("static-x86_64")),
        BundleFile {
            path: "README.md".into(),
            bytes: b"# tether\n".to_vec(),
            executable: false,
        },
    ];
    if let Some(bytes) = ptyd {
        files.push(bin("lib/tether-ptyd", bytes));
    }
    files
}

/// Packs `files` as `tether-<version>-linux-x64` with a manifest describing `described`
/// (normally the same files).
pub fn bundle_archive(version: &str, files: &[BundleFile], described: &[BundleFile]) -> Vec<u8> {
    pack_described(version, "6CF19983C22BB3E3", files, described)
}

/// Like [`bundle_archive`], with a manifest naming release key `key_id`.
pub fn bundle_archive_with_key(version: &str, key_id: &str, files: &[BundleFile]) -> Vec<u8> {
    pack_described(version, key_id, files, files)
}

fn pack_described(
    version: &str,
    key_id: &str,
    files: &[BundleFile],
    described: &[BundleFile],
) -> Vec<u8> {
    let target = crate::targets::by_name("linux-x64").expect("target");
    let manifest = describe(version, &target, "abc123def456", key_id, described);
    let mut all = files.to_vec();
    all.push(BundleFile {
        path: "manifest.json".into(),
        bytes: serde_json::to_vec_pretty(&manifest).expect("json"),
        executable: false,
    });
    pack(&format!("tether-{version}-linux-x64"), &all, 1).expect("pack")
}
