//! `tether-host`: the host service. The relay client, supervisor and control API land
//! with issue 3; until then the binary only reports its version so bundles can be checked.

use clap::Parser;

/// tether host service.
#[derive(Debug, Parser)]
#[command(name = "tether-host", version = tether::version::LONG_VERSION, about)]
struct Args {}

fn main() {
    Args::parse();
    eprintln!("tether-host: the host service is not built yet (see issue 3)");
    std::process::exit(1);
}
