//! `tether auth login`: authorization code + PKCE S256 through a loopback redirect,
//! with this test playing the browser (RFC 6749 §4.1, RFC 7636, RFC 8252).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::*;

/// What the authorize endpoint saw.
#[derive(Default, Clone)]
struct Seen {
    challenge: Option<String>,
    redirect_uri: Option<String>,
}

struct Authorize(Arc<Mutex<Seen>>);

impl Respond for Authorize {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        if q.get("code_challenge_method").map(String::as_str) != Some("S256") {
            return ResponseTemplate::new(400);
        }
        let mut seen = self.0.lock().expect("lock");
        seen.challenge = q.get("code_challenge").cloned();
        seen.redirect_uri = q.get("redirect_uri").cloned();
        let location = format!("{}?code=CODE123&state={}", q["redirect_uri"], q["state"]);
        ResponseTemplate::new(302).insert_header("location", location.as_str())
    }
}

/// A strict token endpoint: the verifier must hash to the challenge, the redirect must match.
struct Token {
    seen: Arc<Mutex<Seen>>,
    issuer: String,
}

impl Respond for Token {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let f = form(request);
        let seen = self.seen.lock().expect("lock").clone();
        let verifier = f.get("code_verifier").cloned().unwrap_or_default();
        let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let ok = f.get("grant_type").map(String::as_str) == Some("authorization_code")
            && f.get("code").map(String::as_str) == Some("CODE123")
            && Some(hashed) == seen.challenge
            && f.get("redirect_uri") == seen.redirect_uri.as_ref();
        if !ok {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": jwt(&self.issuer, 3600, &["org_a"]),
            "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "rt_from_login", "scope": "openid profile email offline_access",
        }))
    }
}

async fn auth_server() -> (MockServer, Arc<Mutex<Seen>>) {
    let server = MockServer::start().await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Metadata with non-default paths proves the CLI follows RFC 8414.
    Mock::given(method("GET"))
        .and(path("/.well-known/oauth-authorization-server"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": server.uri(),
            "authorization_endpoint": format!("{}/as/authorize", server.uri()),
            "token_endpoint": format!("{}/as/token", server.uri()),
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/as/authorize"))
        .respond_with(Authorize(seen.clone()))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/as/token"))
        .respond_with(Token {
            seen: seen.clone(),
            issuer: server.uri(),
        })
        .mount(&server)
        .await;
    mount_session(&server, "org_a", &["org_a", "org_b"]).await;
    (server, seen)
}

/// Starts `tether auth login --no-browser` and returns it with the URL it printed.
fn start_login(home: &Home, api: &str, extra: &[&str]) -> (Child, String) {
    let mut args = vec!["auth", "login", "--no-browser"];
    args.extend_from_slice(extra);
    let mut child = tether_cmd(home, api, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("tether printed no URL").expect("line");
        if let Some(url) = line.trim().strip_prefix("http") {
            break format!("http{url}");
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// Plays the browser: follows the authorize URL, then optionally rewrites the redirect.
async fn browse(url: &str, tamper: impl Fn(String) -> String) -> reqwest::StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = client.get(url).send().await.expect("authorize");
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    client
        .get(tamper(location))
        .send()
        .await
        .expect("loopback callback")
        .status()
}

#[tokio::test]
async fn pkce_login_end_to_end() {
    let (server, seen) = auth_server().await;
    let home = Home::new();
    let (child, url) = start_login(&home, &server.uri(), &["--json"]);

    let parsed = url::Url::parse(&url).expect("authorize url");
    let q: std::collections::HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(parsed.path(), "/as/authorize");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "tether-cli");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "offline_access"));
    assert_eq!(q["resource"], server.uri());
    assert!(q["state"].len() >= 16);
    let redirect = url::Url::parse(&q["redirect_uri"]).expect("redirect uri");
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_ne!(redirect.port(), Some(0));

    assert_eq!(browse(&url, |loc| loc).await, 200);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    assert!(out.status.success());
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(doc["user"]["email"], "alice@example.com");
    assert_eq!(doc["method"], "oauth");

    let config = home.read_config();
    assert_eq!(config["auth"]["refreshToken"], "rt_from_login");
    assert_eq!(config["apiUrl"], server.uri());
    assert_eq!(config["organizationId"], "org_a");
    assert!(seen.lock().expect("lock").challenge.is_some());
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&home.path()), 0o700);
    assert_eq!(mode(&home.config_path()), 0o600);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("rt_from_login") && !stdout.contains("eyJ"),
        "secrets in --json: {stdout}"
    );
}

#[tokio::test]
async fn callbacks_without_this_logins_state_are_ignored_and_the_login_goes_on() {
    let (server, _) = auth_server().await;
    let home = Home::new();
    let (child, url) = start_login(&home, &server.uri(), &["--json"]);
    let parsed = url::Url::parse(&url).expect("authorize url");
    let redirect = parsed
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .expect("redirect_uri");
    let port = url::Url::parse(&redirect)
        .expect("redirect")
        .port()
        .expect("port");

    // A local process that found the port: holds half a request open…
    let mut half = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut half, b"GET /callback?sta")
        .await
        .expect("write");
    // …and sends callbacks with a forged state and with none.
    let client = reqwest::Client::new();
    for forged in [
        format!("{redirect}?code=STOLEN&state=forged"),
        format!("{redirect}?code=STOLEN"),
        format!("{redirect}?error=access_denied&state=forged"),
    ] {
        let status = client.get(&forged).send().await.expect("forged").status();
        assert_eq!(status, 400, "{forged}");
    }
    assert!(
        requests_to(&server, "/as/token").await.is_empty(),
        "a code was exchanged after a state mismatch"
    );

    // The real browser still completes the login, and tether exits with the half request still open.
    assert_eq!(browse(&url, |loc| loc).await, 200);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("tether exited although a connection held half a request")
    .expect("join")
    .expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exchanges = requests_to(&server, "/as/token").await;
    assert_eq!(exchanges.len(), 1);
    assert!(!String::from_utf8_lossy(&exchanges[0].body).contains("STOLEN"));
    drop(half);
}
