//! `cargo xtask timings`: measures the README's main job in a fresh clone of HEAD, cold
//! (empty target directory; with `--drop-images`, no tether images either) and warm
//! (again after a one-line change in `runtime/`), and with `--ci` the test command
//! (`cargo xtask ci`) per step, cold in another fresh clone; writes the tables to
//! `docs/BUILD_TIMES.md`. Registry downloads and Debian packages are not in it: they are
//! whatever this machine already has.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::flags::TimingsArgs;

/// Where the hand-written part of docs/BUILD_TIMES.md begins; the tables above it are
/// regenerated.
const HAND_WRITTEN: &str = "<!-- written by hand below: kept by cargo xtask timings -->";

/// The main job's steps, as the README runs them.
const STEPS: [(&str, &[&str]); 2] = [
    (
        "cargo xtask dist --target linux-x64",
        &["dist", "--target", "linux-x64"],
    ),
    ("cargo xtask smoke", &["smoke"]),
];

/// Runs the measurement and writes the table.
pub fn run(sh: &Shell, args: &TimingsArgs) -> anyhow::Result<()> {
    let root = crate::flags::project_root();
    let scratch = tempfile::Builder::new()
        .prefix("tether-timings-")
        .tempdir()?;
    let clone = scratch.path().join("tether");
    cmd!(sh, "git clone --quiet {root} {clone}").run()?;
    if args.drop_images {
        for image in crate::images::Image::ALL {
            let tag = image.tag();
            let _ = cmd!(sh, "docker rmi --force {tag}")
                .quiet()
                .ignore_stderr()
                .run();
        }
    }
    let _dir = sh.push_dir(&clone);
    let cold = measure(sh)?;
    let touched = clone.join("runtime/src/version.rs");
    let mut text = std::fs::read_to_string(&touched)?;
    text.push_str("// one-line change for the warm measurement\n");
    std::fs::write(&touched, text)?;
    let warm = measure(sh)?;

    let commit = cmd!(sh, "git rev-parse --short=12 HEAD").read()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut doc = String::from("# Main job build times\n\n");
    let _ = writeln!(
        doc,
        "Measured by `cargo xtask timings{}` on commit {commit}, {cores} cores, in a fresh clone (empty target directory{}). Crate and Debian downloads are not counted (the registry cache and packages were already on the machine); on a brand-new machine add `bash .ci/setup` (about 2 minutes: Debian packages, pip, and the three cargo tools in 50 s) and the crate downloads (about 20 s).\n",
        if args.drop_images { " --drop-images" } else { "" },
        if args.drop_images { ", no tether images" } else { "; the OS images were already built" },
    );
    doc.push_str("| step | cold | warm (one-line change in runtime/) |\n|---|---:|---:|\n");
    for ((name, cold), (_, warm)) in cold.iter().zip(&warm) {
        let _ = writeln!(doc, "| `{name}` | {cold:.0} s | {warm:.0} s |");
    }
    let total = |v: &[(&str, f64)]| v.iter().map(|(_, s)| s).sum::<f64>();
    let _ = writeln!(
        doc,
        "| **main job** | **{:.0} s** | **{:.0} s** |",
        total(&cold),
        total(&warm)
    );
    if args.ci {
        let (steps, wall) = measure_ci(sh, &scratch.path().join("ci"))?;
        doc.push_str("\n## The test command, cold\n\n`CI=true cargo xtask ci` in another fresh clone (empty target directory, the images above already built). Steps overlap: the OS images build beside the lint and the reproducibility check's second build runs at the lowest priority from the start, so the steps add up to more than the wall time.\n\n| step | time |\n|---|---:|\n");
        for (name, secs) in &steps {
            let _ = writeln!(doc, "| {name} | {secs:.0} s |");
        }
        let _ = writeln!(doc, "| **wall** | **{wall:.0} s** |");
    }
    doc.push_str("\nRegenerate with `cargo xtask timings` (add `--drop-images` for a cold image build too, `--ci` for the test command).\n");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("docs/BUILD_TIMES.md"));
    // The hand-written part (levers weighed, decisions) is kept from the marker on.
    let kept = std::fs::read_to_string(root.join("docs/BUILD_TIMES.md"))
        .ok()
        .and_then(|old| old.find(HAND_WRITTEN).map(|at| old[at..].to_string()));
    if let Some(kept) = kept {
        doc.push('\n');
        doc.push_str(&kept);
    }
    std::fs::write(&out, &doc).with_context(|| format!("cannot write {}", out.display()))?;
    print!("{doc}");
    Ok(())
}

fn measure(sh: &Shell) -> anyhow::Result<Vec<(&'static str, f64)>> {
    let mut out = Vec::new();
    for (name, args) in STEPS {
        let started = Instant::now();
        cmd!(sh, "cargo xtask {args...}")
            .run()
            .with_context(|| format!("{name} failed in the clone"))?;
        out.push((name, started.elapsed().as_secs_f64()));
    }
    Ok(out)
}

/// Runs `cargo xtask ci` in a fresh clone at `clone`, echoing its output; returns each
/// step's time (from its `==> <step> ok (<secs>s)` line) and the wall time.
fn measure_ci(sh: &Shell, clone: &Path) -> anyhow::Result<(Vec<(String, f64)>, f64)> {
    let root = crate::flags::project_root();
    cmd!(sh, "git clone --quiet {root} {clone}").run()?;
    let started = Instant::now();
    let mut child = Command::new("cargo")
        .args(["xtask", "ci"])
        .env("CI", "true")
        .current_dir(clone)
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start cargo xtask ci")?;
    let mut steps = Vec::new();
    let stderr = child.stderr.take().context("no stderr")?;
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        eprintln!("{line}");
        if let Some(step) = step_time(&line) {
            steps.push(step);
        }
    }
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "cargo xtask ci failed in the clone ({status})"
    );
    Ok((steps, started.elapsed().as_secs_f64()))
}

/// `("clippy", 95.5)` from `==> clippy ok (95.5s)`; the dist sub-steps are left out.
fn step_time(line: &str) -> Option<(String, f64)> {
    let rest = line.strip_prefix("==> ")?;
    let (name, secs) = rest.rsplit_once(" ok (")?;
    let secs = secs.strip_suffix("s)")?.parse().ok()?;
    (!name.ends_with("linux-x64")).then(|| (name.to_string(), secs))
}

#[cfg(test)]
mod tests {
    use super::step_time;

    #[test]
    fn step_lines_are_read_and_others_ignored() {
        assert_eq!(
            step_time("==> clippy ok (95.5s)"),
            Some(("clippy".to_string(), 95.5))
        );
        assert_eq!(
            step_time("==> e2e --repeat 3 --parallel 8 ok (120.0s)"),
            Some(("e2e --repeat 3 --parallel 8".to_string(), 120.0))
        );
        assert_eq!(step_time("==> build linux-x64 ok (60.0s)"), None);
        assert_eq!(step_time("==> clippy"), None);
        assert_eq!(step_time("   Compiling ok (1s)"), None);
    }
}
