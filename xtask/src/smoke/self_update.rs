//! `tether self-update` in the host smoke. A test build of this commit, trusting the smoke's
//! test key, is installed with install.sh and its host service started with a terminal open;
//! `self-update` must refuse a `latest.json` signed by another key with nothing changed,
//! then install the release signed by the test key — keeping `.old` — and restart the
//! host service with the terminal still answering.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context};
use xshell::Shell;

use super::installer::TestKey;
use super::steps::checked;
use super::{record, StepResult, ORG};
use crate::bundle::digest::sha256_hex;
use crate::bundle::layout;
use crate::sign::{self, Latest, LatestTarget};
use crate::targets::Target;

/// Builds the test bundle and writes `<dir>/update` (signed by `key`) and `<dir>/forged`
/// (the same `latest.json` signed by another key).
pub(super) fn prepare(
    sh: &Shell,
    target: &Target,
    dir: &Path,
    key: &TestKey,
) -> anyhow::Result<()> {
    let build_dir = dir.with_file_name("test-build");
    let archive = crate::dist::dist_with_key(sh, target, &build_dir, Some(&key.file))?;
    let name = archive
        .file_name()
        .context("archive name")?
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::read(&archive)?;
    let sidecar = std::fs::read(archive.with_file_name(format!("{name}.sha256")))?;
    let version = crate::dist::workspace_facts(sh)?.0;
    let latest = Latest {
        version,
        targets: [(
            target.name.to_string(),
            LatestTarget {
                // Relative: the harness's URL is known only once it serves these files.
                url: name.clone(),
                sha256: sha256_hex(&bytes),
            },
        )]
        .into(),
    };
    let latest = serde_json::to_vec_pretty(&latest)?;
    let sums = format!("{}  {name}\n", sha256_hex(&bytes));
    let stranger = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| anyhow::anyhow!("cannot make a key: {e}"))?;
    let stranger_public = crate::bundle::release_key::ReleaseKey {
        base64: stranger.pk.to_base64(),
        id: crate::bundle::key_file::key_id(&stranger.pk.to_base64()).context("key id")?,
    };
    for (sub, secret, public) in [
        ("update", &key.secret, &key.public),
        ("forged", &stranger.sk, &stranger_public),
    ] {
        let release = dir.join(sub);
        std::fs::create_dir_all(&release)?;
        std::fs::write(release.join(&name), &bytes)?;
        std::fs::write(release.join(format!("{name}.sha256")), &sidecar)?;
        sign::write_signed(
            &release,
            "SHA256SUMS",
            sums.as_bytes(),
            &key.secret,
            &key.public,
        )?;
        sign::write_signed(&release, "latest.json", &latest, secret, public)?;
    }
    Ok(())
}

/// What the update steps run with.
pub(super) struct UpdateRig<'a> {
    /// `<api>/releases`.
    pub releases: String,
    /// The harness CA on this machine.
    pub ca: &'a Path,
    /// The relay's HTTPS base (for `/debug/exec`).
    pub relay_http: &'a str,
    /// The smoke's test key.
    pub key: &'a TestKey,
    /// Where to install the test build.
    pub prefix: PathBuf,
}

/// Installs the test build, starts its host service with a terminal, and updates it.
pub(super) fn check(
    results: &mut Vec<StepResult>,
    rig: &UpdateRig<'_>,
    tether: &dyn Fn(&Path, &[&str]) -> Command,
) -> anyhow::Result<()> {
    let place = "host";
    let cli = rig.prefix.join(layout::CLI.path);
    let run = |args: &[&str]| {
        let what = format!("tether {}", args.join(" "));
        checked(tether(&cli, args), &what)
    };
    record(results, place, "self-update: test build up", || {
        super::installer::install_quietly(rig, "update")?;
        run(&["host", "start", "--daemon"])?;
        exec(rig, "echo before-$((1+1))", "before-2")
    })?;
    record(results, place, "self-update refuses a forgery", || {
        let before = std::fs::read(&cli)?;
        let mut c = tether(&cli, &["self-update", "--version", &version(&cli)?]);
        c.env("TETHER_DOWNLOAD_URL", format!("{}/forged", rig.releases));
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
        ensure!(std::fs::read(&cli)? == before, "bin/tether changed");
        let old = cli.with_file_name("tether.old");
        ensure!(!old.exists(), "{} appeared", old.display());
        Ok(())
    })?;
    record(results, place, "self-update keeps the terminal", || {
        let pid = |status: String| -> anyhow::Result<u64> {
            let doc: serde_json::Value = serde_json::from_str(&status)?;
            doc["hosts"][0]["pid"].as_u64().context("no host pid")
        };
        let host_before = pid(run(&["host", "status", "--json"])?)?;
        let mut c = tether(&cli, &["self-update", "--version", &version(&cli)?]);
        c.env("TETHER_DOWNLOAD_URL", format!("{}/update", rig.releases));
        checked(c, "tether self-update")?;
        ensure!(
            cli.with_file_name("tether.old").is_file(),
            "no bin/tether.old"
        );
        let host_after = pid(run(&["host", "status", "--json"])?)?;
        ensure!(
            host_after != host_before,
            "the host service was not restarted"
        );
        exec(rig, "echo after-$((2+2))", "after-4")
    })?;
    record(results, place, "self-update: host stop", || {
        run(&["host", "stop"]).map(drop)
    })
}

/// `tether --version`'s version word.
fn version(cli: &Path) -> anyhow::Result<String> {
    let mut c = Command::new(cli);
    c.arg("--version");
    let out = checked(c, "tether --version")?;
    out.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .context("tether --version printed no version")
}

/// Types `input` into the terminal the smoke keeps open (`update-smoke`) and waits for `expect`.
fn exec(rig: &UpdateRig<'_>, input: &str, expect: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "organizationId": ORG, "sessionId": "update-smoke", "input": input,
        "expect": expect, "timeoutMs": 15000,
    })
    .to_string();
    let mut curl = Command::new("curl");
    curl.arg("--cacert")
        .arg(rig.ca)
        .args(["-sS", "--max-time", "20", "-X", "POST"])
        .args(["-H", "content-type: application/json", "--data", &body])
        .arg(format!("{}/debug/exec", rig.relay_http));
    let answer = checked(curl, "curl to the relay")?;
    ensure!(
        answer.contains(expect),
        "the terminal did not answer: {answer}"
    );
    Ok(())
}
