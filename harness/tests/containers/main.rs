//! Scenarios with the reference servers in a container and the host service in another,
//! on a user-defined network, so the relay can really be cut off. Without Docker (or the
//! images) they say so and skip — unless `TETHER_REQUIRE_DOCKER=1`, which CI sets.

use std::time::Duration;

mod deployment;

use deployment::{unavailable, Deployment};
use tether_harness::scenarios::env::bin_dir;

/// `Some(reason)` when the scenario must be skipped; panics instead when Docker is required.
fn skip() -> Option<String> {
    let reason = unavailable()?;
    if std::env::var("TETHER_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("container scenarios are required here, but {reason}");
    }
    eprintln!("SKIPPED container scenario: {reason}");
    Some(reason)
}

fn accepted_tokens(connections: &serde_json::Value) -> Vec<String> {
    connections
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == 101)
        .filter_map(|c| c["token"].as_str().map(str::to_string))
        .collect()
}

/// partition.relay_stopped: the relay container stops mid-session → the host reports
/// `connecting`, backs off, reconnects when it is back with the same token, and the
/// terminal (with its shell state) survives. Contract §4 (reconnect, sessions in ptyd).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_stopped_then_back_keeps_the_terminal_and_the_token() {
    if skip().is_some() {
        return;
    }
    let d = Deployment::start(&bin_dir().expect("binaries"))
        .await
        .expect("deployment");
    d.wait_relay("connected", Duration::from_secs(20))
        .await
        .expect("connected");
    d.terminal(
        "keep",
        "export MARK=survived; echo ready-$((1+1))",
        "ready-2",
    )
    .await
    .expect("terminal");
    let before = accepted_tokens(&d.relay_connections().await.expect("connections"));
    assert_eq!(before.len(), 1, "{before:?}");

    d.harness.stop().await.expect("stop the relay");
    let state = d
        .wait_relay("connecting", Duration::from_secs(20))
        .await
        .expect("connecting");
    assert!(state["relayDetail"].as_str().is_some(), "{state}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    d.harness.start().await.expect("start the relay again");
    d.wait_relay("connected", Duration::from_secs(45))
        .await
        .expect("reconnected");

    let output = d
        .terminal("keep", "echo mark=$MARK", "mark=survived")
        .await
        .expect("the terminal survived");
    assert!(output.contains("mark=survived"));
    let after = accepted_tokens(&d.relay_connections().await.expect("connections"));
    assert_eq!(
        after, before,
        "the reconnect should reuse the still-valid token, not mint or refresh"
    );
    let (code, _) = d
        .tether(&["host", "stop", "--org", "org_a"])
        .await
        .expect("stop");
    assert_eq!(code, 0);
}
