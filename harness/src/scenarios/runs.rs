//! Running `tether` in a scenario: to completion with its output recorded for the failure
//! report, or in the background until it prints a URL; and reading what a run printed.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncBufReadExt;

use super::diagnostics;
use crate::lock::lock;

/// How long a login may take to print its URL: a ceiling for a hung process, not a wait.
pub(super) const URL_LIMIT: Duration = Duration::from_secs(30);

/// A `tether` process started by [`Machine::spawn_with_url`].
pub struct Running {
    pub(super) child: tokio::process::Child,
    pub(super) printed: Arc<Mutex<String>>,
    pub(super) reader: tokio::task::JoinHandle<()>,
    pub(super) what: String,
}

impl Running {
    pub(super) fn printed(&self) -> String {
        lock(&self.printed).clone()
    }
}

/// Copies `stderr` into `printed`, sending the first line that starts with `http` on `url`.
pub(super) async fn read_lines(
    stderr: tokio::process::ChildStderr,
    printed: Arc<Mutex<String>>,
    url: tokio::sync::oneshot::Sender<String>,
) {
    let mut url = Some(url);
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(rest) = line.trim().strip_prefix("http") {
            if let Some(tx) = url.take() {
                let _ = tx.send(format!("http{rest}"));
            }
        }
        let mut printed = lock(&printed);
        printed.push_str(&line);
        printed.push('\n');
    }
}

/// Runs `cmd` to completion and records what it printed for the failure report.
pub async fn run_recorded(mut cmd: tokio::process::Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    diagnostics::record(format!("$ {what}\n{}", describe(&out)));
    record_command(what, &out);
    Ok(out)
}

/// Puts a finished command into the scenario's transcript.
fn record_command(what: &str, out: &Output) {
    let (stdout, stderr) = text(out);
    crate::transcript::record(crate::transcript::EventKind::Command {
        argv: what.to_string(),
        exit: out.status.to_string(),
        stdout,
        stderr,
    });
}

/// Exit status, stdout and stderr of a finished process, for error messages.
pub fn describe(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    format!(
        "exit: {}\nstdout: {}\nstderr: {}",
        out.status,
        stdout.trim_end(),
        stderr.trim_end()
    )
}

/// Waits for a process from [`Machine::spawn_with_url`]; its stderr includes the lines read before.
pub async fn wait_output(running: Running) -> anyhow::Result<Output> {
    let Running {
        child,
        printed,
        reader,
        what,
    } = running;
    let mut out = child.wait_with_output().await?;
    let _ = reader.await;
    out.stderr = lock(&printed).clone().into_bytes();
    diagnostics::record(format!("$ {what}\n{}", describe(&out)));
    record_command(&what, &out);
    Ok(out)
}

/// Checks that a run exited `code` and that its stderr says each of `needles`; returns stderr.
pub fn ensure_failed(out: &Output, code: i32, needles: &[&str]) -> anyhow::Result<String> {
    let (_, err) = text(out);
    anyhow::ensure!(
        out.status.code() == Some(code),
        "exit {:?}, not {code}: {err}",
        out.status.code()
    );
    for needle in needles {
        anyhow::ensure!(
            err.contains(needle),
            "stderr does not say {needle:?}: {err}"
        );
    }
    Ok(err)
}

/// Text of a process's stdout and stderr.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
