//! `cargo xtask e2e`: builds the runtime, then runs the conformance scenarios with a
//! verdict table and optional JUnit XML (the work is `tether-harness e2e`).
//!
//! The binaries are those of `cargo test --workspace`'s build: any other cargo command
//! resolves the dependencies' features differently (dev-dependencies, other members) and
//! compiled 66 crates again, a minute of CI, and again after every change.

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::flags::{BenchArgs, E2eArgs};

/// Runs the suite against the reference servers, or the black-box part against a deployment.
pub fn run(sh: &Shell, args: &E2eArgs) -> anyhow::Result<()> {
    let bin_dir = test_build(sh)?;
    let harness = bin_dir.join("tether-harness");
    let _bins = sh.push_env("TETHER_BIN_DIR", &bin_dir);
    let mut harness_args: Vec<String> = vec![
        "e2e".into(),
        "--parallel".into(),
        args.parallel.to_string(),
        "--repeat".into(),
        args.repeat.to_string(),
        "--target-profile".into(),
        crate::flags::flag_word(args.target_profile),
    ];
    if let Some(filter) = &args.filter {
        harness_args.extend(["--filter".into(), filter.clone()]);
    }
    if let Some(junit) = &args.junit {
        let absolute = std::env::current_dir()?.join(junit);
        harness_args.extend(["--junit".into(), absolute.display().to_string()]);
    }
    if let Some(report) = &args.report {
        let absolute = std::env::current_dir()?.join(report);
        harness_args.extend(["--report".into(), absolute.display().to_string()]);
    }
    let _env = match (&args.api_url, &args.relay_url) {
        (Some(api), Some(relay)) => {
            if std::env::var_os("TETHER_E2E_API_KEY").is_none() {
                bail!(
                    "a deployment needs a credential: set TETHER_E2E_API_KEY to an API key of it"
                );
            }
            harness_args.push("--black-box".into());
            Some((
                sh.push_env("TETHER_E2E_API_URL", api),
                sh.push_env("TETHER_E2E_RELAY_URL", relay),
            ))
        }
        (None, None) => None,
        _ => bail!("--api-url and --relay-url go together"),
    };
    cmd!(sh, "{harness} {harness_args...}")
        .run()
        .context("conformance scenarios failed")?;
    Ok(())
}

/// Builds what `cargo test --workspace` builds (a no-op after it); returns the directory
/// of the runtime's and the harness's binaries.
pub fn test_build(sh: &Shell) -> anyhow::Result<std::path::PathBuf> {
    cmd!(sh, "cargo test --workspace --locked --no-run")
        .quiet()
        .run()
        .context("building the workspace's tests and binaries")?;
    Ok(crate::dist::workspace_facts(sh)?.1.join("debug"))
}

/// `cargo xtask bench`: release binaries, then `tether-harness bench`.
pub fn bench(sh: &Shell, args: &BenchArgs) -> anyhow::Result<()> {
    cmd!(sh, "cargo build --release --locked --package tether --bins")
        .run()
        .context("building release binaries")?;
    let bins = crate::flags::project_root().join("target/release");
    let _bins = sh.push_env("TETHER_BIN_DIR", bins);
    let (mib, samples) = (args.mib.to_string(), args.samples.to_string());
    let terminals = args.terminals.to_string();
    let results = crate::flags::project_root().join("target/bench/results.json");
    cmd!(sh, "cargo run --release --locked --quiet --package tether-harness --bin tether-harness -- bench --mib {mib} --samples {samples} --terminals {terminals} --results {results}")
        .run()
        .context("benchmarks failed")?;
    Ok(())
}
