//! Reading packages back, and the checks `dist` and `verify` make: the binaries equal to
//! the archive's, the file list the format promises, and the metadata (name, version,
//! architecture, licence, commit).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};

use super::contents::{arch_name, archive_binaries, installed_binaries, Facts};
use crate::bundle::{archive, manifest, verify};
use crate::flags::Format;
use crate::targets;

/// What a package says about itself and holds.
#[derive(Debug, Default)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Upstream version (without the packaging release).
    pub version: String,
    /// Architecture, in the format's own words.
    pub arch: String,
    /// Licence, as the format states it.
    pub license: String,
    /// The commit its changelog or annotations name.
    pub git_sha: String,
    /// Every regular file by absolute path.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads a `.deb`, `.rpm` or `.oci.tar` by its name.
pub fn read(path: &Path, name: &str) -> anyhow::Result<Package> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if name.ends_with(".deb") {
        read_deb(&bytes)
    } else if name.ends_with(".rpm") {
        read_rpm(&bytes)
    } else if name.ends_with(".oci.tar") {
        read_oci(&bytes)
    } else {
        bail!("{name} is not a .deb, .rpm or .oci.tar")
    }
}

/// The files each format holds besides the binaries.
fn expected_others(name: &str) -> Vec<&'static str> {
    if name.ends_with(".deb") {
        vec![
            "/usr/share/bash-completion/completions/tether",
            "/usr/share/doc/tether/changelog.Debian.gz",
            "/usr/share/doc/tether/copyright",
            "/usr/share/fish/vendor_completions.d/tether.fish",
            "/usr/share/lintian/overrides/tether",
            "/usr/share/man/man1/tether.1.gz",
            "/usr/share/zsh/vendor-completions/_tether",
        ]
    } else if name.ends_with(".rpm") {
        vec![
            "/usr/share/bash-completion/completions/tether",
            "/usr/share/fish/vendor_completions.d/tether.fish",
            "/usr/share/licenses/tether/LICENSE",
            "/usr/share/man/man1/tether.1.gz",
            "/usr/share/zsh/site-functions/_tether",
        ]
    } else {
        vec![]
    }
}

/// Problems of the package at `path` (named `name`) against the archive's `binaries`
/// and `facts` (version, architecture name, commit); empty when it is right.
pub fn problems(
    path: &Path,
    name: &str,
    binaries: &BTreeMap<&'static str, Vec<u8>>,
    facts: &Facts,
) -> Vec<String> {
    let package = match read(path, name) {
        Ok(package) => package,
        Err(e) => return vec![format!("{name}: unreadable: {e:#}")],
    };
    let mut problems = Vec::new();
    for (binary, at) in installed_binaries() {
        match (package.files.get(&at), binaries.get(binary)) {
            (None, _) => problems.push(format!("{name}: {at} is missing")),
            (Some(held), Some(want)) if held != want => problems.push(format!(
                "{name}: {at} differs from the archive's {binary} ({} bytes, the archive's {}): packages must hold the archive's own binaries",
                held.len(),
                want.len()
            )),
            _ => {}
        }
    }
    let mut expected: Vec<String> = installed_binaries().into_iter().map(|(_, p)| p).collect();
    expected.extend(expected_others(name).into_iter().map(str::to_string));
    expected.sort();
    let held: Vec<String> = package.files.keys().cloned().collect();
    for extra in held.iter().filter(|p| !expected.contains(p)) {
        problems.push(format!(
            "{name}: holds {extra}, which no tether package should"
        ));
    }
    for missing in expected.iter().filter(|p| !held.contains(p)) {
        if !installed_binaries().iter().any(|(_, b)| b == missing) {
            problems.push(format!("{name}: {missing} is missing"));
        }
    }
    if package.name != "tether" {
        problems.push(format!(
            "{name}: its name is {:?}, not \"tether\"",
            package.name
        ));
    }
    if package.version != facts.version {
        problems.push(format!(
            "{name}: version {} but the archive is {}",
            package.version, facts.version
        ));
    }
    if package.arch != facts.arch {
        problems.push(format!(
            "{name}: architecture {} but the archive's binaries are {}",
            package.arch, facts.arch
        ));
    }
    if !matches!(package.license.as_str(), "MIT" | "Expat") {
        problems.push(format!("{name}: licence {:?}, not MIT", package.license));
    }
    if package.git_sha != facts.git_sha {
        problems.push(format!(
            "{name}: built from commit {:?}, the archive from {}: refusing a package of another commit",
            package.git_sha, facts.git_sha
        ));
    }
    problems
}

/// The format a package file name is of.
pub fn format_of(name: &str) -> Option<Format> {
    [
        (".deb", Format::Deb),
        (".rpm", Format::Rpm),
        (".oci.tar", Format::Oci),
    ]
    .into_iter()
    .find(|(ending, _)| name.ends_with(ending))
    .map(|(_, format)| format)
}

/// Checks the package at `path` against the release archive of its version and
/// architecture in the same directory (which is verified too); returns the problems.
pub fn beside_archive(path: &Path) -> anyhow::Result<Vec<String>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("a package path has no file name")?;
    let format =
        format_of(name).with_context(|| format!("{name} is not a .deb, .rpm or .oci.tar"))?;
    let package = match read(path, name) {
        Ok(package) => package,
        Err(e) => return Ok(vec![format!("{name}: unreadable: {e:#}")]),
    };
    let target = targets::TARGETS
        .into_iter()
        .filter(|t| t.os == targets::Os::Linux)
        .find(|t| arch_name(format, t.arch) == package.arch)
        .with_context(|| {
            format!(
                "{name}: no Linux target has the architecture {:?}",
                package.arch
            )
        })?;
    let archive_path =
        path.with_file_name(manifest::bundle_stem(&package.version, target.name) + ".tar.gz");
    if !archive_path.is_file() {
        return Ok(vec![format!(
            "{name}: the archive it must match, {}, is not beside it",
            archive_path.display()
        )]);
    }
    let report = verify::verify_path(&archive_path)?;
    if !report.problems.is_empty() {
        return Ok(report.problems);
    }
    let bytes = std::fs::read(&archive_path)?;
    let manifest = manifest::in_archive(&bytes)?;
    let binaries = archive_binaries(&archive::read(&bytes)?);
    let facts = Facts {
        version: manifest.version,
        arch: arch_name(format, target.arch).to_string(),
        git_sha: manifest.git_sha,
    };
    Ok(problems(path, name, &binaries, &facts))
}

/// The commit named by "built from commit X." in a changelog.
fn commit_in(text: &str) -> String {
    text.split("built from commit ")
        .nth(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect())
        .unwrap_or_default()
}

fn read_deb(bytes: &[u8]) -> anyhow::Result<Package> {
    let mut archive = ar::Archive::new(bytes);
    let mut package = Package::default();
    let mut members = Vec::new();
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.context("corrupt ar member")?;
        let id = String::from_utf8_lossy(entry.header().identifier()).to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        members.push((id, data));
    }
    let ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    if ids != ["debian-binary", "control.tar.gz", "data.tar.gz"] {
        bail!("not a .deb as dpkg-deb -Zgzip writes it (members {ids:?})");
    }
    for (path, data) in tar_files(&gunzip(&members[1].1)?)? {
        if path == "/control" {
            let control = String::from_utf8_lossy(&data).to_string();
            let field = |name: &str| {
                control
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_string()
            };
            package.name = field("Package");
            package.version = field("Version")
                .rsplit_once('-')
                .map(|(v, _)| v.to_string())
                .unwrap_or_default();
            package.arch = field("Architecture");
        }
    }
    let data = gunzip(&members[2].1)?;
    package.files = tar_files(&data)?.into_iter().collect();
    if let Some(copyright) = package.files.get("/usr/share/doc/tether/copyright") {
        let text = String::from_utf8_lossy(copyright);
        package.license = text
            .lines()
            .find_map(|l| l.strip_prefix("License: "))
            .unwrap_or_default()
            .to_string();
    }
    if let Some(changelog) = package
        .files
        .get("/usr/share/doc/tether/changelog.Debian.gz")
    {
        package.git_sha = commit_in(&String::from_utf8_lossy(&gunzip(changelog)?));
    }
    Ok(package)
}

fn read_rpm(bytes: &[u8]) -> anyhow::Result<Package> {
    let rpm = rpm::Package::parse(&mut std::io::Cursor::new(bytes)).context("not an rpm")?;
    let meta = &rpm.metadata;
    let mut package = Package {
        name: meta.get_name()?.to_string(),
        version: meta.get_version()?.to_string(),
        arch: meta.get_arch()?.to_string(),
        license: meta.get_license()?.to_string(),
        ..Package::default()
    };
    if let Some(entry) = meta.get_changelog_entries()?.first() {
        package.git_sha = commit_in(&entry.description);
    }
    for file in rpm.files()? {
        let file = file?;
        let path = file.metadata.path().display().to_string();
        if let Some(content) = file.content() {
            if file.metadata.mode().file_type() == rpm::FileType::Regular {
                package.files.insert(path, content.to_vec());
            }
        }
    }
    Ok(package)
}

fn read_oci(bytes: &[u8]) -> anyhow::Result<Package> {
    let files: BTreeMap<String, Vec<u8>> = tar_files(bytes)?.into_iter().collect();
    let json = |path: &str| -> anyhow::Result<serde_json::Value> {
        let bytes = files
            .get(path)
            .with_context(|| format!("the image layout has no {path}"))?;
        Ok(serde_json::from_slice(bytes)?)
    };
    let blob = |digest: &serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let digest = digest.as_str().context("a digest is not a string")?;
        json(&format!(
            "/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        ))
    };
    let index = json("/index.json")?;
    let manifest = blob(&index["manifests"][0]["digest"])?;
    let config = blob(&manifest["config"]["digest"])?;
    let layers = manifest["layers"].as_array().context("no layers")?;
    if layers.len() != 1 {
        bail!("the image has {} layers; it must have one", layers.len());
    }
    let digest = layers[0]["digest"].as_str().context("layer digest")?;
    let layer = files
        .get(&format!(
            "/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        ))
        .context("the layer blob is missing")?;
    if crate::bundle::digest::sha256_hex(layer) != digest.trim_start_matches("sha256:") {
        bail!("the layer blob does not match its digest");
    }
    let labels = &config["config"]["Labels"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    Ok(Package {
        name: text(&labels["org.opencontainers.image.title"]),
        version: text(&labels["org.opencontainers.image.version"]),
        arch: text(&config["architecture"]),
        license: text(&labels["org.opencontainers.image.licenses"]),
        git_sha: text(&labels["org.opencontainers.image.revision"]),
        files: tar_files(&gunzip(layer)?)?.into_iter().collect(),
    })
}

fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .context("corrupt gzip data")?;
    Ok(out)
}

/// Every regular file of a tar, by absolute path (`./usr/bin/x` → `/usr/bin/x`).
fn tar_files(bytes: &[u8]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for entry in archive.entries().context("not a tar")? {
        let mut entry = entry.context("corrupt tar entry")?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.to_string_lossy().to_string();
        let path = format!("/{}", path.trim_start_matches("./").trim_start_matches('/'));
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        out.push((path, data));
    }
    Ok(out)
}
