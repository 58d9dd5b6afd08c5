//! `cargo xtask verify <archive>…`: opens a finished archive and checks that it is a
//! complete, untampered bundle of binaries for the right machine.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use crate::archive::{self, EntryKind};
use crate::binary::{self, Format};
use crate::digest::sha256_hex;
use crate::manifest::{bundle_stem, Manifest};
use crate::targets::{self, Os, Target, ALLOWED_LIBRARIES, GLIBC_FLOOR};

/// Files every bundle must hold.
pub const REQUIRED: [&str; 4] = [
    "bin/tether",
    "lib/tether-host",
    "lib/tether-ptyd",
    "manifest.json",
];
/// The binaries among them.
pub const BINARIES: [&str; 3] = ["bin/tether", "lib/tether-host", "lib/tether-ptyd"];
/// Files a bundle may hold besides the required ones.
pub const OPTIONAL: [&str; 2] = ["README.md", "LICENSE"];

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
}

/// Verifies the archive at `path` and its `.sha256` sidecar beside it.
pub fn verify_path(path: &Path) -> anyhow::Result<Report> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sidecar = std::fs::read_to_string(format!("{}.sha256", path.display())).ok();
    Ok(verify_bytes(&name, &bytes, sidecar.as_deref()))
}

/// Verifies archive bytes named `name` against its sidecar text, if any.
pub fn verify_bytes(name: &str, bytes: &[u8], sidecar: Option<&str>) -> Report {
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut problem = |file: &str, what: String| problems.push(format!("{name}: {file}: {what}"));

    match sidecar {
        None => problem(
            &format!("{name}.sha256"),
            "missing: every archive ships with its checksum".into(),
        ),
        Some(text) if text != archive::sidecar_line(bytes, name) => problem(
            &format!("{name}.sha256"),
            format!(
                "does not match the archive (archive sha256 is {})",
                sha256_hex(bytes)
            ),
        ),
        Some(_) => {}
    }

    let entries = match archive::read(bytes) {
        Ok(entries) => entries,
        Err(e) => {
            problem("(archive)", format!("{e:#}"));
            return Report {
                problems,
                size: bytes.len() as u64,
                ..Default::default()
            };
        }
    };
    let top = name.strip_suffix(".tar.gz").unwrap_or(name).to_string();
    let mut files = BTreeMap::new();
    for entry in entries {
        let Some(rel) = entry
            .path
            .strip_prefix(&format!("{top}/"))
            .map(str::to_string)
        else {
            if entry.path != top {
                problem(&entry.path, format!("outside the top directory {top}/"));
            }
            continue;
        };
        match entry.kind {
            EntryKind::Dir => {
                if !["bin", "lib"].contains(&rel.as_str()) {
                    problem(&rel, "unexpected directory".into());
                }
            }
            EntryKind::Other => problem(
                &rel,
                "not a regular file (links and devices are not allowed)".into(),
            ),
            EntryKind::File => {
                files.insert(rel, entry);
            }
        }
    }

    for required in REQUIRED {
        if !files.contains_key(required) {
            problem(required, "missing: the bundle is incomplete".into());
        }
    }
    for rel in files.keys() {
        if !REQUIRED.contains(&rel.as_str()) && !OPTIONAL.contains(&rel.as_str()) {
            problem(rel, "unexpected file".into());
        }
    }
    for bin in BINARIES {
        if let Some(entry) = files.get(bin) {
            if entry.mode & 0o111 != 0o111 {
                problem(bin, format!("not executable (mode {:04o})", entry.mode));
            }
        }
    }

    let manifest: Option<Manifest> =
        files
            .get("manifest.json")
            .and_then(|m| match serde_json::from_slice(&m.bytes) {
                Ok(manifest) => Some(manifest),
                Err(e) => {
                    problem("manifest.json", format!("invalid: {e}"));
                    None
                }
            });
    let target = manifest
        .as_ref()
        .and_then(|m| match targets::by_name(&m.target) {
            Ok(target) => Some(target),
            Err(e) => {
                problem("manifest.json", format!("{e}"));
                None
            }
        });
    if let Some(m) = &manifest {
        if bundle_stem(&m.version, &m.target) != top {
            problem(
                "manifest.json",
                format!(
                    "names {}, but the archive is {top}",
                    bundle_stem(&m.version, &m.target)
                ),
            );
        }
        let listed: BTreeMap<_, _> = m.files.iter().map(|f| (f.path.as_str(), f)).collect();
        for (rel, entry) in files
            .iter()
            .filter(|(rel, _)| rel.as_str() != "manifest.json")
        {
            match listed.get(rel.as_str()) {
                None => problem(rel, "not listed in manifest.json".into()),
                Some(f) => {
                    let actual = sha256_hex(&entry.bytes);
                    if f.sha256 != actual {
                        problem(
                            rel,
                            format!(
                                "sha256 {} does not match manifest.json's {}",
                                &actual[..12],
                                short(&f.sha256)
                            ),
                        );
                    }
                    if f.size != entry.bytes.len() as u64 {
                        problem(
                            rel,
                            format!(
                                "size {} does not match manifest.json's {}",
                                entry.bytes.len(),
                                f.size
                            ),
                        );
                    }
                }
            }
        }
        for path in listed.keys().filter(|p| !files.contains_key(**p)) {
            problem(
                path,
                "listed in manifest.json but not in the archive".into(),
            );
        }
    }

    for (rel, entry) in &files {
        let mut row = Row {
            path: rel.clone(),
            size: entry.bytes.len() as u64,
            arch: "-".into(),
            linkage: "-".into(),
            sha256: sha256_hex(&entry.bytes),
        };
        if BINARIES.contains(&rel.as_str()) {
            match binary::inspect(&entry.bytes) {
                None => problem(rel, "not an executable binary".into()),
                Some(facts) => {
                    row.arch = facts
                        .arch
                        .map(|a| a.name().to_string())
                        .unwrap_or_else(|| facts.machine.clone());
                    row.linkage = match facts.max_glibc {
                        Some((major, minor)) => {
                            format!("{} (GLIBC_{major}.{minor})", facts.linkage())
                        }
                        None => facts.linkage().to_string(),
                    };
                    if let Some(target) = &target {
                        for what in binary_problems(&facts, target) {
                            problem(rel, what);
                        }
                    }
                }
            }
        }
        rows.push(row);
    }

    if let Some(target) = &target {
        let budget = targets::size_budget(target);
        if bytes.len() as u64 > budget {
            problem(
                "(archive)",
                format!(
                    "{} is over the {} size budget for {}",
                    mib(bytes.len() as u64),
                    mib(budget),
                    target.name
                ),
            );
        }
    }
    Report {
        problems,
        rows,
        size: bytes.len() as u64,
    }
}

/// What is wrong with one binary for `target`.
fn binary_problems(facts: &binary::BinaryFacts, target: &Target) -> Vec<String> {
    let mut out = Vec::new();
    let want_format = match target.os {
        Os::Linux => Format::Elf,
        Os::Darwin => Format::MachO,
    };
    if facts.format != want_format {
        out.push(format!(
            "is {}, but {} needs {}",
            facts.format.name(),
            target.name,
            want_format.name()
        ));
        return out;
    }
    if facts.arch != Some(target.arch) {
        let found = facts
            .arch
            .map(|a| a.name().to_string())
            .unwrap_or_else(|| facts.machine.clone());
        out.push(format!(
            "built for {found}, but {} needs {}",
            target.name,
            target.arch.name()
        ));
    }
    if target.os == Os::Linux && facts.linkage() == "dynamic" {
        for lib in &facts.libraries {
            if !ALLOWED_LIBRARIES.contains(&lib.as_str()) {
                out.push(format!("needs {lib}, which is not part of glibc"));
            }
        }
        if let Some(found) = facts.max_glibc {
            if found > GLIBC_FLOOR {
                out.push(format!(
                    "needs GLIBC_{}.{}, above the floor GLIBC_{}.{}: it will not load on older Linux",
                    found.0, found.1, GLIBC_FLOOR.0, GLIBC_FLOOR.1
                ));
            }
        }
    }
    if !facts.debug_sections.is_empty() {
        out.push(format!(
            "not stripped: has {}",
            facts.debug_sections.join(", ")
        ));
    }
    out
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

/// `cargo xtask verify`: verifies each archive, prints problems one per line, fails if any.
pub fn run(archives: &[std::path::PathBuf]) -> anyhow::Result<()> {
    let mut failed = 0;
    for path in archives {
        let report = verify_path(path)?;
        if report.problems.is_empty() {
            println!("{}: ok ({})", path.display(), mib(report.size));
            print_table(&report);
        } else {
            failed += 1;
            for line in &report.problems {
                eprintln!("{line}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} archive(s) failed verification",
            archives.len()
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
