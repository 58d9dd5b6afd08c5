//! Checks of the release files by tools other than this project: `rust-audit-info` reads
//! each binary's `.dep-v0`, the CycloneDX project's own validator checks the SBOM against
//! its schema, and `sha256sum -c` checks the sidecar.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};

use super::steps::checked;
use super::{record, StepResult};
use crate::bundle::dependencies::sbom_name;
use tether_contract::bundle_layout as layout;

const VALIDATE_CDX: &str = include_str!("validate_cdx.py");

/// Runs the outside checks on `archive` (beside its sidecar and SBOM) and its unpacked `bundle`.
pub(super) fn check(
    results: &mut Vec<StepResult>,
    archive: &Path,
    bundle: &Path,
) -> anyhow::Result<()> {
    let place = "release files";
    record(results, place, "sha256sum -c", || {
        let dir = archive.parent().context("archive dir")?;
        let name = archive.file_name().context("archive name")?;
        let mut c = Command::new("sha256sum");
        c.arg("-c")
            .arg(format!("{}.sha256", name.to_string_lossy()))
            .current_dir(dir);
        checked(c, "sha256sum -c").map(drop)
    })?;
    record(results, place, "rust-audit-info .dep-v0", || {
        for binary in layout::BINARIES {
            let mut c = Command::new("rust-audit-info");
            c.arg(bundle.join(binary.path));
            let json = checked(c, &format!("rust-audit-info {}", binary.path))?;
            let doc: serde_json::Value = serde_json::from_str(&json)
                .with_context(|| format!("rust-audit-info {}: not JSON", binary.path))?;
            let names: Vec<&str> = doc["packages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .collect();
            ensure!(
                names.contains(&"tether") && names.len() > 10,
                "{}: rust-audit-info read {} packages: {names:?}",
                binary.path,
                names.len()
            );
        }
        Ok(())
    })?;
    record(results, place, "CycloneDX schema", || {
        let name = archive
            .file_name()
            .context("archive name")?
            .to_string_lossy();
        let sbom = archive.with_file_name(sbom_name(&name));
        let mut c = Command::new("python3");
        c.arg("-c").arg(VALIDATE_CDX).arg(&sbom);
        let out = checked(c, "the CycloneDX validator (`bash .ci/setup` installs it)")?;
        ensure!(out.starts_with("valid"), "{out}");
        Ok(())
    })
}
