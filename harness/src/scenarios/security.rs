//! security: what a hostile server, proxy path or relay must not achieve (contract sections
//! 1, 4 and 9; docs/SECURITY.md). The API server is trusted for identity, not for names or
//! sizes; a proxy is another machine; a relayed callback is anyone's input.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use base64::Engine;
use serde_json::{json, Value};

use super::env::{Machine, World};
use super::runs::{ensure_failed, text, wait_output};
use super::scenario;
use super::Scenario;
use crate::authserver::{DeviceAnswer, IssAnswer};
use crate::forward_proxy::ForwardProxy;
use crate::hostile_api::{Answer, HostileApi};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("security.loopback_never_proxied", "with every proxy variable set, loopback API and relay traffic goes direct: the proxy sees no request, so no API key crosses it", "contract §9", loopback_never_proxied),
        scenario!("security.metadata_plaintext", "token, device and other endpoints named by discovery metadata are held to the plaintext rule: exit 2 naming the URL, no connection, the refresh token kept", "contract §9", metadata_plaintext),
        scenario!("security.hostile_org_id", "an organization id from the server with a newline and a unit section is refused with exit 1, shown escaped, before any unit is printed or file written", "contract §1", hostile_org_id),
        scenario!("security.server_text_printable", "escape sequences and bidi overrides in the user id and email reach the terminal as printable text only", "contract §1", server_text_printable),
        scenario!("security.endless_body", "an API answer that never ends is cut at 1 MiB: the CLI stops at once with a clear error, and tether-host stays under 64 MiB while its mint path is fed one", "contract §1, §5", endless_body),
        scenario!("security.device_interval_overflow", "a device-flow interval of 2^64-1 seconds ends the login cleanly (no panic, no abort)", "RFC 8628 §3.2, contract §1", device_interval_overflow),
        scenario!("security.via_host_iss", "a --via-host callback whose iss names another server ends the flow before the code is redeemed", "RFC 9207 §2.4, contract §4", via_host_iss),
    ]
}

const WAIT: Duration = Duration::from_secs(15);
const HOSTILE_ORG: &str = "a\n[Service]\nUser=root";
const ESCAPES: &str = "\u{1b}]0;PWNED\u{7}";
const BIDI: char = '\u{202E}';

/// A JWT-shaped token (unsigned: the CLI reads its claims, the relay would verify it).
fn unsigned_jwt(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(claims)
    )
}

fn in_an_hour_s() -> i64 {
    crate::clock::now_s() + 3600
}

async fn loopback_never_proxied() -> anyhow::Result<()> {
    let proxy = ForwardProxy::start(None)?;
    let world = World::start().await?;
    let mut machine = world.machine()?;
    machine.api_key = Some(world.auth.state().issue_api_key("user_alice", "org_a"));
    machine.extra_env = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"]
        .iter()
        .map(|name| (name.to_string(), proxy.url()))
        .collect();
    let out = machine.tether(&["auth", "status"]).await?;
    ensure!(out.status.success(), "auth status failed: {}", text(&out).1);
    machine.start_host("org_a").await?;
    world.relay.wait_host("org_a", WAIT).await?;
    let _ = machine.tether(&["host", "stop", "--org", "org_a"]).await;
    ensure!(
        proxy.seen().is_empty(),
        "loopback traffic went through the proxy: {:?}",
        proxy.seen()
    );
    Ok(())
}

async fn metadata_plaintext() -> anyhow::Result<()> {
    let far = "http://192.0.2.1";
    // The metadata names the API itself for authorization, a far plain-http host for the rest.
    let api = HostileApi::start(|issuer| {
        vec![(
            "/.well-known/oauth-authorization-server",
            Answer::Json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
                "token_endpoint": format!("{far}/token"),
                "device_authorization_endpoint": format!("{far}/device"),
                "revocation_endpoint": format!("{far}/revoke"),
                "userinfo_endpoint": format!("{far}/userinfo"),
                "jwks_uri": format!("{issuer}/jwks"),
            })),
        )]
    })
    .await?;
    let machine = Machine::new(&api.uri(), "ws://127.0.0.1:9")?;
    // Expired: `auth status` must refresh at the token endpoint the metadata names.
    machine.store_sign_in("at_expired", Some("rt_keep_me"), 0)?;
    let started = Instant::now();
    let out = machine.tether(&["auth", "status"]).await?;
    ensure_failed(&out, 2, &[&format!("{far}/token")])?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "it tried to connect first ({:?})",
        started.elapsed()
    );
    ensure!(
        machine.read_config()?["auth"]["refreshToken"] == "rt_keep_me",
        "the refresh token was lost"
    );
    let out = machine.tether(&["auth", "login", "--device"]).await?;
    ensure_failed(&out, 2, &[far])?;
    Ok(())
}

/// A hostile API that names `org` as the key's organization, and `user` as its owner.
async fn hostile_session(org: &str, user: Value) -> anyhow::Result<HostileApi> {
    HostileApi::start(|_| vec![
        (
            "/api/auth/get-session",
            Answer::Json(json!({
                "user": user,
                "session": {"activeOrganizationId": org},
                "organizationIds": [org],
            })),
        ),
        (
            "/api/auth/token",
            Answer::Json(json!({
                "token": unsigned_jwt(&json!({"exp": in_an_hour_s(), "sub": "u1", "organizationIds": [org]})),
            })),
        ),
    ])
    .await
}

async fn hostile_org_id() -> anyhow::Result<()> {
    let api = hostile_session(HOSTILE_ORG, json!({"id": "u1", "email": "u1@example.com"})).await?;
    let mut machine = Machine::new(&api.uri(), "ws://127.0.0.1:9")?;
    machine.api_key = Some("sk_live_hostile_org_test".into());
    for args in [
        &["host", "install", "--print"][..],
        &["host", "start", "--daemon"][..],
        &["auth", "status"][..],
    ] {
        let out = machine.tether(args).await?;
        let err = ensure_failed(
            &out,
            1,
            &["invalid organization id", "a\\n[Service]\\nUser=root"],
        )?;
        let (stdout, _) = text(&out);
        ensure!(
            !stdout.contains("User=root") && !err.lines().any(|l| l.trim() == "User=root"),
            "tether {args:?} let the org id through:\n{stdout}{err}"
        );
    }
    // From the command line too; nothing was created under TETHER_HOME's parents.
    let escape = "../../victim/x";
    let out = machine
        .tether(&["host", "install", "--print", "--org", escape])
        .await?;
    ensure_failed(&out, 1, &["invalid organization id"])?;
    ensure!(
        !machine.dir.path().join("victim").exists(),
        "a path outside TETHER_HOME was created"
    );
    Ok(())
}

async fn server_text_printable() -> anyhow::Result<()> {
    let user = json!({
        "id": format!("u1{ESCAPES}"),
        "email": format!("{ESCAPES}mallory{BIDI}gnp.exe@example.com"),
    });
    let api = hostile_session("org_a", user).await?;
    let mut machine = Machine::new(&api.uri(), "ws://127.0.0.1:9")?;
    machine.api_key = Some("sk_live_printable_test".into());
    let out = machine.tether(&["auth", "status"]).await?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "auth status failed: {stderr}");
    ensure!(
        stdout.contains("mallory"),
        "the email is not shown: {stdout}"
    );
    for (what, bad) in [("ESC", '\u{1b}'), ("BEL", '\u{7}'), ("U+202E", BIDI)] {
        ensure!(
            !stdout.contains(bad) && !stderr.contains(bad),
            "{what} reached the terminal: {stdout:?}"
        );
    }
    Ok(())
}

async fn endless_body() -> anyhow::Result<()> {
    let api = HostileApi::start(|_| {
        vec![
            ("/api/auth/get-session", Answer::Endless),
            ("/api/auth/token", Answer::Endless),
        ]
    })
    .await?;
    let mut machine = Machine::new(&api.uri(), "ws://127.0.0.1:9")?;
    machine.api_key = Some("sk_live_endless_test".into());
    let started = Instant::now();
    let out = machine.tether(&["auth", "status"]).await?;
    ensure_failed(&out, 1, &["longer than 1024 KiB"])?;
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "it read for {:?}",
        started.elapsed()
    );

    // The host mints (and keeps re-minting, with backoff) against the endless answer.
    machine.start_host("org_a").await?;
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut peak_kib = 0;
    while Instant::now() < deadline {
        let status = machine.host_status("org_a").await?;
        let pid = status["pid"].as_u64().context("no host pid")?;
        peak_kib = peak_kib.max(super::processes::status_kib(pid as u32, "VmRSS").unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = machine.tether(&["host", "stop", "--org", "org_a"]).await;
    ensure!(
        api.endless_bytes_sent() > 1 << 20,
        "the host never read the endless answer"
    );
    ensure!(
        peak_kib < 64 * 1024,
        "tether-host grew to {peak_kib} KiB reading an endless answer"
    );
    Ok(())
}

async fn device_interval_overflow() -> anyhow::Result<()> {
    let world = World::start().await?;
    {
        let mut state = world.auth.state();
        state.device.interval_s = u64::MAX;
        state.device.script = [DeviceAnswer::Pending].into_iter().collect();
    }
    let machine = world.machine()?;
    let out = machine.tether(&["auth", "login", "--device"]).await?;
    let (_, stderr) = text(&out);
    ensure!(
        out.status.code() == Some(1),
        "exit {:?} (a panic or abort?): {stderr}",
        out.status.code()
    );
    ensure!(!stderr.contains("panicked"), "it panicked: {stderr}");
    Ok(())
}

async fn via_host_iss() -> anyhow::Result<()> {
    let world = World::start().await?;
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    machine.start_host("org_a").await?;
    world.relay.wait_host("org_a", WAIT).await?;
    world.auth.state().iss_answer = IssAnswer::Wrong;
    machine.api_key = None;
    let (child, url) = machine
        .spawn_with_url(&["auth", "login", "--via-host", "--no-browser", "--json"])
        .await?;
    super::env::browse(&url, |location| location).await?;
    let out = wait_output(child).await?;
    let _ = machine.tether(&["host", "stop", "--org", "org_a"]).await;
    let (stdout, _) = text(&out);
    ensure!(out.status.code() == Some(1), "a mixed-up login succeeded");
    ensure!(
        stdout.contains("attacker.example") && stdout.contains("RFC 9207"),
        "the refusal does not say why: {stdout}"
    );
    ensure!(
        world.auth.requests_to("/oauth2/token").await.is_empty(),
        "the code was redeemed"
    );
    ensure!(!machine.has_stored_sign_in(), "tokens were stored");
    Ok(())
}
