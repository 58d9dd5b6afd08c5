//! The steps every place runs, and the checks they use: the CLI's version and doctor,
//! the host service started, connected to the relay over `wss://`, a terminal that
//! answers, and nothing left running after `host stop`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use super::{record, StepResult, ORG};
use crate::targets::Target;

/// Runs a command to completion, failing with its output when it fails.
pub(super) fn checked(mut command: Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Asks the relay to run `echo` in a terminal on the org's host; checks the answer.
pub(super) fn terminal_echo(relay_http: &str, ca: &Path) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"organizationId":"{ORG}","input":"echo smoke-$((40+2))","expect":"smoke-42","timeoutMs":10000}}"#
    );
    let mut curl = Command::new("curl");
    curl.arg("--cacert")
        .arg(ca)
        .args([
            "-sS",
            "--max-time",
            "20",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
            &body,
        ])
        .arg(format!("{relay_http}/debug/exec"));
    let answer = checked(curl, "curl to the relay")?;
    ensure!(
        answer.contains("smoke-42"),
        "the terminal did not answer: {answer}"
    );
    Ok(())
}

pub(super) fn poll_relay_connected(
    mut status: impl FnMut() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let doc: serde_json::Value =
            serde_json::from_str(&status()?).context("host status --json")?;
        let host = &doc["hosts"][0];
        if host["state"] == "running" && host["relay"] == "connected" && host["ptyd"] == "running" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the host never reported relay connected: {doc}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(super) fn print_log_tail(log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    eprintln!("last lines of the host log:");
    for line in &lines[lines.len().saturating_sub(30)..] {
        eprintln!("  {line}");
    }
}

/// The relay as the smoke reaches it.
pub(super) struct Relay<'a> {
    /// `TETHER_RELAY_URL` of the place.
    pub(super) url: &'a str,
    /// Its HTTPS base as reached from this machine (for `/debug/exec`).
    pub(super) http: &'a str,
    /// The harness CA, on this machine.
    pub(super) ca: &'a Path,
}

/// The steps every place runs; `tether` runs the CLI there, `gone` checks no process is left.
pub(super) fn run_steps(
    results: &mut Vec<StepResult>,
    place: &str,
    target: &Target,
    tether: &dyn Fn(&[&str]) -> anyhow::Result<String>,
    relay: &Relay<'_>,
    gone: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    record(results, place, "relay over wss://", || {
        ensure!(
            relay.url.starts_with("wss://"),
            "the relay is {}",
            relay.url
        );
        Ok(())
    })?;
    record(results, place, "tether --version", || {
        let out = tether(&["--version"])?;
        ensure!(
            out.starts_with("tether ") && out.contains(target.triple),
            "{out}"
        );
        Ok(())
    })?;
    record(results, place, "tether doctor --json", || {
        let doc: serde_json::Value = serde_json::from_str(&tether(&["doctor", "--json"])?)?;
        ensure!(doc["ok"] == true, "doctor is not green: {doc}");
        Ok(())
    })?;
    record(results, place, "tether auth status", || {
        tether(&["auth", "status"]).map(drop)
    })?;
    record(results, place, "tether host start --daemon", || {
        tether(&["host", "start", "--daemon"]).map(drop)
    })?;
    record(results, place, "health: relay connected", || {
        poll_relay_connected(|| tether(&["host", "status", "--json"]))
    })?;
    record(results, place, "terminal runs echo", || {
        terminal_echo(relay.http, relay.ca)
    })?;
    record(results, place, "tether host status", || {
        tether(&["host", "status"]).map(drop)
    })?;
    record(results, place, "tether host stop", || {
        tether(&["host", "stop"]).map(drop)
    })?;
    record(results, place, "no process left", || {
        std::thread::sleep(Duration::from_millis(300));
        gone()
    })
}
