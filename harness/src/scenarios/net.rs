//! net: tether on real networks (contract section 9). Certificates from an unknown CA,
//! for another name or expired are refused and named; the API and the relay are reached
//! through a CONNECT proxy with Basic credentials (at names only the proxy resolves);
//! `NO_PROXY` goes direct; a dead proxy is named; plaintext to other hosts is refused
//! before any connection.

use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tether_contract::environment::ALLOW_PLAINTEXT_ENV;

use super::env::{Machine, World};
use super::runs::{ensure_failed, text};
use super::scenario;
use super::Scenario;
use crate::authserver::AuthServer;
use crate::forward_proxy::ForwardProxy;
use crate::relay::Relay;
use crate::tls::Tls;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("net.untrusted_ca", "a certificate from a CA outside the trust store: exit 4 naming the host, \"unknown issuer\", the issuer and SSL_CERT_FILE", "contract §9", untrusted_ca),
        scenario!("net.wrong_host_name", "a certificate for another name: exit 4, \"name mismatch\"", "contract §9", wrong_host_name),
        scenario!("net.expired_certificate", "an expired certificate: exit 4, \"expired\"", "contract §9", expired_certificate),
        scenario!("net.relay_tls_error", "a relay with an untrusted certificate: host status says tls_error with the reason, and the host retries with backoff, not in a loop", "contract §9, §5", relay_tls_error),
        scenario!("net.proxy_basic_auth", "API and relay at names only a CONNECT proxy resolves, with Basic credentials: sign-in works, the host connects, the password appears nowhere", "contract §9", proxy_basic_auth),
        scenario!("net.no_proxy_bypass", "NO_PROXY (a domain with a trailing dot) sends the API direct, so a name only the proxy resolves fails and the proxy sees nothing; without it the same call goes through the proxy", "contract §9", no_proxy_bypass),
        scenario!("net.proxy_down", "a dead proxy: exit 4 naming the proxy; the host stays connecting with the proxy named, backing off", "contract §9", proxy_down),
        scenario!("net.plaintext_refused", "http:// to a host that is not loopback: exit 2 naming the URL, nothing sent; TETHER_ALLOW_PLAINTEXT=1 lifts it", "contract §9", plaintext_refused),
        scenario!("net.doctor_route", "tether doctor names the proxy, the TLS version and the issuer for the API and the relay", "contract §9", doctor_route),
    ]
}

const WAIT: Duration = Duration::from_secs(15);
const PROXY_PASSWORD: &str = "pr0xy-s3cret-pass";

/// A world whose authorization server presents `api_tls` (the relay is good).
async fn world_with_api(api_tls: Tls) -> anyhow::Result<World> {
    let auth = AuthServer::start_tls(std::net::TcpListener::bind("127.0.0.1:0")?, api_tls).await?;
    let relay = Relay::start(&auth.uri()).await?;
    Ok(World { auth, relay })
}

/// `tether auth status` with an API key against a server presenting `tls`: exit 4 and
/// stderr naming the host and `problem`.
async fn refused_with(tls: Tls, problem: &str) -> anyhow::Result<String> {
    let world = world_with_api(tls).await?;
    let mut machine = world.machine()?;
    machine.api_key = Some(world.auth.state().issue_api_key("user_alice", "org_a"));
    let out = machine.tether(&["auth", "status"]).await?;
    ensure_failed(&out, 4, &["127.0.0.1", problem, "SSL_CERT_FILE"])
}

async fn untrusted_ca() -> anyhow::Result<()> {
    let err = refused_with(Tls::Untrusted, "unknown issuer").await?;
    ensure!(
        err.contains("untrusted rogue CA"),
        "the issuer is not named: {err}"
    );
    Ok(())
}

async fn wrong_host_name() -> anyhow::Result<()> {
    refused_with(Tls::WrongName, "name mismatch")
        .await
        .map(drop)
}

async fn expired_certificate() -> anyhow::Result<()> {
    refused_with(Tls::Expired, "expired").await.map(drop)
}

async fn relay_tls_error() -> anyhow::Result<()> {
    let auth = AuthServer::start().await?;
    let relay = Relay::start_tls(
        std::net::TcpListener::bind("127.0.0.1:0")?,
        &auth.uri(),
        Tls::Untrusted,
    )
    .await?;
    let world = World { auth, relay };
    let mut machine = world.machine()?;
    machine.api_key = Some(world.auth.state().issue_api_key("user_alice", "org_a"));
    machine.start_host("org_a").await?;
    let status = machine.wait_relay_state("org_a", "tls_error", WAIT).await?;
    let detail = status["relayDetail"].as_str().unwrap_or_default();
    ensure!(
        detail.contains("unknown issuer") && detail.contains("SSL_CERT_FILE"),
        "the reason is not named: {status}"
    );
    // Backoff starts at about 1 s and doubles: in 3 s at most 4 handshakes, not hundreds.
    let before = world.relay.tls_failures();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = world.relay.tls_failures() - before;
    ensure!(
        during <= 4,
        "{during} handshakes in 3 s: the host is not backing off"
    );
    ensure!(
        world.relay.accepted().is_empty(),
        "a connection got through"
    );
    Ok(())
}

/// A world at `api.tether.test` / `relay.tether.test` (names only the proxy resolves),
/// and a machine pointed at it through `proxy`.
async fn named_world(proxy: &ForwardProxy) -> anyhow::Result<(World, Machine)> {
    let auth = AuthServer::start().await?;
    let port = url::Url::parse(&auth.uri())?.port().context("API port")?;
    let api = format!("https://api.tether.test:{port}");
    auth.state().issuer = api.clone();
    let relay = Relay::start(&api).await?;
    let relay_url = format!("wss://relay.tether.test:{}", relay.addr.port());
    let mut machine = Machine::new(&api, &relay_url)?;
    machine.extra_env = vec![("HTTPS_PROXY".into(), proxy.url())];
    machine.api_key = Some(auth.state().issue_api_key("user_alice", "org_a"));
    Ok((World { auth, relay }, machine))
}

async fn proxy_basic_auth() -> anyhow::Result<()> {
    let proxy = ForwardProxy::start(Some(("alice", PROXY_PASSWORD)))?;
    let (world, machine) = named_world(&proxy).await?;
    let out = machine.tether(&["auth", "status", "--json"]).await?;
    let (stdout, stderr) = text(&out);
    ensure!(
        out.status.success(),
        "auth status through the proxy failed: {stderr}"
    );
    machine.start_host("org_a").await?;
    world.relay.wait_host("org_a", WAIT).await?;
    let tunnels = proxy.tunnels();
    let api_port = url::Url::parse(&machine.api)?.port().unwrap_or(443);
    ensure!(
        tunnels.contains(&format!("api.tether.test:{api_port}")),
        "no tunnel to the API: {tunnels:?}"
    );
    ensure!(
        tunnels.contains(&format!("relay.tether.test:{}", world.relay.addr.port())),
        "no tunnel to the relay: {tunnels:?}"
    );
    ensure!(
        proxy.seen().iter().all(|s| s.authorized),
        "a request reached the proxy without its credentials: {:?}",
        proxy.seen()
    );
    let logs = host_logs(&machine);
    for shown in [&stdout, &stderr, &logs] {
        ensure!(
            !shown.contains(PROXY_PASSWORD),
            "the proxy password leaked: {shown}"
        );
    }
    Ok(())
}

fn host_logs(machine: &Machine) -> String {
    let logs: Vec<String> = machine
        .host_logs()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    logs.join("\n")
}

async fn no_proxy_bypass() -> anyhow::Result<()> {
    let proxy = ForwardProxy::start(None)?;
    let (_world, mut machine) = named_world(&proxy).await?;
    machine.extra_env = vec![
        ("https_proxy".into(), proxy.url()),
        ("no_proxy".into(), "tether.test.".into()),
    ];
    // Direct, the name does not resolve: exit 4, and the proxy saw nothing.
    let out = machine.tether(&["auth", "status"]).await?;
    ensure_failed(&out, 4, &["api.tether.test"])?;
    ensure!(
        proxy.seen().is_empty(),
        "NO_PROXY ignored: {:?}",
        proxy.seen()
    );
    // The control: the same call without NO_PROXY goes through the proxy.
    machine.extra_env.truncate(1);
    let out = machine.tether(&["auth", "status"]).await?;
    ensure!(
        out.status.success(),
        "auth status through the proxy failed: {}",
        text(&out).1
    );
    ensure!(
        !proxy.tunnels().is_empty(),
        "the proxy was not used without NO_PROXY"
    );
    Ok(())
}

async fn proxy_down() -> anyhow::Result<()> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dead_addr = dead.local_addr()?;
    drop(dead);
    let dead_proxy = format!("http://{dead_addr}");
    let world = World::start().await?;
    // At a name (loopback never goes through a proxy), only the dead proxy is a way there.
    let port = url::Url::parse(&world.auth.uri())?
        .port()
        .context("API port")?;
    let mut machine = Machine::new(
        &format!("https://api.tether.test:{port}"),
        &world.relay.url(),
    )?;
    machine.api_key = Some(world.auth.state().issue_api_key("user_alice", "org_a"));
    machine.extra_env = vec![("HTTPS_PROXY".into(), dead_proxy.clone())];
    let out = machine.tether(&["auth", "status"]).await?;
    ensure_failed(&out, 4, &[&dead_addr.to_string()])?;

    // The API direct, the relay only through the dead proxy: the host keeps connecting.
    let relay_url = format!("wss://relay.tether.test:{}", world.relay.addr.port());
    let mut host_machine = Machine::new(&world.auth.uri(), &relay_url)?;
    host_machine.api_key = machine.api_key.clone();
    host_machine.extra_env = vec![
        ("HTTPS_PROXY".into(), dead_proxy),
        ("NO_PROXY".into(), "127.0.0.1".into()),
    ];
    host_machine.start_host("org_a").await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let status: Value = loop {
        let status = host_machine.host_status("org_a").await?;
        let detail = status["relayDetail"].as_str().unwrap_or_default();
        if detail.contains(&dead_addr.to_string()) {
            break status;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the proxy never appears in host status: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    ensure!(
        status["relay"] == "connecting",
        "relay state {}",
        status["relay"]
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let retries = host_logs(&host_machine)
        .matches("cannot reach the relay")
        .count();
    ensure!(
        (1..=5).contains(&retries),
        "{retries} attempts in about 3 s: not backing off"
    );
    Ok(())
}

async fn plaintext_refused() -> anyhow::Result<()> {
    let proxy = ForwardProxy::start(None)?;
    let api = "http://api.tether.test:80";
    let mut machine = Machine::new(api, "ws://relay.tether.test:80")?;
    machine.api_key = Some("sk_live_plaintext_probe".into());
    machine.extra_env = vec![("HTTP_PROXY".into(), proxy.url())];
    for args in [
        &["auth", "status"][..],
        &["host", "start", "--daemon", "--org", "org_a"][..],
    ] {
        let out = machine.tether(args).await?;
        ensure_failed(&out, 2, &[api, ALLOW_PLAINTEXT_ENV]).with_context(|| format!("{args:?}"))?;
    }
    ensure!(
        proxy.seen().is_empty(),
        "something was sent: {:?}",
        proxy.seen()
    );
    machine
        .extra_env
        .push((ALLOW_PLAINTEXT_ENV.into(), "1".into()));
    let out = machine.tether(&["auth", "status"]).await?;
    ensure!(
        out.status.code() != Some(2),
        "TETHER_ALLOW_PLAINTEXT=1 did not lift the rule: {}",
        text(&out).1
    );
    ensure!(
        !proxy.seen().is_empty(),
        "with the override, the request should have been tried"
    );
    Ok(())
}

async fn doctor_route() -> anyhow::Result<()> {
    let proxy = ForwardProxy::start(Some(("alice", PROXY_PASSWORD)))?;
    let (_world, machine) = named_world(&proxy).await?;
    let out = machine.tether(&["doctor", "--json"]).await?;
    let doc: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("doctor --json: {}", text(&out).1))?;
    let checks = doc["checks"].as_array().context("checks")?;
    let detail = |name: &str| {
        checks.iter().find(|c| c["name"] == name).map(|c| {
            (
                c["ok"] == true,
                c["detail"].as_str().unwrap_or("").to_string(),
            )
        })
    };
    let proxy_shown = format!("proxy http://{}", proxy.addr);
    for name in ["network: API", "network: relay"] {
        let (ok, detail) = detail(name).with_context(|| format!("no {name} check: {doc}"))?;
        ensure!(ok, "{name} failed: {detail}");
        for needed in [proxy_shown.as_str(), "TLSv1_3", "tether harness CA"] {
            ensure!(
                detail.contains(needed),
                "{name} does not show {needed:?}: {detail}"
            );
        }
        ensure!(
            !detail.contains(PROXY_PASSWORD),
            "{name} shows the password"
        );
    }
    Ok(())
}
