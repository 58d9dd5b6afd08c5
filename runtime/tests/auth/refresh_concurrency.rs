//! Twenty CLI processes against one about-to-expire token share one refresh (contract section 7).

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_cause_exactly_one_refresh() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    // A slow token endpoint widens the window in which the processes race.
    Mock::given(method("POST"))
        .and(path("/oauth2/token"))
        .respond_with(SlowRotating(RotatingTokens {
            issuer: server.uri(),
            count: count.clone(),
        }))
        .mount(&server)
        .await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 90, &["org_a"]), 90);

    let children: Vec<_> = (0..20)
        .map(|_| {
            tether_cmd(&home, &server.uri(), &["auth", "status", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect::<Vec<_>>()
    })
    .await
    .expect("join");

    for out in &outputs {
        assert!(out.status.success(), "{}", stderr(out));
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "exactly one refresh_token request"
    );
    assert_eq!(home.read_config()["auth"]["refreshToken"], "rt_rotated_1");
}

struct SlowRotating(RotatingTokens);

impl wiremock::Respond for SlowRotating {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.0
            .respond(request)
            .set_delay(Duration::from_millis(300))
    }
}
