//! What a thousand terminals cost: threads that do not grow with them, and the file
//! limit raised for the daemon but not handed to its terminals.

use std::process::Command;
use std::time::{Duration, Instant};

use tether_contract::environment::LOG_ENV;

use tether::ptyd::PtydClient;
use tether_contract::ptyd_protocol::Request;

use super::{shell, start_daemon, type_line, wait_output, Daemon};

fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("task dir")
        .count()
}

/// Contract section 6, "Scale": one event loop serves every terminal.
#[tokio::test]
async fn the_thread_count_does_not_grow_with_the_terminals() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let echo_in = |id: &str, mark: &str| {
        client
            .send(
                &Request::Input { id: id.into() },
                format!("echo {mark}-$((6*7))\n").as_bytes(),
            )
            .expect("input");
    };
    shell(&client, &mut rx, "t0").await;
    echo_in("t0", "first");
    wait_output(&mut rx, "t0", "first-42").await;
    let with_one = threads_of(daemon.child.id());
    for n in 1..200 {
        shell(&client, &mut rx, &format!("t{n}")).await;
    }
    echo_in("t199", "last");
    wait_output(&mut rx, "t199", "last-42").await;
    let with_200 = threads_of(daemon.child.id());
    assert_eq!(
        with_200, with_one,
        "tether-ptyd has {with_200} threads with 200 terminals, {with_one} with one"
    );
}

/// The daemon lifts its own soft limit on open files (one per terminal); its terminals get
/// the limit it started with.
#[tokio::test]
async fn the_file_limit_is_lifted_for_the_daemon_not_for_its_terminals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("ptyd.sock");
    let child = Command::new("sh")
        .args([
            "-c",
            "ulimit -Sn 256 && ulimit -Hn 4096 && exec \"$0\" --socket \"$1\"",
            env!("CARGO_BIN_EXE_tether-ptyd"),
        ])
        .arg(&socket)
        .env(LOG_ENV, "warn")
        .spawn()
        .expect("spawn tether-ptyd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    let daemon = Daemon {
        child,
        socket,
        _dir: dir,
    };
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", daemon.child.id())).expect("limits");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    assert!(
        open_files.split_whitespace().nth(3) == Some("4096"),
        "{open_files}"
    );
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    shell(&client, &mut rx, "l1").await;
    type_line(&client, "l1", "echo limit-$(ulimit -Sn)\n");
    wait_output(&mut rx, "l1", "limit-256").await;
}
