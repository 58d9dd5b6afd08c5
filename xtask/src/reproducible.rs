//! The reproducibility check: a second `dist` of the same commit, from an empty target
//! directory elsewhere, must give the same archive bytes — no path, time or order of a
//! build may leak into a bundle. The second build runs in the background at the lowest
//! CPU priority, so CI starts it first and it uses the cores the tests leave idle.

use std::path::Path;

use anyhow::{bail, Context};

use crate::background::BackgroundDist;
use crate::targets::Target;

/// A second build of a target's bundle, running.
pub struct Rebuild {
    build: BackgroundDist,
    scratch: tempfile::TempDir,
}

impl Rebuild {
    /// Starts the second build in a scratch directory.
    pub fn start(target: &Target) -> anyhow::Result<Rebuild> {
        let scratch = tempfile::Builder::new()
            .prefix("tether-reproducible-")
            .tempdir()
            .context("cannot create a scratch directory")?;
        let build = BackgroundDist::start(
            target,
            &scratch.path().join("dist"),
            Some(&scratch.path().join("target")),
            &scratch.path().join("build.log"),
        )?;
        Ok(Rebuild { build, scratch })
    }

    /// Waits for the second build and requires the same bytes as `archive`.
    pub fn compare(mut self, archive: &Path) -> anyhow::Result<()> {
        self.build.wait()?;
        let name = archive.file_name().context("the archive has no name")?;
        let again = self.scratch.path().join("dist").join(name);
        let first =
            std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let second = std::fs::read(&again)
            .with_context(|| format!("the second build wrote no {}", again.display()))?;
        if first != second {
            let kept = self.scratch.keep();
            bail!(
                "{} is not reproducible: a second build from an empty target directory gave different bytes ({} kept in {})",
                archive.display(),
                name.to_string_lossy(),
                kept.join("dist").display()
            );
        }
        eprintln!(
            "==> {} is reproducible: a second build from an empty target directory gave the same bytes",
            archive.display()
        );
        Ok(())
    }
}
