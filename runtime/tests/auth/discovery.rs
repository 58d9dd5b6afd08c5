//! Endpoints from RFC 8414 metadata, OpenID discovery, or the defaults (contract section 3).

use serde_json::json;
use tether::auth::AuthError;
use tether::auth::{discover, EndpointSource};
use tether::net::http_client;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn metadata(issuer: &str) -> serde_json::Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/custom/authorize"),
        "token_endpoint": format!("{issuer}/custom/token"),
        "revocation_endpoint": format!("{issuer}/custom/revoke"),
        "jwks_uri": format!("{issuer}/custom/jwks"),
    })
}

#[tokio::test]
async fn rfc8414_metadata_wins() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata(&server.uri())))
        .mount(&server)
        .await;
    let endpoints = discover(&http_client(), &server.uri())
        .await
        .expect("discover");
    assert_eq!(endpoints.source, EndpointSource::Rfc8414);
    assert_eq!(endpoints.token, format!("{}/custom/token", server.uri()));
    assert_eq!(
        endpoints.revocation.as_deref(),
        Some(format!("{}/custom/revoke", server.uri()).as_str())
    );
}

#[tokio::test]
async fn openid_configuration_is_the_second_choice() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata(&server.uri())))
        .mount(&server)
        .await;
    let endpoints = discover(&http_client(), &server.uri())
        .await
        .expect("discover");
    assert_eq!(endpoints.source, EndpointSource::OpenIdConfiguration);
    assert_eq!(
        endpoints.authorization,
        format!("{}/custom/authorize", server.uri())
    );
}

#[tokio::test]
async fn without_metadata_the_contract_defaults_apply() {
    let server = MockServer::start().await;
    let endpoints = discover(&http_client(), &server.uri())
        .await
        .expect("discover");
    assert_eq!(endpoints.source, EndpointSource::Defaults);
    assert_eq!(endpoints.token, format!("{}/oauth2/token", server.uri()));
    assert_eq!(
        endpoints.authorization,
        format!("{}/oauth2/authorize", server.uri())
    );
}

#[tokio::test]
async fn an_issuer_mismatch_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(metadata("https://evil.invalid")))
        .mount(&server)
        .await;
    let err = discover(&http_client(), &server.uri())
        .await
        .expect_err("mismatch");
    assert!(matches!(err, AuthError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("issuer"), "{err}");
}
