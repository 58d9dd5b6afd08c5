//! `cargo xtask timings`: measures the README's main job in a fresh clone of HEAD, cold
//! (empty target directory; with `--drop-images`, no tether images either) and warm
//! (again after a one-line change in `runtime/`), and writes the table to
//! `docs/BUILD_TIMES.md`. Registry downloads and Debian packages are not in it: they are
//! whatever this machine already has.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use xshell::{cmd, Shell};

use crate::flags::TimingsArgs;

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
        "Measured by `cargo xtask timings{}` on commit {commit}, {cores} cores, in a fresh clone (empty target directory{}). Crate and Debian downloads are not counted (the registry cache and packages were already on the machine); on a brand-new machine add `bash .ci/setup` (about a minute) and the crate downloads.\n",
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
    doc.push_str("\nRegenerate with `cargo xtask timings` (add `--drop-images` for a cold image build too).\n");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| root.join("docs/BUILD_TIMES.md"));
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
