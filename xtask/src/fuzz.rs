//! `cargo xtask fuzz --time S`: runs every fuzz target of `runtime/tests/fuzz/` for S
//! seconds each (two at a time, one per core here) and sums what they report.

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::flags::FuzzArgs;

/// Runs the targets and prints the total inputs and CPU time fuzzed.
pub fn run(sh: &Shell, args: &FuzzArgs) -> anyhow::Result<()> {
    let secs = args.time.to_string();
    let _budget = sh.push_env("TETHER_FUZZ_SECS", &secs);
    let output = cmd!(
        sh,
        "cargo test --workspace --locked --test fuzz -- --nocapture --test-threads 2"
    )
    .ignore_status()
    .output()
    .context("cannot run the fuzz targets")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    let (mut inputs, mut cpu, mut targets) = (0u64, 0f64, 0usize);
    for line in stdout
        .lines()
        .filter_map(|l| l.trim_start_matches('.').strip_prefix("fuzz "))
    {
        println!("  {line}");
        targets += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        inputs += words
            .get(1)
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0);
        cpu += words
            .windows(3)
            .find(|w| w[2] == "CPU,")
            .and_then(|w| w[0].parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    println!("fuzzed {targets} targets: {inputs} inputs, {cpu:.1} s CPU");
    if !output.status.success() {
        print!("{stdout}");
        anyhow::bail!("a fuzz target failed: the shrunk input is above");
    }
    Ok(())
}
