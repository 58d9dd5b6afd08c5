//! The reproducibility check: a second `dist` of the same commit, from an empty target
//! directory elsewhere, must give the same archive bytes — no path, time or order of a
//! build may leak into a bundle. The second build is a child process at the lowest CPU
//! priority, so CI starts it first and it uses the cores the tests leave idle.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::targets::Target;

/// A second build of a target's bundle, running.
pub struct Rebuild {
    child: Child,
    scratch: tempfile::TempDir,
}

impl Rebuild {
    /// Starts `xtask dist --target <target>` into a scratch directory, under `nice -n 19`.
    pub fn start(target: &Target) -> anyhow::Result<Rebuild> {
        let scratch = tempfile::Builder::new()
            .prefix("tether-reproducible-")
            .tempdir()
            .context("cannot create a scratch directory")?;
        let log = File::create(scratch.path().join("build.log"))?;
        let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
        let child = Command::new("nice")
            .args(["-n", "19"])
            .arg(xtask)
            .args(["dist", "--target", target.name, "--out-dir"])
            .arg(scratch.path().join("dist"))
            .env("CARGO_TARGET_DIR", scratch.path().join("target"))
            .current_dir(crate::flags::project_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("cannot start the second build (`nice` is in coreutils)")?;
        Ok(Rebuild { child, scratch })
    }

    /// Waits for the second build and requires the same bytes as `archive`.
    pub fn compare(mut self, archive: &Path) -> anyhow::Result<()> {
        let status = self.child.wait()?;
        let log = self.scratch.path().join("build.log");
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            for line in tail.into_iter().rev() {
                eprintln!("    {line}");
            }
            bail!("the second build failed ({status}); its log ends above");
        }
        let name = archive.file_name().context("the archive has no name")?;
        let again = self.scratch.path().join("dist").join(name);
        let first =
            std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let second = std::fs::read(&again)
            .with_context(|| format!("the second build wrote no {}", again.display()))?;
        if first != second {
            let kept = std::mem::replace(&mut self.scratch, tempfile::tempdir()?).keep();
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

impl Drop for Rebuild {
    /// A check abandoned half-way (an earlier step failed) stops its build.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}
