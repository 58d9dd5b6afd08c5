//! The `.rpm`, written by the `rpm` crate (rpm-rs, the library under cargo-generate-rpm):
//! no spec file or rpmbuild run, the build time fixed to the archive's epoch.

use rpm::{BuildConfig, CompressionType, FileOptions, PackageBuilder};

use super::contents::{self, Source, DESCRIPTION, HOMEPAGE, LIB_DIR, MAINTAINER, SUMMARY};

/// Builds the `.rpm` bytes.
pub fn build(source: &Source) -> anyhow::Result<Vec<u8>> {
    let arch = source.arch.name();
    let config = BuildConfig::v4()
        .compression(CompressionType::Gzip)
        .source_date(u32::try_from(source.epoch)?);
    let mut builder = PackageBuilder::new("tether", &source.version, "MIT", arch, SUMMARY);
    builder
        .using_config(config)
        .release(contents::RELEASE)
        .description(contents::wrap(DESCRIPTION, 79).join("\n"))
        .url(HOMEPAGE)
        .vendor("The tether developers")
        .packager(MAINTAINER)
        .group("Applications/Internet")
        .build_host("tether-release")
        .add_changelog_entry(
            format!("{MAINTAINER} - {}-{}", source.version, contents::RELEASE),
            format!("- {}", source.changelog_line()),
            u32::try_from(source.epoch)?,
        );
    let executable = |dest: &str| FileOptions::new(dest).permissions(0o755);
    let plain = |dest: &str| FileOptions::new(dest).permissions(0o644);
    builder.with_dir_entry(FileOptions::dir(LIB_DIR).permissions(0o755))?;
    for (name, path) in contents::installed_binaries() {
        builder.with_file_contents(source.binaries[name].clone(), executable(&path))?;
    }
    builder.with_file_contents(
        contents::gzip(&source.manpage)?,
        plain("/usr/share/man/man1/tether.1.gz").doc(),
    )?;
    builder.with_file_contents(
        source.completions.bash.clone(),
        plain("/usr/share/bash-completion/completions/tether"),
    )?;
    builder.with_file_contents(
        source.completions.zsh.clone(),
        plain("/usr/share/zsh/site-functions/_tether"),
    )?;
    builder.with_file_contents(
        source.completions.fish.clone(),
        plain("/usr/share/fish/vendor_completions.d/tether.fish"),
    )?;
    builder.with_dir_entry(FileOptions::dir("/usr/share/licenses/tether").permissions(0o755))?;
    builder.with_file_contents(
        source.license.clone(),
        plain("/usr/share/licenses/tether/LICENSE").license(),
    )?;
    let package = builder.build()?;
    let mut bytes = Vec::new();
    package.write(&mut bytes)?;
    Ok(bytes)
}
