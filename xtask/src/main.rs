//! `cargo xtask …`: tether's build-and-release toolchain.

mod archive;
mod binary;
mod ci;
mod dist;
mod e2e;
#[cfg(test)]
mod fixtures;
mod flags;
mod manifest;
mod targets;
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
        flags::Command::Verify(args) => verify::run(&args.archives),
        flags::Command::E2e(args) => e2e::run(&sh, &args),
    }
}
