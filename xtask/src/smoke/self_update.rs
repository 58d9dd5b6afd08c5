//! `tether self-update` in the host smoke. The test build of the bundle (trusting the smoke's
//! test key) is installed with install.sh and its host service started with a terminal open;
//! `self-update` must refuse a `latest.json` signed by another key with nothing changed,
//! then install the release signed by the test key — keeping `.old` — and restart the
//! host service with the terminal still answering.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};
use tether_contract::environment::DOWNLOAD_URL_ENV;

use super::installer::{write_release, TestKey};
use super::steps::checked;
use super::test_build;
use super::{record, StepResult, ORG};
use crate::bundle::digest::sha256_hex;
use crate::sign::{self, Latest, LatestTarget};
use tether_contract::bundle_layout as layout;

/// Writes the test build of `archive` (trusting `key`, see [`test_build`]) as
/// `<dir>/update` (signed by `key`) and `<dir>/forged` (the same `latest.json` signed by
/// another key).
pub(super) fn prepare(archive: &Path, dir: &Path, key: &TestKey) -> anyhow::Result<()> {
    let built_with = crate::bundle::release_key::baked()?;
    let build_dir = dir.with_file_name("test-build");
    let archive = test_build::rekeyed(archive, &built_with, &key.public, &build_dir)?;
    let name = archive
        .file_name()
        .context("archive name")?
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::read(&archive)?;
    let sidecar = std::fs::read(archive.with_file_name(format!("{name}.sha256")))?;
    let described = crate::bundle::manifest::in_archive(&bytes)?;
    let sha256 = sha256_hex(&bytes);
    let latest = Latest {
        version: described.version,
        targets: [(
            described.target,
            LatestTarget {
                // Relative: the harness's URL is known only once it serves these files.
                url: name.clone(),
                sha256: sha256.clone(),
            },
        )]
        .into(),
    };
    let latest = serde_json::to_vec_pretty(&latest)?;
    let sums = format!("{sha256}  {name}\n");
    let stranger = TestKey::new()?;
    for (sub, signer) in [("update", key), ("forged", &stranger)] {
        let release = dir.join(sub);
        write_release(&release, (&name, &bytes), &sidecar, &sums, key)?;
        sign::write_signed(
            &release,
            "latest.json",
            &latest,
            &signer.secret,
            &signer.public,
        )?;
    }
    Ok(())
}

/// Builds a command running `argv` at a place (here, or `docker exec` in a container) with
/// `env` added to the place's tether environment.
pub(super) type RunAt<'a> = &'a dyn Fn(&[&str], &[(&str, &str)]) -> Command;

/// What the update steps run with, wherever they run.
pub(super) struct UpdateRig<'a> {
    /// The place's name in the table.
    pub place: &'a str,
    /// Runs commands at the place.
    pub command: RunAt<'a>,
    /// `<api>/releases` as the place reaches it.
    pub releases: String,
    /// The harness CA's path at the place.
    pub ca_there: String,
    /// install.sh's path at the place.
    pub script: String,
    /// Where the test build goes, at the place.
    pub prefix: String,
    /// The relay's HTTPS base from this machine (for `/debug/exec`) and the CA here.
    pub relay: (&'a str, &'a Path),
    /// The smoke's test key.
    pub key: &'a TestKey,
}

impl UpdateRig<'_> {
    fn cli(&self) -> String {
        format!("{}/{}", self.prefix, layout::CLI.path)
    }

    /// `tether ARGS` of the test build, with `env`.
    fn tether(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let cli = self.cli();
        let argv: Vec<&str> = std::iter::once(cli.as_str())
            .chain(args.iter().copied())
            .collect();
        (self.command)(&argv, env)
    }

    /// Stops the test build's host service (after a failure).
    pub fn stop(&self) {
        let _ = self.tether(&["host", "stop"], &[]).output();
    }

    /// The sha256 of the installed CLI (hex), and whether `tether.old` is beside it.
    fn installed(&self) -> anyhow::Result<(String, bool)> {
        let cli = self.cli();
        let script = format!("sha256sum '{cli}'; test -f '{cli}.old' && echo old || true");
        let out = checked((self.command)(&["sh", "-c", &script], &[]), "sha256sum")?;
        let sha = out
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        Ok((sha, out.lines().any(|l| l == "old")))
    }
}

/// Installs the test build, starts its host service with a terminal, and updates it.
pub(super) fn check(results: &mut Vec<StepResult>, rig: &UpdateRig<'_>) -> anyhow::Result<()> {
    let place = rig.place;
    record(results, place, "self-update: test build up", || {
        test_build_up(rig)
    })?;
    let version = version(&run(rig, &["--version"])?)?;
    record(results, place, "self-update refuses a forgery", || {
        refuses_a_forgery(rig, &version)
    })?;
    record(results, place, "self-update keeps the terminal", || {
        keeps_the_terminal(rig, &version)
    })?;
    record(results, place, "self-update: host stop", || {
        run(rig, &["host", "stop"]).map(drop)
    })
}

/// `tether ARGS…` in the rig, its output.
fn run(rig: &UpdateRig<'_>, args: &[&str]) -> anyhow::Result<String> {
    checked(rig.tether(args, &[]), &format!("tether {}", args.join(" ")))
}

/// The URL of one of the rig's releases.
fn from(rig: &UpdateRig<'_>, release: &str) -> String {
    format!("{}/{release}", rig.releases)
}

/// The test build installed by install.sh, its host started, a terminal answering.
fn test_build_up(rig: &UpdateRig<'_>) -> anyhow::Result<()> {
    let install = [
        "sh",
        &rig.script,
        "--prefix",
        &rig.prefix,
        "--key",
        &rig.key.public.base64,
    ];
    let env = [
        (DOWNLOAD_URL_ENV, from(rig, "update")),
        ("CURL_CA_BUNDLE", rig.ca_there.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    checked(
        (rig.command)(&install, &env),
        "install.sh of the test build",
    )?;
    run(rig, &["host", "start", "--daemon"])?;
    exec(rig, "echo before-$((1+1))", "before-2")
}

/// A forged latest.json is refused and nothing installed changes.
fn refuses_a_forgery(rig: &UpdateRig<'_>, version: &str) -> anyhow::Result<()> {
    let before = rig.installed()?;
    let forged = from(rig, "forged");
    let mut c = rig.tether(
        &["self-update", "--version", version],
        &[(DOWNLOAD_URL_ENV, &forged)],
    );
    let out = c.output().context("cannot run tether self-update")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "self-update accepted a forged latest.json"
    );
    ensure!(
        stderr.contains("not signed by the tether release key"),
        "{stderr}"
    );
    ensure!(
        rig.installed()? == before,
        "the installed files changed: {before:?}"
    );
    Ok(())
}

/// The update restarts the host and upgrades ptyd in place while a terminal prints: every
/// line arrives once, both pids stay, both run the new version.
fn keeps_the_terminal(rig: &UpdateRig<'_>, version: &str) -> anyhow::Result<()> {
    // (pid, image start, version, ptyd pid, ptyd version): restarted and upgraded in
    // place keeps both pids, not the rest.
    type Seen = (u64, i64, String, u64, String);
    let host = |status: String| -> anyhow::Result<Seen> {
        let doc: serde_json::Value = serde_json::from_str(&status)?;
        let line = &doc["hosts"][0];
        Ok((
            line["pid"].as_u64().context("no host pid")?,
            line["startedAt"].as_i64().context("no startedAt")?,
            line["version"].as_str().context("no version")?.to_string(),
            line["ptydPid"].as_u64().context("no ptyd pid")?,
            line["ptydVersion"]
                .as_str()
                .context("no ptyd version")?
                .to_string(),
        ))
    };
    let host_before = host(run(rig, &["host", "status", "--json"])?)?;
    let update = from(rig, "update");
    let c = rig.tether(
        &["self-update", "--version", version],
        &[(DOWNLOAD_URL_ENV, &update)],
    );
    // The terminal prints a numbered line every 10 ms throughout the update.
    let relay = rig.relay;
    let (counted, updated) = std::thread::scope(|scope| {
        let counter = scope
            .spawn(move || exec_at(relay, COUNTER, COUNTED, std::time::Duration::from_secs(120)));
        std::thread::sleep(std::time::Duration::from_secs(2));
        let updated = checked(c, "tether self-update");
        let counted = counter
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the counting thread panicked")));
        (counted, updated)
    });
    updated?;
    every_line_once(&counted?)?;
    ensure!(rig.installed()?.1, "no bin/tether.old after the update");
    let host_after = host(run(rig, &["host", "status", "--json"])?)?;
    ensure!(
        host_after.0 == host_before.0 && host_after.1 != host_before.1,
        "the host service was not restarted in place: {host_before:?} -> {host_after:?}"
    );
    ensure!(
        host_after.2 == version,
        "the host runs {}, not {version}",
        host_after.2
    );
    ensure!(
        host_after.3 == host_before.3 && host_after.4 == version,
        "tether-ptyd was not upgraded in place: {host_before:?} -> {host_after:?}"
    );
    exec(rig, "echo after-$((2+2))", "after-4")
}

/// The version word of `tether --version`'s output.
fn version(out: &str) -> anyhow::Result<String> {
    out.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .context("tether --version printed no version")
}

/// Lines the counter prints, one every 10 ms (about 25 s with the shell's own time).
const COUNTED_LINES: u32 = 2000;
/// The program the terminal runs across the update: `N1` … `N2000`, then [`COUNTED`].
const COUNTER: &str =
    "i=1; while [ $i -le 2000 ]; do echo N$i; i=$((i+1)); sleep 0.01; done; echo COUNT$((1+1))ED";
/// What the counter prints last (not in its echoed command line).
const COUNTED: &str = "COUNT2ED";

/// Types `input` into the terminal the smoke keeps open (`update-smoke`) and waits for `expect`.
fn exec(rig: &UpdateRig<'_>, input: &str, expect: &str) -> anyhow::Result<()> {
    exec_at(rig.relay, input, expect, std::time::Duration::from_secs(15)).map(drop)
}

/// [`exec`] through the relay at `relay` (its HTTPS base, the CA file), waiting at most
/// `limit`; the terminal's output from the input on.
fn exec_at(
    relay: (&str, &Path),
    input: &str,
    expect: &str,
    limit: std::time::Duration,
) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "organizationId": ORG, "sessionId": "update-smoke", "input": input,
        "expect": expect, "timeoutMs": limit.as_millis() as u64,
    })
    .to_string();
    let (relay_http, ca) = relay;
    let mut curl = Command::new("curl");
    curl.arg("--cacert")
        .arg(ca)
        .args(["-sS", "--max-time", &(limit.as_secs() + 5).to_string()])
        .args(["-X", "POST", "-H", "content-type: application/json"])
        .args(["--data", &body])
        .arg(format!("{relay_http}/debug/exec"));
    let answer = checked(curl, "curl to the relay")?;
    let doc: serde_json::Value = serde_json::from_str(&answer)
        .with_context(|| format!("the relay's answer is not JSON: {answer}"))?;
    let output = doc["output"].as_str().unwrap_or_default();
    ensure!(
        output.contains(expect),
        "the terminal did not answer: {answer}"
    );
    Ok(output.to_string())
}

/// Checks that the counter's lines `N1` … `N2000` each came exactly once, in order.
fn every_line_once(output: &str) -> anyhow::Result<()> {
    let numbers: Vec<u32> = output
        .split("\r\n")
        // What a line shows is after its last carriage return (bash ends its bracketed
        // paste mode with `ESC[?2004l CR` just before the program's first line).
        .filter_map(|line| line.rsplit('\r').next()?.strip_prefix('N')?.parse().ok())
        .collect();
    let wrong = numbers
        .iter()
        .zip(1..)
        .find(|(got, want)| **got != *want)
        .map(|(got, want)| format!("line N{got} came where N{want} was due"));
    ensure!(
        wrong.is_none() && numbers.len() == COUNTED_LINES as usize,
        "the counter's output across the update was not every line once, in order: {} ({} of {COUNTED_LINES} lines); it began {:?}",
        wrong.unwrap_or_default(),
        numbers.len(),
        output.chars().take(400).collect::<String>()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counters_lines_are_checked_for_loss_and_repeats() {
        let all: String = (1..=COUNTED_LINES).map(|i| format!("N{i}\r\n")).collect();
        let command = format!("$ {COUNTER}\r\n\u{1b}[?2004l\r");
        assert!(every_line_once(&format!("{command}{all}{COUNTED}\r\n")).is_ok());
        let lost = all.replace("N7\r\n", "");
        assert!(every_line_once(&lost).is_err());
        let repeated = all.replace("N9\r\n", "N9\r\nN8\r\nN9\r\n");
        assert!(every_line_once(&repeated).is_err());
        assert!(
            every_line_once(&all[..all.len() - 8]).is_err(),
            "the end is missing"
        );
    }
}
