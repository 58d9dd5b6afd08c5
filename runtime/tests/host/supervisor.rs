//! The pty daemon's supervision: found beside the host service or nowhere, restarted
//! after a crash, and keeping shells alive across a host service restart.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_missing_ptyd_names_the_exact_path_and_the_incomplete_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lonely = dir.path().join("tether-host");
    std::fs::copy(bin("tether-host"), &lonely).expect("copy");
    let host = Host::new("http://127.0.0.1:9", "ws://127.0.0.1:9");
    let out = host
        .command(&lonely)
        .args(["--org", ORG])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "pty daemon not found at {}",
        dir.path()
            .canonicalize()
            .expect("real")
            .join("tether-ptyd")
            .display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("the bundle is incomplete"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_ptyd_is_restarted() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    relay.accept().await.expect_type("hello").await;
    host.wait_health("ptyd", "running").await;
    let first = host.status().await["ptydPid"].as_u64().expect("ptyd pid") as u32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill ptyd");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let second = loop {
        let status = host.status().await;
        if let Some(pid) = status["ptydPid"].as_u64().filter(|p| *p as u32 != first) {
            break pid as u32;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ptyd was not restarted: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(second));
    host.wait_health("ptyd", "running").await;
    assert_eq!(host.status().await["ptydRestarts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_the_host_keeps_the_shell_and_its_scrollback() {
    let (_api, mut relay, mut host, mut conn) = connected_host().await;
    conn.open_shell("s1").await;
    conn.input("s1", b"echo scroll-$((3*3)); export KEPT=yes\n")
        .await;
    conn.output_until("s1", "scroll-9").await;

    host.kill9();
    drop(conn);
    let pid = host.start();
    let mut conn = loop {
        // The dead host's connection may still be in the queue: take the new host's hello.
        let mut candidate = relay.accept().await;
        // A relay that lost this terminal's output asks for it from the start.
        candidate.resume_from = Some(0);
        let hello = candidate.expect_type("hello").await;
        if hello["sessions"].as_array().is_some_and(|s| !s.is_empty()) {
            assert_eq!(hello["sessions"][0]["sessionId"], "s1", "{hello}");
            break candidate;
        }
    };
    // Resumed from 0: ptyd's replay buffer comes first.
    conn.output_until("s1", "scroll-9").await;
    conn.input("s1", b"echo kept-$KEPT\n").await;
    conn.output_until("s1", "kept-yes").await;
    assert_eq!(host.status().await["pid"], pid);
}
