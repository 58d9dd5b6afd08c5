//! `cargo xtask ci`: the test command CI and developers run.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::background::BackgroundDist;
use crate::flags::{CiArgs, E2eArgs, Format, SmokeArgs};
use crate::images::{self, Image};
use crate::reproducible::Rebuild;
use crate::step::step;

/// Runs the checks in order, stopping at the first failure.
pub fn run(sh: &Shell, args: &CiArgs) -> anyhow::Result<()> {
    let in_ci = std::env::var_os("CI").is_some();
    let target = crate::targets::by_name("linux-x64")?;
    // The reproducibility check's second build starts now, at the lowest priority: it uses
    // the cores that the image builds, the scenarios and the smoke leave idle.
    let rebuild = if args.tests_only {
        None
    } else {
        Some(Rebuild::start(&target, &Format::ALL)?)
    };
    let docker = lint_and_images(sh, args)?;
    if let Err(e) = &docker {
        if in_ci {
            return Err(anyhow::anyhow!("{e:#}"))
                .context("CI runs the container scenarios and the smoke test: Docker is required");
        }
        eprintln!("==> container scenarios and smoke will be skipped: {e:#}");
    }
    let run_smoke = docker.is_ok() && !args.tests_only;
    // The smoke's bundle builds in the background from here, at the lowest priority (the
    // harness's release build has just made most of its dependencies).
    let mut bundle = run_smoke
        .then(|| {
            let root = crate::flags::project_root();
            BackgroundDist::start(
                &target,
                &Format::ALL,
                &root.join("dist"),
                None,
                &root.join("target/dist-background.log"),
            )
        })
        .transpose()?;
    let _require = (in_ci || docker.is_ok()).then(|| sh.push_env("TETHER_REQUIRE_DOCKER", "1"));
    step("test", || {
        cmd!(sh, "cargo test --workspace --locked")
            .run()
            .context("tests failed")
    })?;
    long_runs_briefly(sh)?;
    if let Some(bundle) = &mut bundle {
        step("bundle (built in the background)", || bundle.wait())?;
        let smoke = SmokeArgs {
            target: target.name.into(),
            archive: None,
            on: crate::flags::SmokeOn::All,
        };
        step("smoke", || crate::smoke::run(sh, &smoke))?;
    }
    if let Some(rebuild) = rebuild {
        step("reproducible", || {
            // Built by the smoke already; this packs and verifies it again.
            let written = crate::dist::dist_formats(
                sh,
                &target,
                &Format::ALL,
                &crate::flags::project_root().join("dist"),
            )?;
            rebuild.compare(&written)
        })?;
    }
    Ok(())
}

/// The runs that go on for hours when asked to (repeats, soak, fuzzing), briefly.
fn long_runs_briefly(sh: &Shell) -> anyhow::Result<()> {
    // The suite again, three times at a parallelism above the core count: a scenario that
    // fails in any run is a flake to fix, not to retry.
    step("e2e --repeat 3 --parallel 8", || {
        crate::e2e::run(
            sh,
            &E2eArgs {
                filter: None,
                junit: None,
                // The whole suite's report, searched for every secret the runs used.
                report: Some(crate::flags::project_root().join("target/e2e-report")),
                api_url: None,
                relay_url: None,
                parallel: 8,
                repeat: 3,
                target_profile: crate::flags::TargetProfile::All,
            },
        )
    })?;
    // Briefly: `cargo xtask soak --minutes 60` is the long run (docs/SOAK.md).
    step("soak --minutes 2", || {
        crate::soak::run(
            sh,
            &crate::flags::SoakArgs {
                minutes: 2.0,
                seed: 1,
                report: "target/soak".into(),
            },
        )
    })?;
    // Briefly: `cargo xtask fuzz --time 3600` is the long run.
    step("fuzz --time 10", || {
        crate::fuzz::run(sh, &crate::flags::FuzzArgs { time: 10 })
    })
}

/// The lint (unless `--tests-only`) with the OS images building beside it — debootstrap
/// waits on the network and the disk, clippy on the CPU — then the harness image (it
/// needs the release build). Returns whether the images are there.
fn lint_and_images(sh: &Shell, args: &CiArgs) -> anyhow::Result<anyhow::Result<()>> {
    let os_images = std::thread::spawn(|| images::ensure(&Shell::new()?, &Image::OS));
    let lint = if args.tests_only { Ok(()) } else { lint(sh) };
    let os_images = os_images
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the image builds panicked")));
    lint?;
    Ok(step("images", || {
        os_images?;
        images::ensure(sh, &[Image::Harness])
    }))
}

/// Formatting, the house rules, the workflow audit and clippy.
fn lint(sh: &Shell) -> anyhow::Result<()> {
    step("fmt", || {
        cmd!(sh, "cargo fmt --all -- --check")
            .run()
            .context("cargo fmt found unformatted code: run `cargo fmt --all`")
    })?;
    step("tidy", crate::tidy::run)?;
    step("zizmor", || {
        cmd!(sh, "zizmor --offline --min-severity low .github/workflows/")
            .run()
            .context("zizmor found problems in .github/workflows/ (`bash .ci/setup` installs it)")
    })?;
    step("clippy", || {
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()
        .context("clippy found warnings")
    })?;
    Ok(())
}
