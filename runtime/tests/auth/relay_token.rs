//! Relay JWTs: pass-through, minting, caching, single flight and retries (contract section 2).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tether::auth::AuthError;
use tether::auth::ConfigStore;
use tether::auth::Credential;
use tether::auth::OAuthAccount;
use tether::auth::RetryPolicy;
use tether::auth::Secret;
use tether::auth::{CredentialSource, RelayTokenProvider};
use tether::net::http_client;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    }
}

fn provider(server: &MockServer, credential: &str) -> RelayTokenProvider {
    RelayTokenProvider::new(
        http_client(),
        server.uri(),
        CredentialSource::Given(Credential::classify(Secret::new(credential))),
        fast_retry(),
    )
}

async fn mount_mint(server: &MockServer, ttl_s: i64, delay_ms: u64) {
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token": jwt(&server.uri(), ttl_s, &["org_a"])}))
                .set_delay(Duration::from_millis(delay_ms)),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn an_api_key_is_minted_once_and_cached() {
    let server = MockServer::start().await;
    mount_mint(&server, 600, 0).await;
    let p = provider(&server, API_KEY);
    let first = p.relay_jwt().await.expect("mint");
    let second = p.relay_jwt().await.expect("cached");
    assert_eq!(first, second);
    let mints = requests_to(&server, "/api/auth/token").await;
    assert_eq!(mints.len(), 1);
    assert_eq!(mints[0].headers["x-api-key"], API_KEY);
    assert!(mints[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_session_token_is_minted_with_bearer() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .and(header(
            "authorization",
            format!("Bearer {SESSION_TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token": jwt(&server.uri(), 600, &["org_a"])})),
        )
        .expect(1)
        .mount(&server)
        .await;
    provider(&server, SESSION_TOKEN)
        .relay_jwt()
        .await
        .expect("minted with Bearer");
}

#[tokio::test]
async fn concurrent_callers_share_one_mint() {
    let server = MockServer::start().await;
    mount_mint(&server, 600, 200).await;
    let p = Arc::new(provider(&server, API_KEY));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn({
                let p = p.clone();
                async move { p.relay_jwt().await }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("token");
    }
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 1);
}

#[tokio::test]
async fn a_token_inside_the_60_second_margin_is_minted_again() {
    let server = MockServer::start().await;
    mount_mint(&server, 45, 0).await;
    let p = provider(&server, API_KEY);
    p.relay_jwt().await.expect("first");
    p.relay_jwt().await.expect("second");
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 2);
}

#[tokio::test]
async fn a_5xx_is_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_mint(&server, 600, 0).await;
    provider(&server, API_KEY)
        .relay_jwt()
        .await
        .expect("third attempt succeeds");
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 3);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_three_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let err = provider(&server, API_KEY)
        .relay_jwt()
        .await
        .expect_err("gives up");
    assert_eq!(err.exit_code(), 4, "{err}");
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 4);
}

#[tokio::test]
async fn a_401_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/auth/token"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let err = provider(&server, API_KEY)
        .relay_jwt()
        .await
        .expect_err("refused");
    assert!(
        matches!(err, AuthError::Refused { status: 401, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains(API_KEY));
    assert_eq!(requests_to(&server, "/api/auth/token").await.len(), 1);
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let api = refused_url();
    let p = RelayTokenProvider::new(
        http_client(),
        api.clone(),
        CredentialSource::Given(Credential::classify(Secret::new(API_KEY))),
        fast_retry(),
    );
    let err = p.relay_jwt().await.expect_err("unreachable");
    assert_eq!(err.exit_code(), 4);
    assert!(err.to_string().contains(&api), "{err}");
}

fn stored_provider(server: &MockServer, home: &Home) -> RelayTokenProvider {
    let account = OAuthAccount {
        store: ConfigStore::new(home.path()),
        api_url: server.uri(),
        http: http_client(),
    };
    RelayTokenProvider::new(
        http_client(),
        server.uri(),
        CredentialSource::Stored(account),
        fast_retry(),
    )
}

#[tokio::test]
async fn a_fresh_oauth_jwt_is_passed_through_without_minting() {
    let server = MockServer::start().await;
    let home = Home::new();
    let access = jwt(&server.uri(), 3600, &["org_a"]);
    home.sign_in(&server.uri(), &access, 3600);
    let token = stored_provider(&server, &home)
        .relay_jwt()
        .await
        .expect("pass-through");
    assert_eq!(token.expose(), access);
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "no request at all"
    );
}

#[tokio::test]
async fn an_oauth_jwt_inside_the_margin_is_refreshed_before_it_reaches_the_relay() {
    let server = MockServer::start().await;
    mount_rotating_token_endpoint(&server).await;
    let home = Home::new();
    let access = jwt(&server.uri(), 30, &["org_a"]);
    home.sign_in(&server.uri(), &access, 30);
    let token = stored_provider(&server, &home)
        .relay_jwt()
        .await
        .expect("refreshed");
    assert_ne!(token.expose(), access);
    assert!(held_exp(token.expose()) > now_s() + 3000);
    assert!(
        requests_to(&server, "/api/auth/token").await.is_empty(),
        "an OAuth JWT is never minted"
    );
}

#[tokio::test]
async fn an_expiring_oauth_jwt_is_never_handed_out_when_refresh_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 30, &["org_a"]), 30);
    let err = stored_provider(&server, &home)
        .relay_jwt()
        .await
        .expect_err("no stale token");
    assert_eq!(err.exit_code(), 4, "{err}");
}

fn held_exp(token: &str) -> i64 {
    tether::auth::held_claims(token).expect("claims").exp
}
