//! hostile: a relay (or a remote user behind it) that sends what it should not. Each
//! scenario checks that the other terminals still answer and that the host and its pty
//! daemon are alive, not restarted.

use std::time::Duration;

use anyhow::{ensure, Context};
use tether_contract::environment::API_KEY_ENV;
use tether_contract::relay_protocol::OpenRefused;

use super::env::{Machine, World};
use super::scenario;
use super::Scenario;
use crate::relay::terminal::Terminal;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("hostile.credential_free_shell", "a terminal's environment holds no credential of the host (no TETHER_API_KEY, no key value)", "contract §5", credential_free_shell),
        scenario!("hostile.bad_session_ids", "NUL, control, 300-byte and empty ids get invalid_session_id, a duplicate gets session_exists, and the open terminal still answers", "contract §5, §6", bad_session_ids),
        scenario!("hostile.too_many_sessions", "the 65th terminal gets too_many_sessions (64 by default); the open ones still answer, and a closed one frees its place", "contract §5", too_many_sessions),
        scenario!("hostile.stuck_terminal", "2 MiB typed into a program that never reads blocks only that terminal", "contract §6 isolation", stuck_terminal),
        scenario!("hostile.oversized_input", "9 MiB of input in one relay frame is split for ptyd; ptyd is not restarted and the other terminal answers", "contract §5", oversized_input),
        scenario!("hostile.route_spellings", "relayed requests for anything but exactly GET /health get 403, however the path is spelled", "contract §4 route policy", route_spellings),
        scenario!("hostile.relay_stops_reading", "a relay that stops reading mid-flood (cat /dev/zero) leaves tether-host and tether-ptyd under 64 MiB each; reading again, the other terminal answers", "contract §5 bounded memory", relay_stops_reading),
        scenario!("lifecycle.background_job", "a shell that exits while a background job holds the pty reports its exit at once", "contract §6 lifecycle", background_job),
        scenario!("lifecycle.killed_by_signal", "a shell killed by a signal reports code -1", "contract §6 lifecycle", killed_by_signal),
    ]
}

const WAIT: Duration = Duration::from_secs(15);
const KEY_PREFIX: &str = "sk_live_";

/// The host is connected, its pty daemon never restarted, and `terminal` still echoes.
async fn still_healthy(
    machine: &Machine,
    terminal: &mut Terminal,
    mark: &str,
) -> anyhow::Result<()> {
    terminal.send(format!("echo {mark}-$((40+2))\n").as_bytes())?;
    terminal.read_until(&format!("{mark}-42"), WAIT).await?;
    let status = machine.host_status("org_a").await?;
    ensure!(
        status["relay"] == "connected",
        "host not connected: {status}"
    );
    ensure!(
        status["ptydRestarts"] == 0 && status["ptyd"] == "running",
        "the pty daemon was restarted or is down: {status}"
    );
    ensure!(
        status["reconnects"] == 0,
        "the relay connection was lost: {status}"
    );
    Ok(())
}

async fn credential_free_shell() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (_machine, host) = world
        .connected_host(&[("TETHER_E2E_SESSION_TOKEN", "tok_must_not_leak")])
        .await?;
    let mut terminal = world.relay.open_terminal("org_a", &host, None).await?;
    terminal.send(b"env; echo env-$((1+1))-done\n")?;
    let seen = terminal.read_until("env-2-done", WAIT).await?;
    ensure!(seen.contains("TETHER_HOME="), "env did not run: {seen}");
    for secret in [KEY_PREFIX, API_KEY_ENV, "tok_must_not_leak"] {
        ensure!(
            !seen.contains(secret),
            "{secret} reached a remote shell:\n{seen}"
        );
    }
    Ok(())
}

async fn bad_session_ids() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let live = world.relay.open_terminal("org_a", &host, None).await?;
    let long = "x".repeat(300);
    let bad = ["a\0b", "\u{1b}[2J", long.as_str(), ""];
    for id in bad {
        world.relay.request_terminal("org_a", &host, id, None)?;
    }
    let errors = world
        .relay
        .wait_unscoped_errors("org_a", &host, bad.len(), WAIT)
        .await?;
    ensure!(
        errors
            .iter()
            .all(|e| e == OpenRefused::InvalidSessionId.as_str()),
        "expected invalid_session_id for each bad id: {errors:?}"
    );
    // The same id again: refused, and the terminal behind it is untouched.
    let mut again = world
        .relay
        .request_terminal("org_a", &host, &live.session_id, None)?;
    let code = again.error(WAIT).await?;
    ensure!(
        code == OpenRefused::SessionExists.as_str(),
        "a duplicate id got {code:?}"
    );
    still_healthy(&machine, &mut again, "ids").await
}

async fn too_many_sessions() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let mut first = world.relay.open_terminal("org_a", &host, None).await?;
    for _ in 1..64 {
        world
            .relay
            .open_terminal("org_a", &host, Some("sleep 600"))
            .await?;
    }
    let mut over = world
        .relay
        .request_terminal("org_a", &host, "one-too-many", None)?;
    let code = over.error(WAIT).await?;
    ensure!(
        code == OpenRefused::TooManySessions.as_str(),
        "the 65th terminal got {code:?}"
    );
    still_healthy(&machine, &mut first, "limit").await?;
    // A closed terminal frees its place.
    first.close()?;
    first.exit_code(WAIT).await?;
    let mut next = world.relay.open_terminal("org_a", &host, None).await?;
    next.send(b"echo freed-$((2*2))\n")?;
    next.read_until("freed-4", WAIT).await?;
    Ok(())
}

async fn stuck_terminal() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let stuck = world
        .relay
        .open_terminal("org_a", &host, Some("sleep 600"))
        .await?;
    let mut live = world.relay.open_terminal("org_a", &host, None).await?;
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..32 {
        stuck.send(&chunk)?;
    }
    still_healthy(&machine, &mut live, "unstuck").await
}

async fn oversized_input() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let sink = world
        .relay
        .open_terminal("org_a", &host, Some("cat > /dev/null"))
        .await?;
    let mut live = world.relay.open_terminal("org_a", &host, None).await?;
    sink.send(&vec![b'z'; 9 * 1024 * 1024])?;
    still_healthy(&machine, &mut live, "big").await
}

async fn route_spellings() -> anyhow::Result<()> {
    let world = World::start().await?;
    let (_machine, host) = world.connected_host(&[]).await?;
    for path in [
        "/health&/../internal/status",
        "/x&/../internal/shutdown",
        "/%69nternal/status",
        "/health/../internal/status",
        "/nothing",
    ] {
        let answer = world
            .relay
            .http_request(
                "org_a",
                &host,
                "GET",
                path,
                &[("x-forwarded-for", "127.0.0.1")],
            )
            .await?;
        ensure!(answer["status"] == 403, "GET {path} answered {answer}");
    }
    let health = world
        .relay
        .http_request("org_a", &host, "GET", "/health", &[])
        .await?;
    ensure!(health["status"] == 200, "GET /health answered {health}");
    let body: serde_json::Value = serde_json::from_str(health["body"].as_str().context("body")?)?;
    ensure!(body["status"] == "ok", "{body}");
    Ok(())
}

/// The `session.exit` code of a terminal running `command` on a freshly connected host.
async fn exit_code_of(command: &str) -> anyhow::Result<Option<i32>> {
    let world = World::start().await?;
    let (_machine, host) = world.connected_host(&[]).await?;
    let mut terminal = world
        .relay
        .open_terminal("org_a", &host, Some(command))
        .await?;
    terminal.exit_code(WAIT).await
}

async fn background_job() -> anyhow::Result<()> {
    // WAIT is far less than the 60 s the background job keeps the pty open.
    let code = exit_code_of("trap '' HUP; sleep 60 & exit 0").await?;
    ensure!(code == Some(0), "exit code {code:?}");
    Ok(())
}

async fn killed_by_signal() -> anyhow::Result<()> {
    let code = exit_code_of("kill -KILL $$").await?;
    ensure!(
        code == Some(-1),
        "a shell killed by SIGKILL reported {code:?}"
    );
    Ok(())
}

async fn relay_stops_reading() -> anyhow::Result<()> {
    const LIMIT_KIB: u64 = 64 * 1024;
    let world = World::start().await?;
    let (machine, host) = world.connected_host(&[]).await?;
    let mut live = world.relay.open_terminal("org_a", &host, None).await?;
    let flood = world
        .relay
        .open_terminal("org_a", &host, Some("cat /dev/zero"))
        .await?;
    world.relay.set_reading(false);
    // The stall itself is the fault: three seconds of it is ~300 MiB of output unbounded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut measured = Vec::new();
    for binary in ["tether-host", "tether-ptyd"] {
        let pids = machine.pids_of(binary);
        ensure!(!pids.is_empty(), "no {binary} running");
        for pid in pids {
            let rss = super::processes::status_kib(pid, "VmRSS").context("no VmRSS")?;
            measured.push(format!("{binary} {pid}: {} MiB", rss / 1024));
            ensure!(
                rss < LIMIT_KIB,
                "{binary} grew to {} MiB while the relay was not reading",
                rss / 1024
            );
        }
    }
    super::diagnostics::record(format!("RSS during the stall: {}", measured.join(", ")));
    world.relay.set_reading(true);
    flood.close()?;
    live.send(b"echo after-stall-$((5+5))\n")?;
    live.read_until("after-stall-10", Duration::from_secs(30))
        .await?;
    Ok(())
}
