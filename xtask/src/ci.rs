//! `cargo xtask ci`: what CI and developers run to test the project.

use std::time::Instant;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::flags::CiArgs;

/// Runs the checks in order, stopping at the first failure.
pub fn run(sh: &Shell, args: &CiArgs) -> anyhow::Result<()> {
    if !args.tests_only {
        step("fmt", || {
            cmd!(sh, "cargo fmt --all -- --check")
                .run()
                .context("cargo fmt found unformatted code: run `cargo fmt --all`")
        })?;
        step("clippy", || {
            cmd!(
                sh,
                "cargo clippy --workspace --all-targets --locked -- -D warnings"
            )
            .run()
            .context("clippy found warnings")
        })?;
    }
    step("test", || {
        cmd!(sh, "cargo test --workspace --locked")
            .run()
            .context("tests failed")
    })?;
    Ok(())
}

fn step(name: &str, f: impl FnOnce() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("==> {name}");
    f()?;
    eprintln!("==> {name} ok ({:.1}s)", started.elapsed().as_secs_f64());
    Ok(())
}
