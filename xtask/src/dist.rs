//! `cargo xtask dist`: build the binaries for a target, stage the bundle layout,
//! write `manifest.json`, pack deterministically, write the `.sha256`, and verify the
//! archive itself before calling it done.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::bundle::archive::{self, BundleFile};
use crate::bundle::dependencies::{sbom_name, sbom_problems};
use crate::bundle::manifest::{bundle_stem, describe};
use crate::bundle::release_key;
use crate::bundle::verify;
use crate::flags::DistArgs;
use crate::path_search::which;
use crate::step::step;
use crate::targets::{self, Os, Target};
use tether_contract::bundle_layout as layout;

const BUNDLE_README: &str = include_str!("bundle/readme.md");

/// Runs `dist` for every requested target.
pub fn run(sh: &Shell, args: &DistArgs) -> anyhow::Result<()> {
    let targets: Vec<Target> = if args.all {
        targets::TARGETS.to_vec()
    } else if args.target.is_empty() {
        bail!("name a target with --target <name> (linux-x64, linux-arm64, darwin-arm64, darwin-x64) or pass --all");
    } else {
        args.target
            .iter()
            .map(|t| targets::by_name(t))
            .collect::<anyhow::Result<_>>()?
    };
    let out_dir = args
        .out_dir
        .clone()
        .unwrap_or_else(|| crate::flags::project_root().join("dist"));
    for target in targets {
        let rebuild = args
            .check_reproducible
            .then(|| crate::reproducible::Rebuild::start(&target, &args.formats))
            .transpose()?;
        let written = dist_formats(sh, &target, &args.formats, &out_dir)?;
        if let Some(rebuild) = rebuild {
            rebuild.compare(&written)?;
        }
        for path in written {
            println!("{}", path.display());
        }
    }
    Ok(())
}

/// The archive of `target`, then the packages of `formats` made from it; returns every
/// path written, the archive first.
pub fn dist_formats(
    sh: &Shell,
    target: &Target,
    formats: &[crate::flags::Format],
    out_dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let archive = dist_one(sh, target, out_dir)?;
    let packages = step(&format!("packages {}", target.name), || {
        crate::packages::build(&archive, formats, out_dir)
    })?;
    Ok(std::iter::once(archive).chain(packages).collect())
}

/// The cargo-auditable release `.ci/setup` installs (and the release workflow on macOS).
const CARGO_AUDITABLE: &str = "0.7.7";

/// Builds, packs and verifies one target's bundle; returns the archive path.
pub fn dist_one(sh: &Shell, target: &Target, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let root = crate::flags::project_root();
    let (version, target_dir) = workspace_facts(sh)?;
    let (git_sha, mtime) = build_stamp(sh);
    let key = release_key::baked()?;
    if key != release_key::official()? {
        eprintln!(
            "==> a test build: tether trusts the key {} from ${}, not keys/release.pub",
            key.id,
            release_key::TEST_KEY_ENV
        );
    }

    let bin_dir = step(&format!("build {}", target.name), || {
        release_build(sh, target, &["--package", "tether", "--bins"])
    })?;
    let bin_dir = target_dir.join(bin_dir);
    let stem = bundle_stem(&version, target.name);
    let files = step(&format!("stage {}", target.name), || stage(&bin_dir, &root))?;
    let bytes = step(&format!("pack {}", target.name), || {
        let manifest = describe(&version, target, &git_sha, &key.id, &files);
        let mut all = files.clone();
        all.push(BundleFile {
            path: layout::MANIFEST.into(),
            bytes: serde_json::to_vec_pretty(&manifest)?,
            executable: false,
        });
        archive::pack(&stem, &all, mtime)
    })?;
    let sbom = step(&format!("sbom {}", target.name), || {
        sbom_of(sh, &bin_dir.join(layout::CLI.name))
    })?;
    let name = format!("{stem}.tar.gz");
    let report = step(&format!("verify {}", target.name), || {
        write_verified(out_dir, &name, &bytes, &sbom)
    })?;
    eprintln!(
        "\n{name}: {} (budget {})",
        verify::mib(report.size),
        verify::mib(targets::size_budget(target))
    );
    verify::print_table(&report);
    Ok(out_dir.join(name))
}

/// The CycloneDX SBOM of a binary, by `auditable2cdx` from its `.dep-v0` section.
fn sbom_of(sh: &Shell, binary: &Path) -> anyhow::Result<String> {
    cmd!(sh, "auditable2cdx {binary}").quiet().read().context(
        "auditable2cdx could not read the dependency list of tether (`bash .ci/setup` installs it)",
    )
}

/// Writes the archive, its `.sha256` and its SBOM into `out_dir`. The archive is written
/// under a scratch name and verified as read back; only a bundle that passes takes the
/// real names (by rename, so a reader never sees half an archive).
pub(crate) fn write_verified(
    out_dir: &Path,
    name: &str,
    bytes: &[u8],
    sbom: &str,
) -> anyhow::Result<verify::Report> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let sidecar = archive::sidecar_line(bytes, name);
    let scratch = out_dir.join(format!(".{name}.partial"));
    std::fs::write(&scratch, bytes)
        .with_context(|| format!("cannot write {}", scratch.display()))?;
    let written =
        std::fs::read(&scratch).with_context(|| format!("cannot read back {}", scratch.display()));
    let mut report = verify::verify_bytes(name, &written?, Some(&sidecar));
    let sbom_problems = sbom_problems(name, Some(sbom), report.cli_crates.as_ref());
    report.problems.extend(sbom_problems);
    if !report.problems.is_empty() {
        std::fs::remove_file(&scratch).ok();
        for line in &report.problems {
            eprintln!("{line}");
        }
        bail!("{name} failed verification and was not written: a bundle that is not right never reaches a user");
    }
    for (file, text) in [
        (format!("{name}.sha256"), sidecar.as_str()),
        (sbom_name(name), sbom),
    ] {
        let path = out_dir.join(&file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    std::fs::rename(&scratch, out_dir.join(name))
        .with_context(|| format!("cannot rename {} to {name}", scratch.display()))?;
    Ok(report)
}

/// The `tether` package's version and cargo's target directory.
pub fn workspace_facts(sh: &Shell) -> anyhow::Result<(String, PathBuf)> {
    let metadata = cmd!(sh, "cargo metadata --format-version 1 --no-deps --locked").read()?;
    let value: serde_json::Value = serde_json::from_str(&metadata)?;
    let version = value["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "tether"))
        .and_then(|p| p["version"].as_str())
        .map(str::to_string)
        .context("cargo metadata has no `tether` package")?;
    let target_dir = value["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")?;
    Ok((version, target_dir))
}

/// `SOURCE_DATE_EPOCH` if set, else the commit time, else 1 (some tools read 0 as "missing").
fn source_date_epoch(sh: &Shell) -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            cmd!(sh, "git log -1 --format=%ct")
                .read()
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// Checks the toolchain for `target` and explains in one line what to install if it is absent.
fn toolchain_env(sh: &Shell, target: &Target) -> anyhow::Result<Vec<(String, String)>> {
    let installed = cmd!(sh, "rustup target list --installed")
        .read()
        .unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == target.triple) {
        bail!(
            "the Rust target {} is not installed: run `rustup target add {}` (or `bash .ci/setup`)",
            target.triple,
            target.triple
        );
    }
    if !on_path("cargo-auditable") {
        bail!("release builds embed their dependency list with cargo-auditable: run `cargo install --locked cargo-auditable@{CARGO_AUDITABLE}` (or `bash .ci/setup`)");
    }
    match (target.os, target.arch, std::env::consts::OS) {
        (Os::Linux, crate::targets::Arch::X86_64, "linux") if std::env::consts::ARCH == "x86_64" => {
            if !on_path("musl-gcc") {
                bail!("{} needs musl-gcc: run `apt-get install musl-tools` (or `bash .ci/setup`)", target.name);
            }
            Ok(vec![])
        }
        (Os::Linux, crate::targets::Arch::Aarch64, "linux") => {
            if !on_path("aarch64-linux-gnu-gcc") {
                bail!("{} needs aarch64-linux-gnu-gcc: run `apt-get install gcc-aarch64-linux-gnu` (or `bash .ci/setup`)", target.name);
            }
            Ok(vec![
                ("CC_aarch64_unknown_linux_musl".into(), "aarch64-linux-gnu-gcc".into()),
                ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER".into(), "aarch64-linux-gnu-gcc".into()),
            ])
        }
        (Os::Darwin, _, "macos") => Ok(vec![]),
        (Os::Darwin, _, _) => bail!(
            "{} is built on a macOS runner (the release workflow does that): linking Mach-O here needs the macOS SDK, which no registry this machine reaches provides",
            target.name
        ),
        _ => bail!("{} cannot be built on this host ({} {})", target.name, std::env::consts::OS, std::env::consts::ARCH),
    }
}

/// True when an executable named `tool` is on `PATH`.
fn on_path(tool: &str) -> bool {
    which(tool).is_some()
}

/// The commit the build names and its time (`SOURCE_DATE_EPOCH`).
fn build_stamp(sh: &Shell) -> (String, u64) {
    let git_sha = cmd!(sh, "git rev-parse --short=12 HEAD")
        .read()
        .unwrap_or_else(|_| "unknown".into());
    (git_sha, source_date_epoch(sh))
}

/// `cargo build --release` of `packages` (cargo's package/bin flags) for `target`;
/// returns the output directory relative to cargo's target directory.
///
/// The bundle and the static harness (`cargo xtask images`, smoke) are built with the
/// same flags and environment, so the second build reuses every dependency of the first.
pub fn release_build(sh: &Shell, target: &Target, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let root = crate::flags::project_root();
    let (git_sha, mtime) = build_stamp(sh);
    let env = toolchain_env(sh, target)?;
    let _envs: Vec<_> = env.iter().map(|(k, v)| sh.push_env(k, v)).collect();
    let _sha = sh.push_env("TETHER_GIT_SHA", &git_sha);
    let _epoch = sh.push_env("SOURCE_DATE_EPOCH", mtime.to_string());
    // Paths of this checkout and of the cargo home must not end up in the binaries.
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let rustflags = [
        format!("--remap-path-prefix={}=/tether", root.display()),
        format!("--remap-path-prefix={}=/cargo", cargo_home.display()),
    ]
    .join("\u{1f}");
    let _flags = sh.push_env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    let triple = target.triple;
    cmd!(
        sh,
        "cargo auditable build --release --locked --target {triple} {packages...}"
    )
    .run()?;
    Ok(PathBuf::from(triple).join("release"))
}

/// Reads the built binaries and the bundle's text files.
fn stage(bin_dir: &Path, root: &Path) -> anyhow::Result<Vec<BundleFile>> {
    let mut files = Vec::new();
    for binary in layout::BINARIES {
        let path = bin_dir.join(binary.name);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{} was not built at {}", binary.name, path.display()))?;
        files.push(BundleFile {
            path: binary.path.into(),
            bytes,
            executable: true,
        });
    }
    let [readme, license] = layout::OPTIONAL;
    files.push(BundleFile {
        path: readme.into(),
        bytes: BUNDLE_README.as_bytes().to_vec(),
        executable: false,
    });
    files.push(BundleFile {
        path: license.into(),
        bytes: std::fs::read(root.join(license))
            .context("LICENSE is missing at the project root")?,
        executable: false,
    });
    Ok(files)
}
