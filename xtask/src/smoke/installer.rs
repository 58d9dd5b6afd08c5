//! `install.sh` in the smoke, here and in each container: the harness serves two release
//! directories made from the archive under test — the archive as built, and the same with
//! one byte changed — and install.sh must refuse the second with nothing installed and
//! install the first.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context};

use super::steps::checked;
use super::{record, StepResult};
use crate::bundle::digest::sha256_hex;
use crate::bundle::release_key::ReleaseKey;
use crate::sign;
use tether_contract::key_file;

/// The fresh key the smoke signs its releases with (users' installs would refuse them).
pub(super) struct TestKey {
    /// The public key, as minisign and install.sh's `--key` take it, with its id.
    pub public: ReleaseKey,
    /// The secret key.
    pub secret: minisign::SecretKey,
}

impl TestKey {
    /// A new key pair.
    pub fn new() -> anyhow::Result<TestKey> {
        let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair()
            .map_err(|e| anyhow::anyhow!("cannot make a test key: {e}"))?;
        let base64 = pk.to_base64();
        let public = ReleaseKey {
            id: key_file::key_id(&base64).context("test key id")?,
            base64,
        };
        Ok(TestKey { public, secret: sk })
    }
}

/// `<dir>/good` and `<dir>/tampered`: release directories of `archive`, their `SHA256SUMS`
/// signed with `key`.
pub(super) fn release_dirs(archive: &Path, dir: &Path, key: &TestKey) -> anyhow::Result<()> {
    let name = archive
        .file_name()
        .context("archive name")?
        .to_string_lossy()
        .into_owned();
    let bytes = std::fs::read(archive)?;
    let mut tampered = bytes.clone();
    if let Some(last) = tampered.last_mut() {
        *last ^= 0xff;
    }
    let sums = format!("{}  {name}\n", sha256_hex(&bytes));
    let sidecar = std::fs::read(archive.with_file_name(format!("{name}.sha256")))?;
    for (sub, archive_bytes) in [("good", &bytes), ("tampered", &tampered)] {
        write_release(&dir.join(sub), (&name, archive_bytes), &sidecar, &sums, key)?;
    }
    Ok(())
}

/// A release directory: the archive `name` with `bytes`, its `.sha256` and `SHA256SUMS`
/// (`sums`) signed with `key`.
pub(super) fn write_release(
    release: &Path,
    (name, bytes): (&str, &[u8]),
    sidecar: &[u8],
    sums: &str,
    key: &TestKey,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(release)?;
    std::fs::write(release.join(name), bytes)?;
    std::fs::write(release.join(format!("{name}.sha256")), sidecar)?;
    sign::write_signed(
        release,
        "SHA256SUMS",
        sums.as_bytes(),
        &key.secret,
        &key.public,
    )
}

/// Runs install.sh against `<releases>/tampered` (refused, nothing installed), then
/// `<releases>/good` into `prefix`; returns the installed CLI.
pub(super) fn install(
    results: &mut Vec<StepResult>,
    place: &str,
    (releases, key): (&str, &str),
    ca: &Path,
    prefix: &Path,
) -> anyhow::Result<PathBuf> {
    let script = crate::flags::project_root().join("install.sh");
    let run = |url: String, prefix: &Path| {
        let mut c = Command::new("sh");
        c.arg(&script)
            .arg("--prefix")
            .arg(prefix)
            .args(["--key", key])
            .env(tether_contract::environment::DOWNLOAD_URL_ENV, url)
            .env("CURL_CA_BUNDLE", ca)
            .env("SSL_CERT_FILE", ca);
        c.output().context("cannot run sh install.sh")
    };
    record(results, place, "install.sh refuses tampering", || {
        let refused_prefix = prefix.with_file_name("refused prefix");
        let out = run(format!("{releases}/tampered"), &refused_prefix)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success(),
            "install.sh installed a tampered archive"
        );
        ensure!(stderr.contains("does not match SHA256SUMS"), "{stderr}");
        ensure!(
            !refused_prefix.join("bin").exists(),
            "something was installed"
        );
        Ok(())
    })?;
    record(results, place, "install.sh over https://", || {
        let out = run(format!("{releases}/good"), prefix)?;
        ensure!(
            out.status.success(),
            "install.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut version = Command::new(prefix.join("bin/tether"));
        version.arg("--version");
        checked(version, "the installed tether --version").map(drop)
    })?;
    Ok(prefix.join("bin/tether"))
}

/// Runs `/install.sh` in container `os` against the harness container (`harness:8080`):
/// the tampered release refused with nothing installed, then the good one into `prefix`.
pub(super) fn install_in_container(
    results: &mut Vec<StepResult>,
    place: &str,
    (os, key): (&str, &str),
    prefix: &str,
) -> anyhow::Result<String> {
    let run = |release: &str, prefix: &str| {
        let mut c = Command::new("docker");
        c.args(["exec", "-e"])
            .arg(format!(
                "TETHER_DOWNLOAD_URL=https://harness:8080/releases/{release}"
            ))
            .args(["-e", "CURL_CA_BUNDLE=/harness-ca.pem", os])
            .args(["/bin/sh", "/install.sh", "--prefix", prefix, "--key", key]);
        c.output().context("cannot run docker exec")
    };
    record(results, place, "install.sh refuses tampering", || {
        let out = run("tampered", "/opt/refused")?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            !out.status.success(),
            "install.sh installed a tampered archive"
        );
        ensure!(stderr.contains("does not match SHA256SUMS"), "{stderr}");
        let mut listing = Command::new("docker");
        listing.args(["exec", os, "/bin/sh", "-c", "ls /opt/refused 2>&1 || true"]);
        let left = checked(listing, "ls /opt/refused")?;
        ensure!(
            !left.contains("bin"),
            "something was installed in /opt/refused: {left}"
        );
        Ok(())
    })?;
    record(results, place, "install.sh over https://", || {
        let out = run("good", prefix)?;
        ensure!(
            out.status.success(),
            "install.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    })?;
    Ok(prefix.to_string())
}
