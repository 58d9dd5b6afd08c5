//! `cargo xtask smoke`: installs a bundle the way a user would — unpacked under a path
//! with spaces, far from the source tree — on this machine and on clean OS containers,
//! and runs it end to end against the reference servers.

mod container;
mod deb;
mod host;
mod installer;
mod packages;
mod release_files;
mod self_update;
mod served;
mod steps;
mod test_build;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use xshell::{cmd, Shell};

use crate::bundle::archive::{self, EntryKind};
use crate::bundle::verify;
use crate::dist;
use crate::flags::{SmokeArgs, SmokeOn};
use crate::images::{self, Image};
use crate::targets::{self, Target};

/// Where the bundle is installed inside containers.
const INSTALL_DIR: &str = "/opt/tether smoke";
/// Where the container smoke puts the harness CA (a path every image has: `/`).
const CA_IN_CONTAINER: &str = "/harness-ca.pem";
/// The organization the harness's API key is bound to.
const ORG: &str = "org_a";

/// A place to smoke-test on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// This machine.
    Host,
    /// A clean container of this image.
    Container(Image),
    /// The `.deb` installed with apt on a clean container of this image.
    Deb(Image),
    /// The `.rpm` listed and installed into an empty root on this machine.
    Rpm,
    /// The OCI image run by Docker.
    Oci,
}

impl Place {
    fn name(self) -> String {
        match self {
            Place::Host => "host".into(),
            Place::Container(image) => image.tag(),
            Place::Deb(image) => format!("deb {}", image.short_name()),
            Place::Rpm => "rpm".into(),
            Place::Oci => "oci image".into(),
        }
    }
}

/// The Debian releases the `.deb` is installed on.
const DEB_ON: [Image; 2] = [Image::Debian("bookworm"), Image::Debian("bullseye")];

/// The places named by `--on`: `host`, an image's short name, `deb`, `rpm`, `oci`,
/// The places `on` names.
pub fn places(on: SmokeOn) -> Vec<Place> {
    let deb = DEB_ON.into_iter().map(Place::Deb);
    let packages = deb.clone().chain([Place::Rpm, Place::Oci]);
    match on {
        SmokeOn::Host => vec![Place::Host],
        SmokeOn::Bookworm => vec![Place::Container(Image::Debian("bookworm"))],
        SmokeOn::Bullseye => vec![Place::Container(Image::Debian("bullseye"))],
        SmokeOn::Scratch => vec![Place::Container(Image::Scratch)],
        SmokeOn::Deb => deb.collect(),
        SmokeOn::Rpm => vec![Place::Rpm],
        SmokeOn::Oci => vec![Place::Oci],
        SmokeOn::Packages => packages.collect(),
        SmokeOn::All => std::iter::once(Place::Host)
            .chain(Image::SMOKE.into_iter().map(Place::Container))
            .chain(packages)
            .collect(),
    }
}

/// One step's verdict.
struct StepResult {
    place: String,
    step: &'static str,
    elapsed: Duration,
    failure: Option<String>,
}

/// Runs the smoke test.
pub fn run(sh: &Shell, args: &SmokeArgs) -> anyhow::Result<()> {
    let target = targets::by_name(&args.target)?;
    let places = places(args.on);
    let archive = ready_archive(sh, args, &target, &places)?;
    let staging = tempfile::Builder::new().prefix("tether smoke ").tempdir()?;
    let bundle = unpack(&archive, &staging.path().join("opt dir with spaces"))?;
    eprintln!(
        "==> unpacked {} into {}",
        archive.display(),
        bundle.display()
    );

    let releases_dir = staging.path().join("releases");
    let test_key = installer::TestKey::new()?;
    installer::release_dirs(&archive, &releases_dir, &test_key)?;
    if host::native(&target) {
        self_update::prepare(&archive, &releases_dir, &test_key)?;
    }
    let releases = (releases_dir.as_path(), &test_key);
    let mut results = Vec::new();
    // Recorded in the table like a place's steps; a failure does not stop the places.
    let _ = release_files::check(&mut results, &archive, &bundle);
    let wants_packages = places
        .iter()
        .any(|p| matches!(p, Place::Deb(_) | Place::Rpm | Place::Oci));
    let built = if wants_packages {
        packages::packages_of(&archive, &staging.path().join("packages")).map(Some)
    } else {
        Ok(None)
    };
    if let Ok(Some(packages)) = &built {
        packages::lint(packages, &mut results);
    }
    for place in places {
        let packages = match (&built, place) {
            (Ok(Some(packages)), _) => Some(packages),
            (Err(e), Place::Deb(_) | Place::Rpm | Place::Oci) => {
                results.push(StepResult {
                    place: place.name(),
                    step: "packages",
                    elapsed: Duration::ZERO,
                    failure: Some(format!("{e:#}")),
                });
                continue;
            }
            _ => None,
        };
        let outcome = smoke_place(
            sh,
            &target,
            place,
            packages,
            (releases, &bundle, staging.path()),
            &mut results,
        );
        // A failed step is in the table already; anything else failed around the steps.
        let step_failed = results
            .last()
            .is_some_and(|r| r.place == place.name() && r.failure.is_some());
        match outcome {
            Err(e) if !step_failed => results.push(StepResult {
                place: place.name(),
                step: "setup",
                elapsed: Duration::ZERO,
                failure: Some(format!("{e:#}")),
            }),
            _ => {}
        }
    }
    print_results(&results);
    ensure!(results.iter().all(|r| r.failure.is_none()), "smoke failed");
    Ok(())
}

/// The bundle of this commit in `dist/`, built when absent or built from another commit.
fn current_bundle(sh: &Shell, target: &Target) -> anyhow::Result<PathBuf> {
    let (version, _) = dist::workspace_facts(sh)?;
    let path = crate::flags::project_root()
        .join("dist")
        .join(format!("tether-{version}-{}.tar.gz", target.name));
    let head = cmd!(sh, "git rev-parse --short=12 HEAD")
        .read()
        .unwrap_or_default();
    if !path.exists() {
        eprintln!("==> {} is absent: building it", path.display());
        dist::dist_one(sh, target, path.parent().context("dist dir")?)?;
    } else if built_from(&path).as_deref() != Some(head.as_str()) {
        eprintln!(
            "==> {} was built from another commit: building it again",
            path.display()
        );
        dist::dist_one(sh, target, path.parent().context("dist dir")?)?;
    }
    Ok(path)
}

/// The table of verdicts, then each failure in full.
fn print_results(results: &[StepResult]) {
    println!(
        "\n{:<22} {:<30} {:<6} {:>8}",
        "place", "step", "result", "time"
    );
    for r in results {
        println!(
            "{:<22} {:<30} {:<6} {:>7.2}s",
            r.place,
            r.step,
            if r.failure.is_none() { "ok" } else { "FAIL" },
            r.elapsed.as_secs_f64()
        );
    }
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    for r in &failed {
        eprintln!(
            "\n{} failed at `{}`:\n{}",
            r.place,
            r.step,
            r.failure.as_deref().unwrap_or_default()
        );
    }
    println!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
}

/// The commit an archive's manifest names.
fn built_from(archive: &Path) -> Option<String> {
    let bytes = std::fs::read(archive).ok()?;
    let manifest = crate::bundle::manifest::in_archive(&bytes).ok()?;
    Some(manifest.git_sha)
}

/// Unpacks the archive's top directory into `into`; returns the bundle root.
fn unpack(archive: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    let bytes = std::fs::read(archive)?;
    let top = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .context("archive name")?;
    for entry in archive::read(&bytes)? {
        let rel = entry
            .path
            .strip_prefix(top)
            .unwrap_or(&entry.path)
            .trim_start_matches('/');
        let path = into.join(rel);
        match entry.kind {
            EntryKind::Dir => std::fs::create_dir_all(&path)?,
            EntryKind::File => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &entry.bytes)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))?;
            }
            EntryKind::Other => bail!("{} holds a link or device", archive.display()),
        }
    }
    Ok(into.to_path_buf())
}

/// Runs a check at a place, recording its verdict for the table; `Err` stops the place.
fn record(
    results: &mut Vec<StepResult>,
    place: &str,
    name: &'static str,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("--> {place}: {name}");
    let outcome = f();
    let failure = outcome.as_ref().err().map(|e| format!("{e:#}"));
    results.push(StepResult {
        place: place.into(),
        step: name,
        elapsed: started.elapsed(),
        failure,
    });
    outcome.map_err(|_| anyhow::anyhow!("stopped at {name}"))
}

/// The archive to test (given, or dist/'s, built if absent), verified, with the images and
/// the harness its places need.
fn ready_archive(
    sh: &Shell,
    args: &SmokeArgs,
    target: &Target,
    places: &[Place],
) -> anyhow::Result<PathBuf> {
    // The clean OS images build while the bundle and the harness do: debootstrap waits on
    // the network and the disk, cargo on the CPU.
    let os_images: Vec<Image> = places
        .iter()
        .filter_map(|place| match place {
            Place::Container(image) | Place::Deb(image) => Some(*image),
            Place::Host | Place::Rpm | Place::Oci => None,
        })
        .collect();
    // A scope: an early error still waits for the image builds (no orphan debootstrap).
    let archive = std::thread::scope(|scope| {
        let building = (!os_images.is_empty())
            .then(|| scope.spawn(|| images::ensure(&Shell::new()?, &os_images)));
        let archive = match &args.archive {
            Some(path) => path.clone(),
            None => current_bundle(sh, target)?,
        };
        images::static_harness(sh)?;
        if let Some(building) = building {
            building
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the image builds panicked")))?;
        }
        anyhow::Ok(archive)
    })?;
    let report = verify::verify_path(&archive)?;
    if !report.problems.is_empty() {
        for line in &report.problems {
            eprintln!("{line}");
        }
        bail!(
            "{} failed verification: not smoke-testing it",
            archive.display()
        );
    }
    Ok(archive)
}

/// Runs one place's steps, each recorded in `results`.
fn smoke_place(
    sh: &Shell,
    target: &Target,
    place: Place,
    packages: Option<&packages::Packages>,
    (releases, bundle, staging): ((&Path, &installer::TestKey), &Path, &Path),
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    match place {
        Place::Deb(image) => match packages {
            Some(p) if target.name == "linux-x64" => {
                deb::smoke_deb(sh, target, image, &p.deb, results)
            }
            _ => Err(anyhow::anyhow!("the .deb smoke runs x86-64 containers")),
        },
        Place::Rpm => match packages {
            Some(p) => packages::smoke_rpm(&p.rpm, results),
            None => Err(anyhow::anyhow!("no .rpm")),
        },
        Place::Oci => match packages {
            Some(p) if target.name == "linux-x64" => packages::smoke_oci(sh, &p.oci, results),
            _ => Err(anyhow::anyhow!("the image smoke runs x86-64 images")),
        },
        Place::Host => host::smoke_host(sh, target, releases, bundle, staging, results),
        Place::Container(image) => {
            container::smoke_container(sh, target, image, (releases, bundle), results)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_names_the_host_each_smoke_image_or_all() {
        assert_eq!(places(SmokeOn::Host), vec![Place::Host]);
        assert_eq!(
            places(SmokeOn::Bullseye),
            vec![Place::Container(Image::Debian("bullseye"))]
        );
        let all = places(SmokeOn::All);
        // The host, each clean image, the .deb on two Debian releases, the .rpm, the image.
        assert_eq!(all.len(), 1 + Image::SMOKE.len() + 4);
        assert_eq!(all[0], Place::Host);
        assert_eq!(
            places(SmokeOn::Packages),
            vec![
                Place::Deb(Image::Debian("bookworm")),
                Place::Deb(Image::Debian("bullseye")),
                Place::Rpm,
                Place::Oci
            ]
        );
    }

    #[test]
    fn every_smoke_image_has_its_own_on_word() {
        use clap::ValueEnum;
        for image in Image::SMOKE {
            let on = SmokeOn::from_str(image.short_name(), false).expect("an --on word");
            assert_eq!(places(on), vec![Place::Container(image)]);
        }
    }
}
