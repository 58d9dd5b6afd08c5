//! The native packages and the container image made from a bundle (contract section 11):
//! `.deb`, `.rpm` and an OCI image layout, each holding the archive's own binaries.

pub mod check;
pub mod contents;
pub mod deb;
pub mod oci;
pub mod rpm;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::bundle::archive::sidecar_line;
use crate::bundle::dependencies::sbom_name;
use crate::flags::Format;
use contents::Source;

/// How package and image file names end.
pub const ENDINGS: [&str; 3] = [".deb", ".rpm", ".oci.tar"];

/// Where a package or image of `source` goes in `out_dir`, by format.
pub fn file_name(format: Format, source: &Source) -> Option<String> {
    let version = &source.version;
    match format {
        Format::Tar => None,
        Format::Deb => Some(format!(
            "tether_{version}-{}_{}.deb",
            contents::RELEASE,
            contents::debian_arch(source.arch)
        )),
        Format::Rpm => Some(format!(
            "tether-{version}-{}.{}.rpm",
            contents::RELEASE,
            source.arch.name()
        )),
        Format::Oci => Some(format!("tether-{version}-{}.oci.tar", source.target)),
    }
}

/// Builds every package of `formats` (besides the archive itself) from `archive` into
/// `out_dir`; returns their paths. Each is written, read back and checked against the
/// archive before it takes its name.
pub fn build(archive: &Path, formats: &[Format], out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let wanted: Vec<Format> = formats
        .iter()
        .copied()
        .filter(|f| *f != Format::Tar)
        .collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    let source = Source::from_archive(archive)?;
    let mut written = Vec::new();
    for format in wanted {
        let Some(name) = file_name(format, &source) else {
            continue;
        };
        let bytes = match format {
            Format::Deb => deb::build(&source)?,
            Format::Rpm => rpm::build(&source)?,
            Format::Oci => oci::build(&source)?,
            Format::Tar => continue,
        };
        let path = out_dir.join(&name);
        let scratch = out_dir.join(format!(".{name}.partial"));
        std::fs::write(&scratch, &bytes)
            .with_context(|| format!("cannot write {}", scratch.display()))?;
        let problems = check::problems(&scratch, &name, &source.binaries, &source.facts(format));
        if !problems.is_empty() {
            std::fs::remove_file(&scratch).ok();
            for line in &problems {
                eprintln!("{line}");
            }
            anyhow::bail!("{name} failed verification and was not written");
        }
        // Its `.sha256`, and the archive's SBOM under its name: the same binaries, the same
        // dependency list.
        let archive_name = archive
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let sbom = std::fs::read(archive.with_file_name(sbom_name(archive_name)))
            .with_context(|| format!("{archive_name} has no SBOM beside it"))?;
        std::fs::write(out_dir.join(format!("{name}.cdx.json")), sbom)?;
        std::fs::write(
            out_dir.join(format!("{name}.sha256")),
            sidecar_line(&bytes, &name),
        )?;
        std::fs::rename(&scratch, &path)
            .with_context(|| format!("cannot rename {} to {name}", scratch.display()))?;
        eprintln!(
            "==> {name}: {} bytes, binaries equal to the archive's",
            bytes.len()
        );
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests;
