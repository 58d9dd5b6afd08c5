//! `cargo xtask soak --minutes N [--seed S] [--report DIR]`: the real binaries and the
//! reference servers for N minutes with chaos on a seeded schedule (the work is
//! `tether-harness soak`); the binaries are the test build's, as for `e2e`.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::flags::SoakArgs;

/// Runs the soak; fails when an invariant broke.
pub fn run(sh: &Shell, args: &SoakArgs) -> anyhow::Result<()> {
    let bin_dir = crate::e2e::test_build(sh)?;
    let harness = bin_dir.join("tether-harness");
    let _bins = sh.push_env("TETHER_BIN_DIR", &bin_dir);
    let report = std::env::current_dir()?.join(&args.report);
    let (minutes, seed) = (args.minutes.to_string(), args.seed.to_string());
    cmd!(
        sh,
        "{harness} soak --minutes {minutes} --seed {seed} --report {report}"
    )
    .run()
    .context("the soak failed")?;
    Ok(())
}
