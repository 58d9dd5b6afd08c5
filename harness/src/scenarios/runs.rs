//! Running `tether` in a scenario: to completion with its output recorded for the failure
//! report, or in the background until it prints a URL; and reading what a run printed.

use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::AsyncBufReadExt;

use super::diagnostics;
use super::env::Machine;
use crate::lock::lock;

impl Machine {
    /// Starts `tether ARGS` with piped output; returns it once it printed an `http…` URL
    /// on stderr, or fails with everything it printed if it exits (or stays silent) first.
    pub async fn spawn_with_url(&self, args: &[&str]) -> anyhow::Result<(Running, String)> {
        let what = format!("tether {}", args.join(" "));
        let mut child = self
            .command("tether", args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stderr = child.stderr.take().context("stderr")?;
        let printed = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(read_lines(stderr, printed.clone(), url_tx));
        let running = Running {
            child,
            printed,
            reader,
            what,
        };
        match tokio::time::timeout(URL_LIMIT, url_rx).await {
            Ok(Ok(url)) => Ok((running, url)),
            Ok(Err(_)) => {
                let out = wait_output(running).await?;
                bail!("tether exited without printing a URL\n{}", describe(&out))
            }
            Err(_) => {
                let printed = running.printed();
                bail!(
                    "{} printed no URL within {}s; stderr so far:\n{printed}",
                    running.what,
                    URL_LIMIT.as_secs()
                )
            }
        }
    }
}

/// How long a login may take to print its URL: a ceiling for a hung process, not a wait.
const URL_LIMIT: Duration = Duration::from_secs(30);

/// A `tether` process started by [`Machine::spawn_with_url`].
pub struct Running {
    child: tokio::process::Child,
    printed: Arc<Mutex<String>>,
    reader: tokio::task::JoinHandle<()>,
    what: String,
}

impl Running {
    fn printed(&self) -> String {
        lock(&self.printed).clone()
    }
}

/// Copies `stderr` into `printed`, sending the first line that starts with `http` on `url`.
async fn read_lines(
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
    Ok(out)
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
