//! `tether-ptyd`: the pty daemon. Serves terminals on a Unix socket until killed.

use std::path::PathBuf;

use clap::Parser;

/// tether pty daemon: terminals that outlive the host service.
#[derive(Debug, Parser)]
#[command(name = "tether-ptyd", version = tether::version::LONG_VERSION, about)]
struct Args {
    /// Unix socket to listen on (created 0600; a stale file is removed first).
    #[arg(long, required_unless_present = "state_formats")]
    socket: Option<PathBuf>,
    /// After an upgrade in place: the fd of the state the previous image handed over.
    #[arg(long, requires = "socket")]
    resume_state: Option<i32>,
    /// Print the state formats this daemon reads and exit (the dry run of an upgrade).
    #[arg(long)]
    state_formats: bool,
}

fn main() {
    let args = Args::parse();
    if args.state_formats {
        println!("{}", tether::ptyd::formats_line());
        return;
    }
    let Some(socket) = args.socket else {
        eprintln!("tether-ptyd: --socket PATH is required");
        std::process::exit(2);
    };
    tether::ptyd::raise_file_limit();
    tether::daemon::run(
        "tether-ptyd",
        tether::ptyd::serve(&socket, args.resume_state),
    );
}
