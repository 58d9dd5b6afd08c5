//! The `.deb`: the tree staged in a scratch directory with fixed modes and times, then
//! packed by Debian's own `dpkg-deb` (root-owned entries, sorted, `SOURCE_DATE_EPOCH`
//! for the ar members), so the format is the one dpkg and lintian know.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use md5::Digest;

use super::contents::{self, Source, DESCRIPTION, HOMEPAGE, MAINTAINER, SUMMARY};

/// Where each file of the package goes, its bytes and whether it is executable.
pub fn files(source: &Source) -> anyhow::Result<Vec<(String, Vec<u8>, bool)>> {
    let doc = "/usr/share/doc/tether";
    let mut files: Vec<(String, Vec<u8>, bool)> = contents::installed_binaries()
        .into_iter()
        .map(|(name, path)| (path, source.binaries[name].clone(), true))
        .collect();
    files.extend([
        (
            "/usr/share/man/man1/tether.1.gz".into(),
            contents::gzip(&source.manpage)?,
            false,
        ),
        (
            "/usr/share/bash-completion/completions/tether".into(),
            source.completions.bash.clone(),
            false,
        ),
        (
            "/usr/share/zsh/vendor-completions/_tether".into(),
            source.completions.zsh.clone(),
            false,
        ),
        (
            "/usr/share/fish/vendor_completions.d/tether.fish".into(),
            source.completions.fish.clone(),
            false,
        ),
        (format!("{doc}/copyright"), copyright(source), false),
        (
            format!("{doc}/changelog.Debian.gz"),
            contents::gzip(changelog(source).as_bytes())?,
            false,
        ),
        (
            "/usr/share/lintian/overrides/tether".into(),
            LINTIAN_OVERRIDES.as_bytes().to_vec(),
            false,
        ),
    ]);
    Ok(files)
}

/// What lintian reports that is right for this package, each with the reason.
const LINTIAN_OVERRIDES: &str = include_str!("lintian-overrides");

/// Builds the `.deb` bytes.
pub fn build(source: &Source) -> anyhow::Result<Vec<u8>> {
    if crate::path_search::which("dpkg-deb").is_none() {
        bail!("the .deb is packed by dpkg-deb, which is not installed: run `apt-get install dpkg` (Debian and Ubuntu have it)");
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let root = scratch.path().join("root");
    let files = files(source)?;
    let mut installed_bytes = 0u64;
    for (path, bytes, executable) in &files {
        let dest = root.join(path.trim_start_matches('/'));
        write(&dest, bytes, if *executable { 0o755 } else { 0o644 })?;
        installed_bytes += bytes.len() as u64;
    }
    let control = control(source, installed_bytes.div_ceil(1024) + files.len() as u64);
    write(&root.join("DEBIAN/control"), control.as_bytes(), 0o644)?;
    let md5sums: String = files
        .iter()
        .map(|(path, bytes, _)| {
            format!(
                "{:x}  {}\n",
                md5::Md5::digest(bytes),
                path.trim_start_matches('/')
            )
        })
        .collect();
    write(&root.join("DEBIAN/md5sums"), md5sums.as_bytes(), 0o644)?;
    normalise_dirs(&root)?;
    stamp(&root, source.epoch)?;
    let out = scratch.path().join("package.deb");
    let status = Command::new("dpkg-deb")
        .env("SOURCE_DATE_EPOCH", source.epoch.to_string())
        .args(["--root-owner-group", "-Zgzip", "-z9", "--build"])
        .arg(&root)
        .arg(&out)
        .output()
        .context("cannot run dpkg-deb")?;
    if !status.status.success() {
        bail!(
            "dpkg-deb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
    std::fs::read(&out).context("dpkg-deb wrote no package")
}

/// `DEBIAN/control`.
fn control(source: &Source, installed_kib: u64) -> String {
    // Continuation lines start with one space.
    let wrapped: String = contents::wrap(DESCRIPTION, 72)
        .iter()
        .map(|line| format!(" {line}\n"))
        .collect();
    format!(
        "Package: tether\nVersion: {}-{}\nArchitecture: {}\nMaintainer: {MAINTAINER}\nInstalled-Size: {installed_kib}\nSection: net\nPriority: optional\nHomepage: {HOMEPAGE}\nDescription: {SUMMARY}\n{wrapped}",
        source.version,
        contents::RELEASE,
        contents::debian_arch(source.arch),
    )
}

/// `/usr/share/doc/tether/copyright` in the machine-readable format (DEP-5).
fn copyright(source: &Source) -> Vec<u8> {
    let license = String::from_utf8_lossy(&source.license);
    let body: String = license
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                " .\n".to_string()
            } else {
                format!(" {l}\n")
            }
        })
        .collect();
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: tether\nSource: {HOMEPAGE}\n\nFiles: *\nCopyright: 2026 The tether developers\nLicense: Expat\n{body}"
    )
    .into_bytes()
}

/// `changelog.Debian`: one entry for this version, dated by the build's epoch.
pub fn changelog(source: &Source) -> String {
    format!(
        "tether ({}-{}) unstable; urgency=medium\n\n  * {}\n\n -- {MAINTAINER}  {}\n",
        source.version,
        contents::RELEASE,
        source.changelog_line(),
        contents::utc(source.epoch, "-R")
    )
}

fn write(dest: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(dest, bytes).with_context(|| format!("cannot write {}", dest.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Every directory 0755 whatever the umask.
fn normalise_dirs(dir: &Path) -> anyhow::Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            normalise_dirs(&entry.path())?;
        }
    }
    Ok(())
}

/// Every entry's time set to `epoch` (dpkg-deb packs the times it finds).
fn stamp(root: &Path, epoch: u64) -> anyhow::Result<()> {
    let status = Command::new("find")
        .arg(root)
        .args([
            "-exec",
            "touch",
            "-h",
            "-d",
            &format!("@{epoch}"),
            "{}",
            "+",
        ])
        .status()
        .context("cannot run find")?;
    if !status.success() {
        bail!("could not set the times of the staged package");
    }
    Ok(())
}
