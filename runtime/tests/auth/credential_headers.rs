//! Each credential kind travels in its own header (contract section 2).

use serde_json::json;
use tether_contract::environment::API_KEY_ENV;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn api_key_travels_as_x_api_key_and_never_in_authorization() {
    let server = MockServer::start().await;
    mount_session(&server, "org_personal", &["org_personal", "org_a"]).await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token": jwt(&server.uri(), 600, &["org_a"])})),
        )
        .mount(&server)
        .await;
    let home = Home::new();

    for via_env in [false, true] {
        let mut cmd = tether_cmd(&home, &server.uri(), &["auth", "status", "--json"]);
        if via_env {
            cmd.env(API_KEY_ENV, API_KEY);
        } else {
            cmd.args(["--api-key", API_KEY]);
        }
        let out = cmd.output().expect("run");
        assert!(out.status.success(), "{}", stderr(&out));
        assert_no_secrets(&out, &[API_KEY]);
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        assert_eq!(report["method"], "api_key");
        // The key's bound org, never the user's default.
        assert_eq!(report["organizationId"], "org_a");
    }

    let requests = server.received_requests().await.expect("recorded");
    assert!(
        requests.len() >= 4,
        "expected get-session and token per run, got {}",
        requests.len()
    );
    for request in &requests {
        assert_eq!(
            request.headers.get("x-api-key").map(|v| v.as_bytes()),
            Some(API_KEY.as_bytes()),
            "{}",
            request.url
        );
        assert!(
            request.headers.get("authorization").is_none(),
            "Authorization sent to {}",
            request.url
        );
    }
}

#[tokio::test]
async fn stored_oauth_jwt_travels_as_bearer_and_is_not_minted() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let home = Home::new();
    let access = jwt(&server.uri(), 3600, &["org_a"]);
    home.sign_in(&server.uri(), &access, 3600);

    let out = tether(&home, &server.uri(), &["auth", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secrets(&out, &[&access, REFRESH_TOKEN]);
    let sessions = requests_to(&server, "/api/auth/get-session").await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].headers["authorization"],
        format!("Bearer {access}").as_str()
    );
    assert!(sessions[0].headers.get("x-api-key").is_none());
    assert!(
        requests_to(&server, "/api/auth/token").await.is_empty(),
        "an OAuth JWT must not be minted"
    );
}

#[tokio::test]
async fn opaque_access_token_is_a_session_token_sent_as_bearer() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let home = Home::new();
    home.sign_in(&server.uri(), SESSION_TOKEN, 3600);

    let out = tether(&home, &server.uri(), &["auth", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secrets(&out, &[SESSION_TOKEN]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(report["method"], "session");
    let sessions = requests_to(&server, "/api/auth/get-session").await;
    assert_eq!(
        sessions[0].headers["authorization"],
        format!("Bearer {SESSION_TOKEN}").as_str()
    );
}

#[tokio::test]
async fn api_key_whose_owner_left_the_bound_org_is_refused_with_a_reason() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_b"]).await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"error": "forbidden"})))
        .mount(&server)
        .await;
    let home = Home::new();
    let out = tether(
        &home,
        &server.uri(),
        &["--api-key", API_KEY, "auth", "status"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no longer a member"),
        "{}",
        stderr(&out)
    );
    assert_no_secrets(&out, &[API_KEY]);
    // 403 is final: not retried.
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 1);
}
