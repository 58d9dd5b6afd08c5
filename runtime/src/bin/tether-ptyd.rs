//! `tether-ptyd`: the pty daemon. Sessions and framing land with issue 3; until then the
//! binary only reports its version so bundles can be checked.

use clap::Parser;

/// tether pty daemon.
#[derive(Debug, Parser)]
#[command(name = "tether-ptyd", version = tether::version::LONG_VERSION, about)]
struct Args {}

fn main() {
    Args::parse();
    eprintln!("tether-ptyd: the pty daemon is not built yet (see issue 3)");
    std::process::exit(1);
}
