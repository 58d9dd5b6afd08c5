//! `tether host start | status | stop` and `auth login --via-host` as a user runs them.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tether_contract::environment::{API_KEY_ENV, HOME_ENV, RELAY_URL_ENV};

use crate::support::*;

fn unreachable_relay() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    format!("ws://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_daemon_against_an_unreachable_relay_then_refuse_a_second_start_then_stop() {
    let api = Api::start().await;
    let host = Host::new(&api.uri(), &unreachable_relay());
    let start = host.tether(&["host", "start", "--daemon", "--org", ORG]);
    let out = String::from_utf8_lossy(&start.stdout).into_owned();
    assert!(
        start.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(out.contains("tether-host is running for org_a"), "{out}");

    // Healthy (what `start` waits for) comes before the first dial has failed: wait for
    // the failure to be reported, then check how.
    let doc = host_status_once(&host, |line| !line["relayDetail"].is_null()).await;
    let line = &doc["hosts"][0];
    assert_eq!(
        (line["organizationId"].as_str(), line["state"].as_str()),
        (Some(ORG), Some("running"))
    );
    assert_eq!(line["relay"], "connecting");
    assert!(
        line["relayDetail"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{doc}"
    );
    assert_eq!(line["ptyd"], "running");
    let host_pid = line["pid"].as_u64().expect("pid") as u32;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read_to_string(host.paths().log).expect("log");
    assert!(log.contains("cannot reach the relay"), "{log}");
    assert!(!log.contains(API_KEY), "the API key reached the log");
    assert!(
        !log.contains('\u{1b}'),
        "the log file holds ANSI escape codes: {log:?}"
    );

    let again = host.tether(&["host", "start", "--daemon", "--org", ORG]);
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!("already running (pid {host_pid})")),
        "{err}"
    );

    let ptyd_pid = host.status().await["ptydPid"].as_u64().expect("ptyd pid") as u32;
    let stop = host.tether(&["host", "stop", "--org", ORG]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!alive(host_pid), "tether-host {host_pid} is still running");
    assert!(!alive(ptyd_pid), "tether-ptyd {ptyd_pid} is still running");
    let status = host.tether(&["host", "status", "--json"]);
    let doc: Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(doc["hosts"][0]["state"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_of_a_dead_host_is_reclaimed() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    relay.accept().await;
    host.kill9();
    let start = host.tether(&["host", "start", "--daemon", "--org", ORG]);
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let stop = host.tether(&["host", "stop", "--org", ORG]);
    assert!(stop.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_cannot_start_prints_its_log_tail() {
    let api = Api::start().await;
    let host = Host::new(&api.uri(), "ws://127.0.0.1:9");
    // Occupy the health port so tether-host fails at startup.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let start = host.tether(&["host", "start", "--daemon", "--org", ORG, "--port", &port]);
    assert_eq!(start.status.code(), Some(1));
    let err = String::from_utf8_lossy(&start.stderr);
    assert!(err.contains("Last lines of"), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_via_host_completes_through_the_relay_callback() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    api.accept_relay_callback(&relay.url);
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    let mut conn = relay.accept().await;
    conn.expect_type("hello").await;

    let mut login = host
        .command(&bin("tether"))
        .env_remove(API_KEY_ENV)
        .args(["auth", "login", "--via-host", "--no-browser", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login");
    let mut lines = BufReader::new(login.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("a URL").expect("line");
        if let Some(rest) = line.trim().strip_prefix("http") {
            break format!("http{rest}");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let url = url::Url::parse(&url).expect("url");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert!(
        query["redirect_uri"].starts_with(&relay.url.replace("ws://", "http://")),
        "{}",
        query["redirect_uri"]
    );
    assert_eq!(query["code_challenge_method"], "S256");

    // Play the browser at the reference server: its redirect (to the relay) carries the code.
    let code = authorization_code(url.as_str()).await;
    conn.send_json(json!({"type": "oauth.callback", "state": query["state"], "code": code}))
        .await;
    let out = tokio::task::spawn_blocking(move || login.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(out.status.success());
    let doc: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(doc["user"]["email"], "alice@example.com");
    let exchange = api
        .auth
        .requests_to("/oauth2/token")
        .await
        .into_iter()
        .next()
        .expect("exchange");
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&exchange.body)
            .into_owned()
            .collect();
    assert_eq!(form["code"], code);
    assert_eq!(form["redirect_uri"], query["redirect_uri"]);
    let config: Value = serde_json::from_slice(
        &std::fs::read(host.home.path().join("config.json")).expect("config"),
    )
    .expect("json");
    assert!(
        config["auth"]["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{config}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_is_green_when_everything_is_in_place_and_names_what_is_not() {
    let api = Api::start().await;
    let relay = MiniRelay::start().await;
    let host = Host::new(&api.uri(), &relay.url);
    std::fs::set_permissions(
        host.home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let out = host.tether(&["doctor", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert!(out.status.success(), "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for expected in [
        "bundle: tether-host",
        "bundle: tether-ptyd",
        "versions: tether-host",
        "versions: tether-ptyd",
        "auth: session",
        "server: API",
        "network: API",
        "network: relay",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }

    // A state directory others can read, and a relay that is gone, are both reported.
    let unsafe_home = host.home.path().join("open");
    std::fs::create_dir_all(&unsafe_home).expect("mkdir");
    std::fs::set_permissions(
        &unsafe_home,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let out = host
        .command(&bin("tether"))
        .env(HOME_ENV, &unsafe_home)
        .env(RELAY_URL_ENV, unreachable_relay())
        .args(["doctor", "--json"])
        .output()
        .expect("doctor");
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let failed: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        failed,
        ["config: state directory", "network: relay"],
        "{doc}"
    );
    assert!(doc.to_string().contains("chmod 700"), "{doc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_logs_prints_the_daemon_log() {
    let api = Api::start().await;
    let host = Host::new(&api.uri(), &unreachable_relay());
    let start = host.tether(&["host", "start", "--daemon", "--org", ORG]);
    assert!(start.status.success());
    let logs = host.tether(&["host", "logs", "--org", ORG]);
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("tether-host running"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );
    let stop = host.tether(&["host", "stop", "--org", ORG]);
    assert!(stop.status.success());
}

#[test]
fn the_cli_finds_the_host_service_through_a_symlink_in_the_bundle_layout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("opt dir/tether");
    for (name, sub) in [
        ("tether", "bin"),
        ("tether-host", "lib"),
        ("tether-ptyd", "lib"),
    ] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        std::fs::copy(bin(name), root.join(sub).join(name)).expect("copy");
    }
    let links = dir.path().join("usr/local/bin");
    std::fs::create_dir_all(&links).expect("mkdir");
    std::os::unix::fs::symlink(root.join("bin/tether"), links.join("tether")).expect("symlink");
    let host = Host::new("http://127.0.0.1:9", "ws://127.0.0.1:9");
    let out = host
        .command(&links.join("tether"))
        .args(["doctor", "--json"])
        .output()
        .expect("doctor");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let checks = doc["checks"].as_array().expect("checks");
    let detail = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["detail"].to_string())
            .unwrap_or_default()
    };
    let real_root = root.canonicalize().expect("real path");
    assert!(
        detail("bundle: tether-host")
            .contains(&real_root.join("lib/tether-host").display().to_string()),
        "{doc}"
    );
    assert!(
        detail("bundle: tether-ptyd")
            .contains(&real_root.join("lib/tether-ptyd").display().to_string()),
        "{doc}"
    );
}

/// `tether host status --json` once its first host's line satisfies `ready` (at most 10 s).
async fn host_status_once(host: &Host, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = host.tether(&["host", "status", "--json"]);
        let doc: Value = serde_json::from_slice(&status.stdout).expect("one JSON document");
        if ready(&doc["hosts"][0]) || std::time::Instant::now() > deadline {
            return doc;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
