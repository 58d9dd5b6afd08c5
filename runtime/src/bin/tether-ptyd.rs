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
    tether::cli::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether-ptyd: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(tether::ptyd::server::serve(&args.socket)) {
        eprintln!("tether-ptyd: {e:#}");
        std::process::exit(1);
    }
}
