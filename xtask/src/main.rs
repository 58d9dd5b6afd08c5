//! `cargo xtask …`: tether's build-and-release toolchain.

mod background;
mod bundle;
mod ci;
mod dist;
mod e2e;
#[cfg(test)]
mod fixtures;
mod flags;
mod fuzz;
mod images;
#[cfg(test)]
mod installer_tests;
mod packages;
mod path_search;
mod reproducible;
mod sign;
mod smoke;
mod soak;
mod step;
mod targets;
mod tidy;
mod timings;
mod verify;
#[cfg(test)]
mod workflows;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(flags::project_root());
    match flags.command {
        flags::Command::Ci(args) => ci::run(&sh, &args),
        flags::Command::Dist(args) => dist::run(&sh, &args),
        flags::Command::Verify(args) => verify::run(&args.archives, args.release),
        flags::Command::E2e(args) => e2e::run(&sh, &args),
        flags::Command::Bench(args) => e2e::bench(&sh, &args),
        flags::Command::Soak(args) => soak::run(&sh, &args),
        flags::Command::Fuzz(args) => fuzz::run(&sh, &args),
        flags::Command::Timings(args) => timings::run(&sh, &args),
        flags::Command::Images => images::ensure(&sh, &images::Image::ALL),
        flags::Command::Smoke(args) => smoke::run(&sh, &args),
        flags::Command::Sign(args) => sign::run(&args),
        flags::Command::Tidy => tidy::run(),
    }
}
