//! `cargo xtask sign`: the release's checksums and update metadata, signed with minisign
//! (contract sections 8 and 11). `SHA256SUMS` lists every archive, package, image, SBOM
//! and `install.sh`; `latest.json` names each target's archive and hash; both get a
//! `.minisig` that the standard `minisign -V` and `tether self-update` check.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use minisign::{PublicKey, SecretKey, SecretKeyBox, SignatureBox};

use crate::bundle::digest::sha256_hex;
use crate::bundle::manifest::{self, Manifest};
use crate::bundle::{release_key, verify};
use crate::flags::SignArgs;

/// The environment variable holding the minisign secret key (the key file's text).
pub const SECRET_ENV: &str = "TETHER_SIGNING_KEY";
/// Its password, for an encrypted key.
pub const PASSWORD_ENV: &str = "TETHER_SIGNING_KEY_PASSWORD";

pub use tether_contract::latest_json::{Latest, LatestTarget};

/// Signs the release files in `args.dir`.
pub fn run(args: &SignArgs) -> anyhow::Result<()> {
    let root = crate::flags::project_root();
    let dir = root.join(&args.dir);
    let public = release_key::read(root.join(&args.public_key))?;
    let text = std::env::var(SECRET_ENV).with_context(|| {
        format!(
            "{SECRET_ENV} is not set: it holds the minisign secret key (the release's CI secret)"
        )
    })?;
    let secret = secret_key(&text, std::env::var(PASSWORD_ENV).ok(), &public)?;
    copy_installer(&root, &dir)?;
    sign_dir(&dir, &args.base_url, &secret, &public)?;
    eprintln!(
        "==> signed SHA256SUMS and latest.json in {} with key {} (check: minisign -Vm {}/SHA256SUMS -p {})",
        dir.display(),
        public.id,
        dir.display(),
        args.public_key.display()
    );
    Ok(())
}

/// Writes and signs `SHA256SUMS` and `latest.json` for the release files in `dir`.
pub fn sign_dir(
    dir: &Path,
    base_url: &str,
    secret: &SecretKey,
    public: &release_key::ReleaseKey,
) -> anyhow::Result<()> {
    let archives = archives(dir)?;
    let latest = serde_json::to_vec_pretty(&latest(&archives, base_url)?)?;
    let sums = sha256sums(dir)?;
    write_signed(dir, "SHA256SUMS", sums.as_bytes(), secret, public)?;
    write_signed(dir, "latest.json", &latest, secret, public)
}

/// The secret key in `text` (opened with `password` if encrypted), checked to belong to
/// `public` by signing a probe and verifying it with `public`.
///
/// Keys made by the `minisign` tool (0.11) without a password (`-G -W`) carry no checksum,
/// which the crate's unencrypted path calls "Corrupted key" (tauri-apps/tauri#14829); such
/// a key is read field by field instead. The probe signature is what proves the key whole.
pub fn secret_key(
    text: &str,
    password: Option<String>,
    public: &release_key::ReleaseKey,
) -> anyhow::Result<SecretKey> {
    let secret_box = SecretKeyBox::from_string(text)
        .map_err(|e| anyhow::anyhow!("{SECRET_ENV} is not a minisign secret key: {e}"))?;
    let secret = match password {
        Some(password) => secret_box.into_secret_key(Some(password)),
        None => secret_box
            .into_unencrypted_secret_key()
            .or_else(|e| unencrypted_without_checksum(text).ok_or(e)),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open the key in {SECRET_ENV} (an encrypted key needs {PASSWORD_ENV}): {e}"
        )
    })?;
    let derived = PublicKey::from_secret_key(&secret)
        .map_err(|e| anyhow::anyhow!("cannot derive the public key of {SECRET_ENV}: {e}"))?;
    ensure!(
        derived.to_base64() == public.base64,
        "{SECRET_ENV} is not the secret key of the public key {}: refusing to sign with a key users do not trust",
        public.id
    );
    let probe = b"tether signing key probe";
    let signed = minisign::sign(None, &secret, Cursor::new(probe), None, None)
        .and_then(|s| minisign::verify(&derived, &s, Cursor::new(probe), true, false, false));
    signed.map_err(|e| {
        anyhow::anyhow!("the key in {SECRET_ENV} does not make valid signatures (damaged?): {e}")
    })?;
    Ok(secret)
}

/// An unencrypted key (KDF algorithm zero) whose checksum field the standard tool left empty.
fn unencrypted_without_checksum(text: &str) -> Option<SecretKey> {
    use base64::Engine;
    let line = text.lines().nth(1)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    // sig_alg "Ed", kdf_alg 0 0: not encrypted.
    (bytes.get(0..4)? == b"Ed\0\0").then_some(())?;
    SecretKey::from_bytes(&bytes).ok()
}

/// Copies the repository's `install.sh` beside the archives.
fn copy_installer(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let from = root.join("install.sh");
    std::fs::copy(&from, dir.join("install.sh"))
        .with_context(|| format!("cannot copy {} into {}", from.display(), dir.display()))?;
    Ok(())
}

/// Every archive in `dir`, verified, with its manifest and sha256.
fn archives(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Manifest, String)>> {
    let mut out = Vec::new();
    for path in files_ending(dir, ".tar.gz")? {
        let report = verify::verify_path(&path)?;
        if !report.problems.is_empty() {
            bail!(
                "{} failed verification: not signing it\n{}",
                path.display(),
                report.problems.join("\n")
            );
        }
        let bytes = std::fs::read(&path)?;
        let manifest = manifest::in_archive(&bytes)?;
        out.push((path, manifest, sha256_hex(&bytes)));
    }
    ensure!(
        !out.is_empty(),
        "no archive in {}: run `cargo xtask dist` first",
        dir.display()
    );
    Ok(out)
}

/// `latest.json` for `archives`, which must all be one version.
fn latest(archives: &[(PathBuf, Manifest, String)], base_url: &str) -> anyhow::Result<Latest> {
    let version = archives[0].1.version.clone();
    let mut targets = BTreeMap::new();
    for (path, manifest, sha256) in archives {
        ensure!(
            manifest.version == version,
            "{} is version {}, the others {version}: one release, one version",
            path.display(),
            manifest.version
        );
        let name = file_name(path)?;
        let entry = LatestTarget {
            url: format!("{}/{name}", base_url.trim_end_matches('/')),
            sha256: sha256.clone(),
        };
        targets.insert(manifest.target.clone(), entry);
    }
    Ok(Latest { version, targets })
}

/// `<hex>  <name>` for every archive, package, image, SBOM and the installer in `dir`,
/// sorted by name. Each package is checked against the archive beside it first.
fn sha256sums(dir: &Path) -> anyhow::Result<String> {
    let mut files = files_ending(dir, ".tar.gz")?;
    for ending in crate::packages::ENDINGS {
        for package in files_ending(dir, ending)? {
            let problems = crate::packages::check::beside_archive(&package)?;
            if !problems.is_empty() {
                bail!(
                    "{} failed verification: not signing it\n{}",
                    package.display(),
                    problems.join("\n")
                );
            }
            files.push(package);
        }
    }
    files.extend(files_ending(dir, ".cdx.json")?);
    files.push(dir.join("install.sh"));
    files.sort();
    let mut out = String::new();
    for path in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        out.push_str(&format!("{}  {}\n", sha256_hex(&bytes), file_name(&path)?));
    }
    Ok(out)
}

/// Writes `dir/name` and `dir/name.minisig`, and checks the signature before leaving.
pub fn write_signed(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    secret: &SecretKey,
    public: &release_key::ReleaseKey,
) -> anyhow::Result<()> {
    let trusted = format!("file:{name}\tkey:{}", public.id);
    let signature = minisign::sign(None, secret, Cursor::new(bytes), Some(&trusted), None)
        .map_err(|e| anyhow::anyhow!("cannot sign {name}: {e}"))?;
    let checked = PublicKey::from_base64(&public.base64).and_then(|pk| {
        let again = SignatureBox::from_string(&signature.to_string())?;
        minisign::verify(&pk, &again, Cursor::new(bytes), true, false, false)
    });
    checked.map_err(|e| anyhow::anyhow!("the signature of {name} does not verify: {e}"))?;
    std::fs::write(dir.join(name), bytes)?;
    std::fs::write(dir.join(format!("{name}.minisig")), signature.to_string())?;
    Ok(())
}

fn files_ending(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix) && p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::archive::sidecar_line;
    use crate::fixtures::{bundle_archive, bundle_files, fixture};
    use minisign::KeyPair;
    use std::process::Command;

    /// A fresh key pair: the secret key's text and the public key as `release_key` reads it.
    fn key_pair(dir: &Path) -> (String, release_key::ReleaseKey, PathBuf) {
        let KeyPair { pk, sk } = KeyPair::generate_unencrypted_keypair().expect("keys");
        let secret = sk.to_box(None).expect("box").to_string();
        let path = dir.join("test.pub");
        std::fs::write(&path, pk.to_box().expect("box").to_string()).expect("write");
        (secret, release_key::read(path.clone()).expect("read"), path)
    }

    fn release_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = bundle_files(Some(fixture("static-x86_64")));
        let bytes = bundle_archive("0.1.0", &files, &files);
        let name = "tether-0.1.0-linux-x64.tar.gz";
        std::fs::write(dir.path().join(name), &bytes).expect("write");
        std::fs::write(
            dir.path().join(format!("{name}.sha256")),
            sidecar_line(&bytes, name),
        )
        .expect("write");
        std::fs::write(dir.path().join("install.sh"), "#!/bin/sh\n").expect("write");
        let sbom = dir.path().join("tether-0.1.0-linux-x64.cdx.json");
        std::fs::write(sbom, crate::fixtures::sbom()).expect("write");
        dir
    }

    fn run_in(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(program)
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{program} (bash .ci/setup installs it): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn the_standard_tools_accept_what_sign_writes() {
        let dir = release_dir();
        let (secret_text, public, public_path) = key_pair(dir.path());
        let secret = secret_key(&secret_text, None, &public).expect("secret");
        sign_dir(dir.path(), "https://example.test/v0.1.0/", &secret, &public).expect("sign");

        let sums = std::fs::read_to_string(dir.path().join("SHA256SUMS")).expect("sums");
        let names: Vec<&str> = sums.lines().filter_map(|l| l.split("  ").nth(1)).collect();
        assert_eq!(
            names,
            [
                "install.sh",
                "tether-0.1.0-linux-x64.cdx.json",
                "tether-0.1.0-linux-x64.tar.gz"
            ]
        );
        let (ok, out) = run_in(dir.path(), "sha256sum", &["-c", "SHA256SUMS"]);
        assert!(ok, "{out}");
        let key = public_path.to_string_lossy().into_owned();
        for file in ["SHA256SUMS", "latest.json"] {
            let (ok, out) = run_in(dir.path(), "minisign", &["-Vm", file, "-p", &key]);
            assert!(ok, "minisign -V {file}: {out}");
        }

        let latest: Latest =
            serde_json::from_slice(&std::fs::read(dir.path().join("latest.json")).expect("read"))
                .expect("latest.json");
        assert_eq!(latest.version, "0.1.0");
        let target = &latest.targets["linux-x64"];
        assert_eq!(
            target.url,
            "https://example.test/v0.1.0/tether-0.1.0-linux-x64.tar.gz"
        );
        assert!(sums.contains(&format!("{}  tether-0.1.0-linux-x64.tar.gz", target.sha256)));

        // One byte changed: minisign refuses it.
        std::fs::write(dir.path().join("SHA256SUMS"), sums.replacen('0', "1", 1)).expect("write");
        let (ok, _) = run_in(dir.path(), "minisign", &["-Vm", "SHA256SUMS", "-p", &key]);
        assert!(!ok, "a tampered SHA256SUMS verified");
    }

    /// A key pair made by the standard `minisign` tool, with `password` or without (`-W`).
    fn tool_key_pair(dir: &Path, password: Option<&str>) -> (String, release_key::ReleaseKey) {
        let (secret, public) = (dir.join("tool.key"), dir.join("tool.pub"));
        let mut command = Command::new("minisign");
        command
            .arg("-G")
            .arg("-f")
            .arg("-p")
            .arg(&public)
            .arg("-s")
            .arg(&secret);
        if password.is_none() {
            command.arg("-W");
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("minisign (bash .ci/setup installs it)");
        if let (Some(password), Some(mut stdin)) = (password, child.stdin.take()) {
            use std::io::Write;
            writeln!(stdin, "{password}\n{password}").expect("password");
        }
        assert!(
            child.wait().expect("minisign").success(),
            "minisign -G failed"
        );
        let text = std::fs::read_to_string(&secret).expect("secret key");
        (text, release_key::read(public).expect("public key"))
    }

    #[test]
    fn keys_made_by_the_minisign_tool_sign_with_and_without_a_password() {
        for password in [None, Some("s3cret pass")] {
            let dir = release_dir();
            let (text, public) = tool_key_pair(dir.path(), password);
            let secret = secret_key(&text, password.map(str::to_string), &public)
                .unwrap_or_else(|e| panic!("password {password:?}: {e:#}"));
            sign_dir(dir.path(), "https://example.test/v0.1.0/", &secret, &public).expect("sign");
            let key = dir.path().join("tool.pub").to_string_lossy().into_owned();
            let (ok, out) = run_in(dir.path(), "minisign", &["-Vm", "SHA256SUMS", "-p", &key]);
            assert!(ok, "password {password:?}: {out}");
        }
    }

    #[test]
    fn a_damaged_unencrypted_key_is_refused() {
        use base64::Engine;
        let dir = tempfile::tempdir().expect("tempdir");
        let (text, public) = tool_key_pair(dir.path(), None);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let engine = base64::engine::general_purpose::STANDARD;
        let mut bytes = engine.decode(lines[1].trim()).expect("base64");
        bytes[67] ^= 0x01; // a byte of the Ed25519 seed (after algs, salt, limits, key id)
        lines[1] = engine.encode(bytes);
        let refused = secret_key(&lines.join("\n"), None, &public).err();
        assert!(refused.is_some(), "a damaged key was accepted");
    }

    #[test]
    fn a_secret_key_of_another_pair_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, public, _) = key_pair(dir.path());
        let KeyPair { sk, .. } = KeyPair::generate_unencrypted_keypair().expect("keys");
        let other = sk.to_box(None).expect("box").to_string();
        let refused = secret_key(&other, None, &public)
            .err()
            .map(|e| e.to_string());
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("refusing to sign")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_archive_that_fails_verification_is_not_signed() {
        let dir = release_dir();
        let name = "tether-0.1.0-linux-x64.tar.gz.sha256";
        std::fs::write(
            dir.path().join(name),
            "0000  tether-0.1.0-linux-x64.tar.gz\n",
        )
        .expect("write");
        let (secret_text, public, _) = key_pair(dir.path());
        let secret = secret_key(&secret_text, None, &public).expect("secret");
        let refused = sign_dir(dir.path(), "https://example.test", &secret, &public);
        assert!(refused.is_err());
        assert!(!dir.path().join("SHA256SUMS").exists());
    }
}
