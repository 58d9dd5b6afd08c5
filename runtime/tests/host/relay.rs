//! The relay connection: hello, terminals, route policy, rotation, reconnects.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_with_a_minted_jwt_and_says_hello() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    let mut conn = relay.accept().await;
    assert!(
        conn.uri
            .starts_with(&format!("/hosts/connect?organizationId={ORG}&hostId=host_")),
        "{}",
        conn.uri
    );
    // The JWT the reference server minted for the key, bound to the key's org.
    let claims = bearer_claims(&conn.authorization).expect("a JWT bearer");
    assert_eq!(claims["organizationIds"], json!([ORG]), "{claims}");
    assert_eq!(api.mints().await, 1);
    let hello = conn.expect_type("hello").await;
    assert_eq!(hello["organizationId"], ORG);
    assert_eq!(hello["sessions"], json!([]));
    host.wait_health("relay", "connected").await;
    host.wait_health("ptyd", "running").await;
    assert_eq!(host.health().await["status"], "ok");
    // The API key went as x-api-key, never Authorization.
    for request in api.auth.requests().await {
        assert!(request.headers.get("authorization").is_none());
        assert_eq!(request.headers["x-api-key"], API_KEY);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_opened_through_the_relay_runs_commands() {
    let (_api, _relay, _host, mut conn) = connected_host().await;
    conn.open_shell("t1").await;
    conn.input("t1", b"echo relayed-$((20+22))\n").await;
    conn.output_until("t1", "relayed-42").await;
    conn.send_json(json!({"type": "session.resize", "sessionId": "t1", "cols": 120, "rows": 40}))
        .await;
    conn.input("t1", b"stty size\n").await;
    conn.output_until("t1", "40 120").await;
    conn.send_json(json!({"type": "session.close", "sessionId": "t1"}))
        .await;
    let exit = conn.expect_type("session.exit").await;
    assert_eq!(exit["sessionId"], "t1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_routes_through_the_relay_are_forbidden_whatever_the_headers() {
    let (_api, _relay, host, mut conn) = connected_host().await;
    for (id, path) in [
        ("1", "/internal/shutdown"),
        ("2", "/health/../internal/oauth/connect/start"),
        ("3", "/%69nternal/shutdown"),
    ] {
        conn.send_json(json!({
            "type": "http.request", "id": id, "method": "POST", "path": path,
            "headers": {"host": "localhost", "x-forwarded-for": "127.0.0.1", "x-tether-local": "1"},
            "body": "{\"stopPtyd\":true}",
        }))
        .await;
        let response = conn.expect_type("http.response").await;
        assert_eq!(
            (response["id"].as_str(), response["status"].as_u64()),
            (Some(id), Some(403)),
            "{path}"
        );
    }
    conn.send_json(json!({"type": "http.request", "id": "4", "method": "GET", "path": "/health", "headers": {}})).await;
    let response = conn.expect_type("http.response").await;
    assert_eq!(response["status"], 200);
    // Unknown and malformed messages are dropped, not fatal.
    conn.send_json(json!({"type": "from.the.future"})).await;
    conn.send_json(json!({"type": "session.open"})).await;
    conn.send_json(json!({"type": "ping"})).await;
    assert_eq!(conn.expect_type("pong").await["type"], "pong");
    host.wait_health("relay", "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expired_rotates_once_to_a_new_token_new_connection_first() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    let mut old = relay.accept().await;
    old.expect_type("hello").await;
    old.send_json(json!({"type": "error", "error": "tokenExpired"}))
        .await;

    let mut new = relay.accept().await;
    assert_ne!(
        new.authorization, old.authorization,
        "rotation must bring a new token"
    );
    assert!(
        bearer_claims(&new.authorization).is_some(),
        "{}",
        new.authorization
    );
    new.expect_type("hello").await;
    // The old connection is closed only after the new one is up.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        loop {
            match old.ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                | None
                | Some(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the old connection was not closed");
    relay
        .assert_no_connection(Duration::from_millis(1500))
        .await;
    assert_eq!(api.mints().await, 2, "exactly one rotation");
    assert_eq!(host.status().await["rotations"], 1);
    host.wait_health("relay", "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_token_expiries_in_a_minute_mean_auth_failed_and_no_spin() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut conn = relay.accept().await;
        conn.expect_type("hello").await;
        conn.send_json(json!({"type": "error", "error": "tokenExpired"}))
            .await;
        open.push(conn);
    }
    host.wait_health("relay", "auth_failed").await;
    relay.assert_no_connection(Duration::from_secs(3)).await;
    assert_eq!(api.mints().await, 4, "three rotations, then stop");
    let status = host.status().await;
    assert!(
        status["relayDetail"]
            .as_str()
            .unwrap_or_default()
            .contains("tokenExpired"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_relay_is_redialed_with_backoff_and_terminals_survive() {
    let (api, mut relay, host, mut conn) = connected_host().await;
    conn.open_shell("keep").await;
    conn.input("keep", b"export MARK=survived\n").await;
    drop(conn);

    let started = std::time::Instant::now();
    let mut again = relay.accept().await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "reconnected after {waited:?}: no backoff"
    );
    let hello = again.expect_type("hello").await;
    assert_eq!(hello["sessions"][0]["sessionId"], "keep", "{hello}");
    again.input("keep", b"echo $MARK-$((1+1))\n").await;
    again.output_until("keep", "survived-2").await;
    assert_eq!(host.status().await["reconnects"], 1);
    assert_eq!(api.mints().await, 1, "a reconnect reuses the cached token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_handshake_is_auth_failed_without_retrying() {
    let api = Api::start().await;
    let relay = MiniRelay::start().await;
    relay.refuse.store(403, std::sync::atomic::Ordering::SeqCst);
    let mut host = Host::new(&api.uri(), &relay.url);
    host.start();
    host.wait_health("relay", "auth_failed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(api.mints().await, 1);
    let status = host.status().await;
    assert!(
        status["relayDetail"]
            .as_str()
            .unwrap_or_default()
            .contains("403"),
        "{status}"
    );
}
