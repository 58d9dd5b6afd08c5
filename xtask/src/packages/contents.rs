//! What every package holds, read from the release archive: the three binaries as they
//! are in it, the man page and completions the CLI prints of its own clap definition, the
//! licence, and the facts (version, architecture, commit, time) the formats stamp.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::bundle::archive::{self, EntryKind};
use crate::bundle::manifest;
use crate::flags::Format;
use crate::targets::{self, Arch};
use tether_contract::bundle_layout as layout;

/// The packaging release of a version (`-1`): bumped only to repackage the same binaries.
pub const RELEASE: &str = "1";
/// Who the packages name as their maintainer.
pub const MAINTAINER: &str = "The tether developers <tether@tether.dev>";
/// The project's home page.
pub const HOMEPAGE: &str = "https://github.com/tether-dev/tether";
/// The one-line summary every format shows.
pub const SUMMARY: &str = "Open terminals on this machine from anywhere, through a relay";
/// The longer description, one paragraph (each format wraps it).
pub const DESCRIPTION: &str = "tether's host service dials out to a relay so that remote clients can open terminals on this machine. This package holds the tether command line, the host service tether-host and the pty daemon tether-ptyd.";
/// Where the daemons go on a packaged install; the CLI finds them there from /usr/bin.
pub const LIB_DIR: &str = "/usr/lib/tether";

/// Where each binary is installed by every package and the image: `(file name, path)`.
pub fn installed_binaries() -> [(&'static str, String); 3] {
    [
        (layout::CLI.name, "/usr/bin/tether".to_string()),
        (
            layout::HOST.name,
            format!("{LIB_DIR}/{}", layout::HOST.name),
        ),
        (
            layout::PTYD.name,
            format!("{LIB_DIR}/{}", layout::PTYD.name),
        ),
    ]
}

/// The three binaries of an archive's `entries`, by file name.
pub fn archive_binaries(entries: &[archive::ArchiveEntry]) -> BTreeMap<&'static str, Vec<u8>> {
    let mut binaries = BTreeMap::new();
    for binary in layout::BINARIES {
        if let Some(entry) = entries.iter().find(|e| in_bundle(e, binary.path)) {
            binaries.insert(binary.name, entry.bytes.clone());
        }
    }
    binaries
}

/// Whether `entry` is the file at `rel` under the archive's top directory.
fn in_bundle(entry: &archive::ArchiveEntry, rel: &str) -> bool {
    entry.kind == EntryKind::File && entry.path.split_once('/').map(|p| p.1) == Some(rel)
}

/// A bundle's binaries and texts, ready to lay out in any format.
pub struct Source {
    /// The release version (`0.1.0`).
    pub version: String,
    /// The target name (`linux-x64`).
    pub target: String,
    /// The CPU the binaries are for.
    pub arch: Arch,
    /// The commit the archive was built from.
    pub git_sha: String,
    /// The archive's time stamp (`SOURCE_DATE_EPOCH` of its build).
    pub epoch: u64,
    /// `tether`, `tether-host` and `tether-ptyd`, by file name, as in the archive.
    pub binaries: BTreeMap<&'static str, Vec<u8>>,
    /// The licence text.
    pub license: Vec<u8>,
    /// tether(1) in roff.
    pub manpage: Vec<u8>,
    /// The completion scripts for bash, zsh and fish.
    pub completions: Completions,
}

/// The shell completion scripts.
pub struct Completions {
    /// bash's.
    pub bash: Vec<u8>,
    /// zsh's (`_tether`).
    pub zsh: Vec<u8>,
    /// fish's.
    pub fish: Vec<u8>,
}

impl Source {
    /// Reads `archive` (a verified `tether-<version>-<target>.tar.gz`) and asks its CLI for
    /// the man page and completions.
    pub fn from_archive(archive: &Path) -> anyhow::Result<Source> {
        let bytes =
            std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
        let manifest = manifest::in_archive(&bytes)?;
        let target = targets::by_name(&manifest.target)?;
        if target.os != targets::Os::Linux {
            bail!(
                "packages are made for Linux targets; {} is not one",
                target.name
            );
        }
        let entries = archive::read(&bytes)?;
        let file = |rel: &str| {
            entries
                .iter()
                .find(|e| in_bundle(e, rel))
                .with_context(|| format!("{} has no {rel}", archive.display()))
        };
        let binaries = archive_binaries(&entries);
        if binaries.len() != layout::BINARIES.len() {
            bail!(
                "{} lacks a binary: it is not a verified bundle",
                archive.display()
            );
        }
        let epoch = file(layout::CLI.path)?.mtime;
        let license = file("LICENSE")?.bytes.clone();
        let (manpage, completions) = from_the_cli(&binaries[layout::CLI.name], target.name)?;
        Ok(Source {
            version: manifest.version,
            target: manifest.target,
            arch: target.arch,
            git_sha: manifest.git_sha,
            epoch,
            binaries,
            license,
            manpage,
            completions,
        })
    }

    /// What a package of `format` must say about itself.
    pub fn facts(&self, format: Format) -> Facts {
        Facts {
            version: self.version.clone(),
            arch: arch_name(format, self.arch).to_string(),
            git_sha: self.git_sha.clone(),
        }
    }

    /// The changelog entry every format carries: which version, from which commit.
    pub fn changelog_line(&self) -> String {
        format!(
            "Release {} built from commit {}.",
            self.version, self.git_sha
        )
    }
}

/// Runs the archive's own CLI for its man page and completion scripts: they come from the
/// clap definition of exactly these binaries. A linux-arm64 CLI runs here through
/// qemu-user-static, which `.ci/setup` registers.
fn from_the_cli(cli: &[u8], target: &str) -> anyhow::Result<(Vec<u8>, Completions)> {
    let dir = tempfile::tempdir().context("cannot create a scratch directory")?;
    let path = dir.path().join(layout::CLI.name);
    std::fs::write(&path, cli)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    let run = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let out = Command::new(&path)
            .args(args)
            .env_clear()
            .output()
            .with_context(|| {
                format!("cannot run the {target} tether to print its man page (for another CPU, install qemu-user-static: `bash .ci/setup`)")
            })?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!(
                "`tether {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    };
    Ok((
        run(&["manpage"])?,
        Completions {
            bash: run(&["completions", "bash"])?,
            zsh: run(&["completions", "zsh"])?,
            fish: run(&["completions", "fish"])?,
        },
    ))
}

/// `bytes` gzip-compressed as `gzip -9n` does: no name, no time (Debian policy 12.3).
pub fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

/// `epoch` printed by `date -u` with `format` (`-R` for RFC 2822, `+%Y-%m-%dT%H:%M:%SZ`
/// for RFC 3339).
pub fn utc(epoch: u64, format: &str) -> String {
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), format])
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// `text` in lines of at most `width` characters, broken between words.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// What the archive says a package must match.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The version.
    pub version: String,
    /// The architecture in the package's format's words.
    pub arch: String,
    /// The commit.
    pub git_sha: String,
}

/// A format's name for an architecture.
pub fn arch_name(format: Format, arch: Arch) -> &'static str {
    match format {
        Format::Rpm | Format::Tar => arch.name(),
        Format::Deb | Format::Oci => debian_arch(arch),
    }
}

/// Debian's name for an architecture (the `.deb`'s and the image's).
pub fn debian_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "amd64",
        Arch::Aarch64 => "arm64",
    }
}
