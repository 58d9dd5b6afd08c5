//! The reproducibility check: a second `dist` of the same commit, from an empty target
//! directory elsewhere, must give the same archive bytes — no path, time or order of a
//! build may leak into a bundle. The second build runs in the background at the lowest
//! CPU priority, so CI starts it first and it uses the cores the tests leave idle.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::background::BackgroundDist;
use crate::flags::Format;
use crate::targets::Target;

/// A second build of a target's bundle, running.
pub struct Rebuild {
    build: BackgroundDist,
    scratch: tempfile::TempDir,
}

impl Rebuild {
    /// Starts the second build of `formats` in a scratch directory.
    pub fn start(target: &Target, formats: &[Format]) -> anyhow::Result<Rebuild> {
        let scratch = tempfile::Builder::new()
            .prefix("tether-reproducible-")
            .tempdir()
            .context("cannot create a scratch directory")?;
        let build = BackgroundDist::start(
            target,
            formats,
            &scratch.path().join("dist"),
            Some(&scratch.path().join("target")),
            &scratch.path().join("build.log"),
        )?;
        Ok(Rebuild { build, scratch })
    }

    /// Waits for the second build and requires the same bytes as each of `files` (the
    /// archive and its packages).
    pub fn compare(mut self, files: &[PathBuf]) -> anyhow::Result<()> {
        self.build.wait()?;
        for file in files {
            if let Err(e) = self.compare_one(file) {
                // Kept for a look: the second build's files stay where the message says.
                let kept = self.scratch.keep();
                return Err(e.context(format!(
                    "the second build is kept in {}",
                    kept.join("dist").display()
                )));
            }
        }
        Ok(())
    }

    fn compare_one(&self, archive: &Path) -> anyhow::Result<()> {
        let name = archive.file_name().context("the archive has no name")?;
        let again = self.scratch.path().join("dist").join(name);
        let first =
            std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let second = std::fs::read(&again)
            .with_context(|| format!("the second build wrote no {}", again.display()))?;
        if first != second {
            bail!(
                "{} is not reproducible: a second build from an empty target directory gave different bytes",
                archive.display()
            );
        }
        eprintln!(
            "==> {} is reproducible: a second build from an empty target directory gave the same bytes",
            archive.display()
        );
        Ok(())
    }
}
