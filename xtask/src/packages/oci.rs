//! The container image: an OCI image layout (`oci-layout`, `index.json`, `blobs/`, and
//! Docker's `manifest.json`) in one tar, written here byte for byte — sorted entries, fixed times and owners, gzip without
//! a name or time — so its digest is the same for every build of a commit.

use std::collections::BTreeSet;

use anyhow::Context;
use serde_json::json;

use super::contents::{self, Source, LIB_DIR};
use crate::bundle::digest::sha256_hex;
use crate::targets::Arch;
use tether_contract::bundle_layout as layout;

/// The image's user and group (the "nonroot" id distroless images use).
pub const USER: u32 = 65532;
/// The state directory inside the image, owned by [`USER`].
pub const HOME: &str = "/var/lib/tether";
/// The entry point.
pub fn entrypoint() -> String {
    format!("{LIB_DIR}/{}", layout::HOST.name)
}

/// The OCI name of an architecture.
fn architecture(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Aarch64 => "arm64",
    }
}

/// One entry of a tar written here.
struct Entry {
    path: String,
    /// `None` for a directory.
    bytes: Option<Vec<u8>>,
    mode: u32,
    owner: u32,
}

/// The layer's files: the three binaries, and the state directory the host writes to.
fn layer_entries(source: &Source) -> Vec<Entry> {
    let binaries: Vec<(String, &str)> = contents::installed_binaries()
        .into_iter()
        .map(|(name, path)| (path.trim_start_matches('/').to_string(), name))
        .collect();
    let mut dirs = BTreeSet::new();
    for (path, _) in &binaries {
        let mut parent = std::path::Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.display().to_string());
            parent = p.parent();
        }
    }
    dirs.extend(["var".to_string(), "var/lib".to_string()]);
    let mut entries: Vec<Entry> = dirs
        .into_iter()
        .map(|path| Entry {
            path,
            bytes: None,
            mode: 0o755,
            owner: 0,
        })
        .collect();
    entries.push(Entry {
        path: HOME.trim_start_matches('/').to_string(),
        bytes: None,
        mode: 0o700,
        owner: USER,
    });
    for (path, name) in binaries {
        entries.push(Entry {
            path,
            bytes: Some(source.binaries[name].clone()),
            mode: 0o755,
            owner: 0,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    entries
}

/// A tar of `entries`, every one stamped `mtime`.
fn tar(entries: &[Entry], mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(entry.owner.into());
        header.set_gid(entry.owner.into());
        header.set_mtime(mtime);
        header.set_mode(entry.mode);
        match &entry.bytes {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", entry.path), std::io::empty())
                    .with_context(|| format!("packing {}/", entry.path))?;
            }
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, &entry.path, bytes.as_slice())
                    .with_context(|| format!("packing {}", entry.path))?;
            }
        }
    }
    tar.into_inner().context("finishing a tar stream")
}

/// Builds the image layout tar.
pub fn build(source: &Source) -> anyhow::Result<Vec<u8>> {
    let layer_tar = tar(&layer_entries(source), source.epoch)?;
    let layer = contents::gzip(&layer_tar)?;
    let config = config(source, &layer_tar)?;
    let manifest = manifest(source, &config, &layer)?;
    let index = index(source, &manifest)?;
    // Docker's own `manifest.json` beside the layout, as `docker save` writes it: the
    // engine's classic image store loads by it (the layout alone needs containerd's store).
    let docker_manifest = serde_json::to_vec(&json!([{
        "Config": format!("blobs/sha256/{}", sha256_hex(&config)),
        "RepoTags": [format!("tether:{}", source.version)],
        "Layers": [format!("blobs/sha256/{}", sha256_hex(&layer))],
    }]))?;
    let mut entries = vec![
        Entry {
            path: "manifest.json".into(),
            bytes: Some(docker_manifest),
            mode: 0o644,
            owner: 0,
        },
        Entry {
            path: "blobs".into(),
            bytes: None,
            mode: 0o755,
            owner: 0,
        },
        Entry {
            path: "blobs/sha256".into(),
            bytes: None,
            mode: 0o755,
            owner: 0,
        },
        Entry {
            path: "index.json".into(),
            bytes: Some(index),
            mode: 0o644,
            owner: 0,
        },
        Entry {
            path: "oci-layout".into(),
            bytes: Some(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            mode: 0o644,
            owner: 0,
        },
    ];
    for blob in [config, manifest, layer] {
        entries.push(Entry {
            path: format!("blobs/sha256/{}", sha256_hex(&blob)),
            bytes: Some(blob),
            mode: 0o644,
            owner: 0,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    tar(&entries, source.epoch)
}

/// The image's config: user, entrypoint, environment, labels, and the layer's diff id.
fn config(source: &Source, layer_tar: &[u8]) -> anyhow::Result<Vec<u8>> {
    let created = contents::utc(source.epoch, "+%Y-%m-%dT%H:%M:%SZ");
    Ok(serde_json::to_vec(&json!({
        "created": created,
        "architecture": architecture(source.arch),
        "os": "linux",
        "config": {
            "User": format!("{USER}:{USER}"),
            "Entrypoint": [entrypoint()],
            "Env": [
                format!("PATH=/usr/bin:{LIB_DIR}"),
                format!("TETHER_HOME={HOME}"),
                format!("HOME={HOME}"),
            ],
            "WorkingDir": HOME,
            "Labels": labels(source),
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [format!("sha256:{}", sha256_hex(layer_tar))],
        },
        "history": [{"created": created, "created_by": "cargo xtask dist --formats oci"}],
    }))?)
}

/// The image manifest naming the config and the one layer.
fn manifest(source: &Source, config: &[u8], layer: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", sha256_hex(config)),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{}", sha256_hex(layer)),
            "size": layer.len(),
        }],
        "annotations": labels(source),
    }))?)
}

/// The layout's index: the manifest, its platform and the name Docker and containerd load it as.
fn index(source: &Source, manifest: &[u8]) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", sha256_hex(manifest)),
            "size": manifest.len(),
            "platform": {"architecture": architecture(source.arch), "os": "linux"},
            "annotations": {
                "io.containerd.image.name": format!("docker.io/library/tether:{}", source.version),
                "org.opencontainers.image.ref.name": source.version,
            },
        }],
    }))?)
}

/// The standard OCI annotations: version, commit, source, licence.
fn labels(source: &Source) -> serde_json::Value {
    json!({
        "org.opencontainers.image.title": "tether",
        "org.opencontainers.image.version": source.version,
        "org.opencontainers.image.revision": source.git_sha,
        "org.opencontainers.image.source": contents::HOMEPAGE,
        "org.opencontainers.image.licenses": "MIT",
    })
}
