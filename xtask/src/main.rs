//! `cargo xtask …`: tether's build-and-release toolchain.

mod ci;
mod flags;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let flags = flags::Xtask::parse();
    let sh = xshell::Shell::new()?;
    sh.change_dir(flags::project_root());
    match flags.command {
        flags::Command::Ci(args) => ci::run(&sh, &args),
    }
}
