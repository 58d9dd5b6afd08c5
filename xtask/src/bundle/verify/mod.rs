//! `cargo xtask verify <archive>…`: opens a finished archive and checks that it is a
//! complete, untampered bundle of binaries for the right machine.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::bundle::archive::{self, ArchiveEntry, EntryKind};
use crate::bundle::binary;
use crate::bundle::dependencies::{self, sbom_problems, Crates};
use crate::bundle::digest::sha256_hex;
use crate::bundle::manifest::{bundle_stem, Manifest};
use crate::targets::{self, Target};
use tether_contract::bundle_layout as layout;

/// One row of the summary table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Path inside the bundle.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Architecture, or `-`.
    pub arch: String,
    /// `static`, `dynamic (GLIBC_2.28)`, or `-`.
    pub linkage: String,
    /// SHA-256, hex.
    pub sha256: String,
}

/// What verifying one archive found.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per problem: `<archive>: <file>: <what is wrong>`.
    pub problems: Vec<String>,
    /// The files, for the summary table.
    pub rows: Vec<Row>,
    /// Archive size in bytes.
    pub size: u64,
    /// The crates `bin/tether`'s `.dep-v0` lists, when it has a readable one.
    pub cli_crates: Option<Crates>,
}

/// Verifies the archive at `path` and its `.sha256` sidecar beside it.
pub fn verify_path(path: &Path) -> anyhow::Result<Report> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sidecar = std::fs::read_to_string(format!("{}.sha256", path.display())).ok();
    let mut report = verify_bytes(&name, &bytes, sidecar.as_deref());
    let sbom = std::fs::read_to_string(path.with_file_name(dependencies::sbom_name(&name))).ok();
    let sbom = sbom_problems(&name, sbom.as_deref(), report.cli_crates.as_ref());
    report.problems.extend(sbom);
    Ok(report)
}

/// Verifies archive bytes named `name` against its sidecar text, if any.
pub fn verify_bytes(name: &str, bytes: &[u8], sidecar: Option<&str>) -> Report {
    let mut found = Findings {
        archive: name,
        problems: Vec::new(),
    };
    check_sidecar(&mut found, bytes, sidecar);
    let entries = match archive::read(bytes) {
        Ok(entries) => entries,
        Err(e) => {
            found.problem("(archive)", format!("{e:#}"));
            return Report {
                problems: found.problems,
                size: bytes.len() as u64,
                ..Default::default()
            };
        }
    };
    let top = name.strip_suffix(".tar.gz").unwrap_or(name);
    let files = bundle_files(&mut found, top, entries);
    check_layout(&mut found, &files);
    let manifest = read_manifest(&mut found, &files);
    let target = manifest
        .as_ref()
        .and_then(|m| match targets::by_name(&m.target) {
            Ok(target) => Some(target),
            Err(e) => {
                found.problem(layout::MANIFEST, format!("{e}"));
                None
            }
        });
    if let Some(manifest) = &manifest {
        check_manifest(&mut found, manifest, top, &files);
    }
    let mut cli_crates = None;
    let rows = files
        .iter()
        .map(|(rel, entry)| {
            let row = row(&mut found, rel, entry, target.as_ref());
            if layout::BINARIES.iter().any(|b| b.path == rel) {
                let crates = check_dependencies(&mut found, rel, &entry.bytes);
                if rel == layout::CLI.path {
                    cli_crates = crates;
                }
            }
            row
        })
        .collect();
    if let Some(target) = &target {
        check_size(&mut found, bytes.len() as u64, target);
    }
    Report {
        problems: found.problems,
        rows,
        size: bytes.len() as u64,
        cli_crates,
    }
}

/// The binary's `.dep-v0` is there and lists only crates of `Cargo.lock`; returns the list.
fn check_dependencies(found: &mut Findings<'_>, rel: &str, binary: &[u8]) -> Option<Crates> {
    let crates = match dependencies::embedded(binary) {
        Ok(crates) => crates,
        Err(why) => {
            found.problem(rel, why);
            return None;
        }
    };
    match dependencies::locked() {
        Ok(lock) => {
            for what in dependencies::against_lock(&crates, lock) {
                found.problem(rel, what);
            }
        }
        Err(e) => found.problem("(Cargo.lock)", format!("{e:#}")),
    }
    Some(crates)
}

/// The problems found in one archive so far.
struct Findings<'a> {
    archive: &'a str,
    problems: Vec<String>,
}

impl Findings<'_> {
    fn problem(&mut self, file: &str, what: String) {
        self.problems
            .push(format!("{}: {file}: {what}", self.archive));
    }
}

/// The `.sha256` sidecar is there and names this archive's hash.
fn check_sidecar(found: &mut Findings<'_>, bytes: &[u8], sidecar: Option<&str>) {
    let name = found.archive;
    let file = format!("{name}.sha256");
    match sidecar {
        None => found.problem(
            &file,
            "missing: every archive ships with its checksum".into(),
        ),
        Some(text) if text != archive::sidecar_line(bytes, name) => found.problem(
            &file,
            format!(
                "does not match the archive (archive sha256 is {})",
                sha256_hex(bytes)
            ),
        ),
        Some(_) => {}
    }
}

/// The regular files under the top directory, by path inside the bundle; anything else
/// (entries outside it, links, devices, stray directories) is a problem.
fn bundle_files(
    found: &mut Findings<'_>,
    top: &str,
    entries: Vec<ArchiveEntry>,
) -> BTreeMap<String, ArchiveEntry> {
    let mut files = BTreeMap::new();
    for entry in entries {
        let Some(rel) = entry
            .path
            .strip_prefix(&format!("{top}/"))
            .map(str::to_string)
        else {
            if entry.path != top {
                found.problem(&entry.path, format!("outside the top directory {top}/"));
            }
            continue;
        };
        match entry.kind {
            EntryKind::Dir => {
                if !layout::DIRECTORIES.contains(&rel.as_str()) {
                    found.problem(&rel, "unexpected directory".into());
                }
            }
            EntryKind::Other => found.problem(
                &rel,
                "not a regular file (links and devices are not allowed)".into(),
            ),
            EntryKind::File => {
                files.insert(rel, entry);
            }
        }
    }
    files
}

/// Every required file is there, nothing unexpected is, and the binaries are executable.
fn check_layout(found: &mut Findings<'_>, files: &BTreeMap<String, ArchiveEntry>) {
    let binaries: Vec<&str> = layout::BINARIES.iter().map(|b| b.path).collect();
    let required = binaries.iter().copied().chain([layout::MANIFEST]);
    for required in required {
        if !files.contains_key(required) {
            found.problem(required, "missing: the bundle is incomplete".into());
        }
    }
    for rel in files.keys() {
        let known = binaries.contains(&rel.as_str())
            || rel == layout::MANIFEST
            || layout::OPTIONAL.contains(&rel.as_str());
        if !known {
            found.problem(rel, "unexpected file".into());
        }
    }
    for bin in binaries {
        if let Some(entry) = files.get(bin) {
            if entry.mode & 0o111 != 0o111 {
                found.problem(bin, format!("not executable (mode {:04o})", entry.mode));
            }
        }
    }
}

fn read_manifest(
    found: &mut Findings<'_>,
    files: &BTreeMap<String, ArchiveEntry>,
) -> Option<Manifest> {
    let entry = files.get(layout::MANIFEST)?;
    match serde_json::from_slice(&entry.bytes) {
        Ok(manifest) => Some(manifest),
        Err(e) => {
            found.problem(layout::MANIFEST, format!("invalid: {e}"));
            None
        }
    }
}

/// The manifest names this archive and lists exactly its files, with their sizes and hashes.
fn check_manifest(
    found: &mut Findings<'_>,
    m: &Manifest,
    top: &str,
    files: &BTreeMap<String, ArchiveEntry>,
) {
    let stem = bundle_stem(&m.version, &m.target);
    if stem != top {
        found.problem(
            layout::MANIFEST,
            format!("names {stem}, but the archive is {top}"),
        );
    }
    let listed: BTreeMap<_, _> = m.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for (rel, entry) in files.iter().filter(|(rel, _)| *rel != layout::MANIFEST) {
        let Some(f) = listed.get(rel.as_str()) else {
            found.problem(rel, "not listed in manifest.json".into());
            continue;
        };
        let actual = sha256_hex(&entry.bytes);
        if f.sha256 != actual {
            let what = format!(
                "sha256 {} does not match manifest.json's {}",
                &actual[..12],
                short(&f.sha256)
            );
            found.problem(rel, what);
        }
        if f.size != entry.bytes.len() as u64 {
            let what = format!(
                "size {} does not match manifest.json's {}",
                entry.bytes.len(),
                f.size
            );
            found.problem(rel, what);
        }
    }
    for path in listed.keys().filter(|p| !files.contains_key(**p)) {
        found.problem(
            path,
            "listed in manifest.json but not in the archive".into(),
        );
    }
}

/// The summary row of one file; a binary is also checked against `target`.
fn row(found: &mut Findings<'_>, rel: &str, entry: &ArchiveEntry, target: Option<&Target>) -> Row {
    let mut row = Row {
        path: rel.to_string(),
        size: entry.bytes.len() as u64,
        arch: "-".into(),
        linkage: "-".into(),
        sha256: sha256_hex(&entry.bytes),
    };
    if !layout::BINARIES.iter().any(|b| b.path == rel) {
        return row;
    }
    let Some(facts) = binary::inspect(&entry.bytes) else {
        found.problem(rel, "not an executable binary".into());
        return row;
    };
    row.arch = facts
        .arch
        .map(|a| a.name().to_string())
        .unwrap_or_else(|| facts.machine.clone());
    row.linkage = match facts.max_glibc {
        Some((major, minor)) => format!("{} (GLIBC_{major}.{minor})", facts.linkage()),
        None => facts.linkage().to_string(),
    };
    for what in target
        .map(|t| binary::problems(&facts, t))
        .unwrap_or_default()
    {
        found.problem(rel, what);
    }
    row
}

/// The archive fits the target's size budget.
fn check_size(found: &mut Findings<'_>, size: u64, target: &Target) {
    let budget = targets::size_budget(target);
    if size > budget {
        let what = format!(
            "{} is over the {} size budget for {}",
            mib(size),
            mib(budget),
            target.name
        );
        found.problem("(archive)", what);
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// Bytes as MiB with two decimals.
pub fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Prints the summary table of a verified archive.
pub fn print_table(report: &Report) {
    println!(
        "{:<18} {:>10}  {:<8} {:<22} sha256",
        "artifact", "size", "arch", "linkage"
    );
    for row in &report.rows {
        println!(
            "{:<18} {:>10}  {:<8} {:<22} {}",
            row.path,
            row.size,
            row.arch,
            row.linkage,
            short(&row.sha256)
        );
    }
}

#[cfg(test)]
mod tests;
