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

/// `binary` with a `.dep-v0` section (cargo-auditable's format: zlib-compressed JSON) naming
/// `tether` and `serde` at their `Cargo.lock` versions, added with `objcopy`.
pub fn auditable(binary: &[u8]) -> Vec<u8> {
    let (tether, serde) = (locked_version("tether"), locked_version("serde"));
    auditable_listing(binary, &[("tether", &tether), ("serde", &serde)])
}

/// `binary` with a `.dep-v0` section listing `crates` (the first is the root).
pub fn auditable_listing(binary: &[u8], crates: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let packages: Vec<serde_json::Value> = crates
        .iter()
        .enumerate()
        .map(|(i, (name, version))| {
            serde_json::json!({"name": name, "version": version, "source": "crates.io", "root": i == 0})
        })
        .collect();
    let json = serde_json::json!({ "packages": packages });
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(json.to_string().as_bytes()).expect("zlib");
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, section, output) = (
        dir.path().join("in"),
        dir.path().join("dep-v0"),
        dir.path().join("out"),
    );
    std::fs::write(&input, binary).expect("write");
    std::fs::write(&section, zlib.finish().expect("zlib")).expect("write");
    // The host's objcopy, or the aarch64 one for aarch64 samples (both from .ci/setup).
    let added = ["objcopy", "aarch64-linux-gnu-objcopy"]
        .iter()
        .any(|objcopy| {
            std::process::Command::new(objcopy)
                .arg(format!("--add-section=.dep-v0={}", section.display()))
                .arg("--set-section-flags=.dep-v0=readonly")
                .arg(&input)
                .arg(&output)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    assert!(
        added,
        "objcopy could not add .dep-v0 (bash .ci/setup installs binutils)"
    );
    std::fs::read(&output).expect("read")
}

/// The version of crate `name` in the workspace's `Cargo.lock`.
fn locked_version(name: &str) -> String {
    let lock = crate::bundle::dependencies::locked().expect("Cargo.lock");
    lock.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .expect("locked")
}

/// A minimal CycloneDX SBOM naming what [`auditable`] puts into `.dep-v0`.
pub fn sbom() -> String {
    let version = locked_version;
    serde_json::json!({
        "bomFormat": "CycloneDX", "specVersion": "1.3", "version": 1,
        "metadata": {"component": {"type": "application", "name": "tether", "version": version("tether")}},
        "components": [{"type": "library", "name": "serde", "version": version("serde")}],
    })
    .to_string()
}

/// A linux-x64 bundle's files made of sample binaries (without `lib/tether-ptyd` when `ptyd` is `None`).
pub fn bundle_files(ptyd: Option<Vec<u8>>) -> Vec<BundleFile> {
    let bin = |path: &str, bytes: Vec<u8>| BundleFile {
        path: path.into(),
        bytes,
        executable: true,
    };
    let mut files = vec![
        bin("bin/tether", auditable(&fixture("static-x86_64"))),
        bin("lib/tether-host", auditable(&fixture("static-x86_64"))),
        BundleFile {
            path: "README.md".into(),
            bytes: b"# tether\n".to_vec(),
            executable: false,
        },
    ];
    if let Some(bytes) = ptyd {
        files.push(bin("lib/tether-ptyd", auditable(&bytes)));
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
