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

/// service.systemd_restart: `tether host install --system` in a container with systemd as
/// PID 1; the unit's host connects, a terminal survives `systemctl restart` of the unit
/// (KillMode=process leaves ptyd and its shells alone), and `uninstall` leaves no file.
/// Contract §10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_survives_a_restart_of_the_installed_system_service() {
    if skip().is_some() {
        return;
    }
    let d = Deployment::start_with_systemd(&bin_dir().expect("binaries"))
        .await
        .expect("deployment");
    let (code, out) = d
        .tether(&[
            "host", "install", "--system", "--user", "root", "--org", "org_a",
        ])
        .await
        .expect("install");
    assert_eq!(code, 0, "{out}");
    let state = d
        .wait_relay("connected", Duration::from_secs(30))
        .await
        .expect("connected");
    assert_eq!(state["manager"], "systemd", "{state}");
    let pid = state["pid"].as_u64().expect("pid");
    d.terminal(
        "keep",
        "export MARK=survived; echo ready-$((1+1))",
        "ready-2",
    )
    .await
    .expect("terminal");

    let (code, out) = d
        .exec(&["systemctl", "restart", "tether-host-org_a.service"])
        .await
        .expect("restart");
    assert_eq!(code, 0, "{out}");
    d.wait_state(
        "a new host process connected",
        Duration::from_secs(30),
        |state| state["relay"] == "connected" && state["pid"].as_u64() != Some(pid),
    )
    .await
    .expect("restarted");
    let output = d
        .terminal("keep", "echo mark=$MARK", "mark=survived")
        .await
        .expect("the terminal survived the restart");
    assert!(output.contains("mark=survived"));

    // Under systemd the log is the journal of the unit that runs it: the system unit here.
    let (code, out) = d
        .tether(&["host", "logs", "--org", "org_a"])
        .await
        .expect("logs");
    assert!(code == 0 && out.contains("connected to the relay"), "{out}");

    let (code, out) = d
        .tether(&["host", "uninstall", "--system", "--org", "org_a"])
        .await
        .expect("uninstall");
    assert_eq!(code, 0, "{out}");
    let (code, out) = d
        .exec(&[
            "sh",
            "-c",
            "ls /etc/systemd/system/tether-host-org_a.service /etc/tether/host-org_a.env 2>/dev/null",
        ])
        .await
        .expect("ls");
    assert!(
        code != 0 && out.trim().is_empty(),
        "files left behind: {out}"
    );
}

/// net.squid_only_way_out: the host container sits on an internal network with no route
/// to the harness; Debian's squid (a real proxy) is its only way out. Through
/// `HTTPS_PROXY` the host signs in, connects to the relay over WSS with the private CA,
/// and serves a terminal; squid logged the CONNECT tunnels; without the proxy the same
/// CLI cannot reach the API at all. Contract §9.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_squid_the_host_reaches_the_relay_only_through_the_proxy() {
    if skip().is_some() {
        return;
    }
    let d = Deployment::start_behind_proxy(&bin_dir().expect("binaries"))
        .await
        .expect("deployment");
    let (code, out) = d
        .exec(&[
            "env",
            "-u",
            "HTTPS_PROXY",
            "/opt/tether/bin/tether",
            "auth",
            "status",
        ])
        .await
        .expect("auth status without the proxy");
    assert_eq!(
        code, 4,
        "without the proxy the API must be unreachable: {out}"
    );

    let (code, out) = d
        .tether(&["host", "start", "--daemon", "--org", "org_a"])
        .await
        .expect("host start");
    assert_eq!(code, 0, "{out}");
    d.wait_relay("connected", Duration::from_secs(30))
        .await
        .expect("connected through squid");
    let output = d
        .terminal("t", "echo via-$((6*7))", "via-42")
        .await
        .expect("terminal");
    assert!(output.contains("via-42"));

    let (code, _) = d
        .tether(&["host", "stop", "--org", "org_a"])
        .await
        .expect("stop");
    assert_eq!(code, 0);

    // squid logs a tunnel when it closes: the relay's closed with the host's stop.
    let proxy = d.proxy.as_ref().expect("proxy");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = proxy.access_log().await.expect("squid log");
        let missing: Vec<String> = [8080, 8081]
            .iter()
            .map(|port| format!("CONNECT {}:{port}", d.harness_name))
            .filter(|tunnel| !log.contains(tunnel))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "squid saw no {missing:?}: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
