//! Deterministic `.tar.gz` bundles: sorted entries, uid/gid 0, normalised modes, a fixed
//! mtime, and a gzip header without name or time. The same inputs give the same bytes.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use anyhow::Context;
use flate2::{Compression, GzBuilder};

/// A file to put into a bundle.
#[derive(Debug, Clone)]
pub struct BundleFile {
    /// Path under the top directory, e.g. `bin/tether`.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
    /// Packed as `0755` when true, else `0644`.
    pub executable: bool,
}

/// What kind of entry an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A link, device or anything else a bundle must not hold.
    Other,
}

/// One entry read back from an archive.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    /// Full path inside the archive, without a trailing slash.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Kind of entry.
    pub kind: EntryKind,
    /// Contents (files only).
    pub bytes: Vec<u8>,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
}

/// Packs `files` under `top/` into gzip-compressed tar bytes, every entry stamped `mtime`.
pub fn pack(top: &str, files: &[BundleFile], mtime: u64) -> anyhow::Result<Vec<u8>> {
    let mut dirs = BTreeSet::from([top.to_string()]);
    for file in files {
        let mut parent = std::path::Path::new(&file.path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(format!("{top}/{}", p.display()));
            parent = p.parent();
        }
    }
    let mut entries: Vec<(String, Option<&BundleFile>)> =
        dirs.into_iter().map(|d| (d, None)).collect();
    entries.extend(files.iter().map(|f| (format!("{top}/{}", f.path), Some(f))));
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    // No file name and mtime 0 in the gzip header: nothing about this run leaks into the bytes.
    let gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, file) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        header.set_mtime(mtime);
        match file {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())
                    .with_context(|| format!("packing {path}/"))?;
            }
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if file.executable { 0o755 } else { 0o644 });
                header.set_size(file.bytes.len() as u64);
                tar.append_data(&mut header, &path, file.bytes.as_slice())
                    .with_context(|| format!("packing {path}"))?;
            }
        }
    }
    let mut gz = tar.into_inner().context("finishing the tar stream")?;
    gz.flush()?;
    gz.finish().context("finishing the gzip stream")
}

/// Reads every entry of a `.tar.gz`.
pub fn read(bytes: &[u8]) -> anyhow::Result<Vec<ArchiveEntry>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for entry in archive
        .entries()
        .context("not a gzip-compressed tar archive")?
    {
        let mut entry = entry.context("corrupt archive entry")?;
        let path = entry
            .path()
            .context("entry with an unreadable path")?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            _ => EntryKind::Other,
        };
        let mode = entry.header().mode().unwrap_or(0);
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut bytes = Vec::new();
        if kind == EntryKind::File {
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {path}"))?;
        }
        out.push(ArchiveEntry {
            path,
            mode,
            kind,
            bytes,
            mtime,
        });
    }
    Ok(out)
}

/// The `.sha256` sidecar line: `<hex>  <file name>`, as `sha256sum -c` reads it.
pub fn sidecar_line(archive_bytes: &[u8], file_name: &str) -> String {
    format!(
        "{}  {file_name}\n",
        crate::bundle::digest::sha256_hex(archive_bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<BundleFile> {
        vec![
            BundleFile {
                path: "lib/tether-ptyd".into(),
                bytes: b"ptyd".to_vec(),
                executable: true,
            },
            BundleFile {
                path: "bin/tether".into(),
                bytes: b"cli".to_vec(),
                executable: true,
            },
            BundleFile {
                path: "README.md".into(),
                bytes: b"readme".to_vec(),
                executable: false,
            },
        ]
    }

    #[test]
    fn packing_is_deterministic_and_order_independent() {
        let a = pack("top", &files(), 1_700_000_000).expect("pack");
        let mut reversed = files();
        reversed.reverse();
        let b = pack("top", &reversed, 1_700_000_000).expect("pack");
        assert_eq!(a, b);
        assert_ne!(
            a,
            pack("top", &files(), 1_700_000_001).expect("pack"),
            "mtime must be the one given"
        );
    }

    #[test]
    fn entries_are_sorted_with_owner_root_and_normalised_modes() {
        let bytes = pack("top", &files(), 1).expect("pack");
        let entries = read(&bytes).expect("read");
        let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "top",
                "top/README.md",
                "top/bin",
                "top/bin/tether",
                "top/lib",
                "top/lib/tether-ptyd"
            ]
        );
        let modes: Vec<_> = entries.iter().map(|e| e.mode).collect();
        assert_eq!(modes, [0o755, 0o644, 0o755, 0o755, 0o755, 0o755]);
        let mut raw = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        for entry in raw.entries().expect("entries") {
            let header = entry.expect("entry").header().clone();
            assert_eq!(
                (header.uid().expect("uid"), header.gid().expect("gid")),
                (0, 0)
            );
            assert_eq!(header.mtime().expect("mtime"), 1);
        }
    }

    #[test]
    fn gzip_header_carries_no_time_or_name() {
        let bytes = pack("top", &files(), 1).expect("pack");
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip MTIME");
        assert_eq!(bytes[3] & 0x08, 0, "gzip FNAME flag");
    }
}
