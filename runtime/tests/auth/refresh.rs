//! Proactive refresh, rotation persisted, and what each failure means (contract section 7).

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn a_token_with_time_left_is_not_refreshed() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let count = mount_rotating_token_endpoint(&server).await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 3600, &["org_a"]), 3600);
    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_token_inside_the_five_minute_window_is_refreshed_and_the_rotation_persisted() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let count = mount_rotating_token_endpoint(&server).await;
    let home = Home::new();
    let old_access = jwt(&server.uri(), 120, &["org_a"]);
    home.sign_in(&server.uri(), &old_access, 120);

    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_no_secrets(&out, &[&old_access, REFRESH_TOKEN, "rt_rotated_1"]);

    let refreshes = requests_to(&server, "/oauth2/token").await;
    let fields = form(&refreshes[0]);
    assert_eq!(fields["grant_type"], "refresh_token");
    assert_eq!(fields["refresh_token"], REFRESH_TOKEN);
    assert_eq!(fields["client_id"], "tether-cli");
    assert_eq!(fields["scope"], "openid profile email offline_access");
    assert_eq!(fields["resource"], server.uri());

    let config = home.read_config();
    assert_eq!(config["auth"]["refreshToken"], "rt_rotated_1");
    assert_ne!(config["auth"]["accessToken"], old_access.as_str());
    assert!(config["auth"]["expiresAt"].as_i64().expect("expiresAt") > (now_s() + 3000) * 1000);
    // The refreshed token is the one used afterwards.
    let session = &requests_to(&server, "/api/auth/get-session").await[0];
    assert_eq!(
        session.headers["authorization"],
        format!(
            "Bearer {}",
            config["auth"]["accessToken"].as_str().expect("token")
        )
        .as_str()
    );
}

#[tokio::test]
async fn invalid_grant_means_session_expired_with_exit_3_and_keeps_the_file() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "refresh token reused"}),
        ))
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), -10, &["org_a"]), -10);
    let before = home.read_config();

    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Session expired"), "{err}");
    assert!(err.trim_end().ends_with("Run: tether auth login"), "{err}");
    assert_eq!(
        home.read_config(),
        before,
        "a rejected refresh must not rewrite config.json"
    );
}

#[tokio::test]
async fn a_5xx_on_refresh_is_not_session_expired_and_an_unexpired_token_keeps_working() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 120, &["org_a"]), 120);

    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("Session expired"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("503"),
        "the transient failure should be reported: {}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("alice@example.com"));
}

#[tokio::test]
async fn a_5xx_with_an_expired_token_exits_4_naming_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), -10, &["org_a"]), -10);

    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}/oauth2/token", server.uri())),
        "{err}"
    );
    assert!(!err.contains("Session expired"), "{err}");
}

#[tokio::test]
async fn connection_refused_with_an_expired_token_exits_4_naming_the_url() {
    let api = refused_url();
    let home = Home::new();
    home.sign_in(&api, &jwt(&api, -10, &["org_a"]), -10);

    let out = tether(&home, &api, &["auth", "status"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&api), "{err}");
    assert!(err.contains("connection"), "{err}");
    assert!(!err.contains("Session expired"), "{err}");
}

#[tokio::test]
async fn tokens_from_another_api_are_not_sent_there() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let home = Home::new();
    home.sign_in(
        "https://api.other.invalid",
        &jwt("https://api.other.invalid", 3600, &["org_a"]),
        3600,
    );
    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("api.other.invalid"));
    assert!(server
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty());
}
