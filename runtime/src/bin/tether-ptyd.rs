//! `tether-ptyd`: the pty daemon. Serves terminals on a Unix socket until killed.

use std::path::PathBuf;

use clap::Parser;

/// tether pty daemon: terminals that outlive the host service.
#[derive(Debug, Parser)]
#[command(name = "tether-ptyd", version = tether::version::LONG_VERSION, about)]
struct Args {
    /// Unix socket to listen on (created 0600; a stale file is removed first).
    #[arg(long)]
    socket: PathBuf,
}

fn main() {
    let args = Args::parse();
    tether::ptyd::spawn::raise_file_limit();
    tether::daemon::run("tether-ptyd", tether::ptyd::server::serve(&args.socket));
}
