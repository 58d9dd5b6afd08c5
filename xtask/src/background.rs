//! A `dist` run in the background: a child process at the lowest CPU priority with its
//! output in a log, so a long command (CI) can build bundles on the cores its waiting
//! steps leave idle. An abandoned run is stopped with its whole process group.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::flags::Format;
use crate::targets::Target;

/// A running `xtask dist --target <target>`.
pub struct BackgroundDist {
    child: Child,
    log: PathBuf,
}

impl BackgroundDist {
    /// Starts `nice -n 19 xtask dist --target <target> --formats <formats> --out-dir
    /// <out_dir>`, into cargo's target directory `target_dir` when given; its output goes
    /// to `log`.
    pub fn start(
        target: &Target,
        formats: &[Format],
        out_dir: &Path,
        target_dir: Option<&Path>,
        log: &Path,
    ) -> anyhow::Result<BackgroundDist> {
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let xtask = std::env::current_exe().context("cannot find the xtask binary")?;
        let mut command = Command::new("nice");
        command
            .args(["-n", "19"])
            .arg(xtask)
            .args(["dist", "--target", target.name, "--formats"])
            .arg(
                formats
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--out-dir")
            .arg(out_dir)
            .current_dir(crate::flags::project_root())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0);
        if let Some(dir) = target_dir {
            command.env("CARGO_TARGET_DIR", dir);
        }
        let child = command
            .spawn()
            .context("cannot start a background build (`nice` is in coreutils)")?;
        eprintln!(
            "==> building {} in the background (log: {})",
            target.name,
            log.display()
        );
        Ok(BackgroundDist {
            child,
            log: log.to_path_buf(),
        })
    }

    /// Waits for the build; on failure prints the end of its log.
    pub fn wait(&mut self) -> anyhow::Result<()> {
        let status = self.child.wait()?;
        if !status.success() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            for line in tail.into_iter().rev() {
                eprintln!("    {line}");
            }
            bail!(
                "the background build failed ({status}); the end of {} is above",
                self.log.display()
            );
        }
        Ok(())
    }
}

impl Drop for BackgroundDist {
    /// A build abandoned half-way (an earlier step failed) is stopped.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}
