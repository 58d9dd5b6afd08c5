//! What a person or a script reads: `auth status --json`, `--version`, `--help`.

use serde_json::json;
use tether_contract::environment::API_KEY_ENV;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn status_json_for_oauth() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a", "org_b"]).await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 3600, &["org_a"]), 3600);
    let out = tether(&home, &server.uri(), &["auth", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("exactly one JSON document");
    insta::assert_json_snapshot!("status_oauth", doc, { ".expiresAt" => "[unix ms]" });
}

#[tokio::test]
async fn status_json_for_an_api_key() {
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
    let out = tether(
        &home,
        &server.uri(),
        &["--api-key", API_KEY, "auth", "status", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("exactly one JSON document");
    insta::assert_json_snapshot!("status_api_key", doc);
}

#[test]
fn not_signed_in_exits_3() {
    let home = Home::new();
    let out = tether(&home, "http://127.0.0.1:9", &["auth", "status"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).trim_end().ends_with("Run: tether auth login"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_names_the_commit_and_the_target() {
    let home = Home::new();
    let out = tether(&home, "http://127.0.0.1:9", &["--version"]);
    let text = stdout(&out);
    let re_ok = text.starts_with(&format!("tether {} (", env!("CARGO_PKG_VERSION")))
        && text.trim_end().ends_with(')')
        && text.contains("-linux-");
    assert!(re_ok, "{text}");
}

#[test]
fn help_never_shows_the_api_key_from_the_environment() {
    let home = Home::new();
    let out = tether_cmd(&home, "http://127.0.0.1:9", &["--help"])
        .env(API_KEY_ENV, API_KEY)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(stdout(&out).contains(API_KEY_ENV));
    assert_no_secrets(&out, &[API_KEY]);
}

#[test]
fn usage_errors_exit_2() {
    let home = Home::new();
    let out = tether(&home, "http://127.0.0.1:9", &["auth", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}
