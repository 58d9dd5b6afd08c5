//! `tether auth logout`: revoke the refresh token, forget the sign-in, keep everything else.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn logout_revokes_the_refresh_token_and_forgets_the_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth2/revoke"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 3600, &["org_a"]), 3600);
    let mut config = home.read_config();
    config["theme"] = "dark".into();
    home.write_config(&config);

    let out = tether(&home, &server.uri(), &["auth", "logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_secrets(&out, &[REFRESH_TOKEN]);
    let revoked = requests_to(&server, "/oauth2/revoke").await;
    let fields = form(&revoked[0]);
    assert_eq!(fields["token"], REFRESH_TOKEN);
    assert_eq!(fields["token_type_hint"], "refresh_token");
    let after = home.read_config();
    assert!(after.get("auth").is_none(), "{after}");
    assert_eq!(after["theme"], "dark");

    let status = tether(&home, &server.uri(), &["auth", "status"]);
    assert_eq!(status.status.code(), Some(3));
}

#[test]
fn logout_with_the_server_down_still_forgets_the_tokens_and_says_so() {
    let api = refused_url();
    let home = Home::new();
    home.sign_in(&api, &jwt(&api, 3600, &["org_a"]), 3600);
    let out = tether(&home, &api, &["auth", "logout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not revoke"),
        "{}",
        stderr(&out)
    );
    assert!(home.read_config().get("auth").is_none());
}
