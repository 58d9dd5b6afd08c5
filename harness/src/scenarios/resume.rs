//! resume: a terminal's bytes cross relay crashes, clean closes, rotations and host
//! restarts exactly once and in order (contract section 4, "Resume without loss"). Each
//! scenario compares what the relay's reader got with the exact byte stream the program
//! wrote (numbered lines), or the numbered lines typed with what `cat` gave back.

use std::time::Duration;

use anyhow::{ensure, Context};
use tether_contract::environment::REPLAY_BYTES_ENV;

use super::env::{Machine, World};
use super::scenario;
use super::Scenario;
use crate::relay::terminal::Terminal;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!("resume.relay_crash", "the relay's connection ends without a close frame mid-output: after the reconnect every byte arrives exactly once, in order", "contract §4 resume, §6 offsets", relay_crash),
        scenario!("resume.clean_close", "the relay closes the connection cleanly mid-output: every byte exactly once, in order", "contract §4 resume", clean_close),
        scenario!("resume.rotation", "a tokenExpired rotation mid-output (two connections at once): every byte exactly once, in order", "contract §4 rotation, resume", rotation),
        scenario!("resume.host_restart", "tether-host killed with SIGKILL mid-output and started again: every byte exactly once (no scrollback replayed on top)", "contract §4 resume, §6", host_restart),
        scenario!("resume.ptyd_late", "tether-host restarted while its pty daemon is stopped for 6 s (hello names no terminal; resume lists it): every byte exactly once", "contract §4 resume, §6", ptyd_late),
        scenario!("resume.typed_input", "300 numbered lines typed into cat across a relay crash: each reaches the program exactly once, in order", "contract §4 input.ack", typed_input),
        scenario!("resume.ptyd_upgrade", "300 numbered lines typed into cat while tether-ptyd upgrades in place: each reaches the program exactly once, in order", "contract §6 upgrade in place, §4 input.ack", ptyd_upgrade),
        scenario!("resume.gap", "a relay down long enough that output leaves the replay buffer: a session.gap names exactly the missing bytes, and the rest follows", "contract §4, §6 replay buffer", gap),
        scenario!("resume.protocol_1", "a relay that never answers hello with resume gets live output after 5 s, and the host logs once that resume is off", "contract §4 protocol 1", protocol_1),
    ]
}

const WAIT: Duration = Duration::from_secs(20);
/// Lines the printer writes.
const LINES: u32 = 4000;
/// 200 lines, then 50 ms, as the issue measured it.
const PRINTER: &str =
    "i=1; while [ $i -le 4000 ]; do echo L$i; [ $((i % 200)) = 0 ] && sleep 0.05; i=$((i+1)); done; echo DONE";

/// Exactly what the printer's terminal shows: each line with the pty's `\r\n`.
fn expected_output() -> String {
    let mut out: String = (1..=LINES).map(|i| format!("L{i}\r\n")).collect();
    out.push_str("DONE\r\n");
    out
}

/// A world with a connected host (`extra_env` for the host), and its id.
async fn connected(extra_env: &[(&str, &str)]) -> anyhow::Result<(World, Machine, String)> {
    let world = World::start().await?;
    let (machine, host) = world.connected_host(extra_env).await?;
    Ok((world, machine, host))
}

/// Reads until `needle`, keeping everything read in `all`.
async fn read_into(terminal: &mut Terminal, all: &mut String, needle: &str) -> anyhow::Result<()> {
    let text = terminal.read_until(needle, WAIT).await?;
    all.push_str(&text);
    Ok(())
}

/// The printer's output, read with `disrupt` run once `L1000` has arrived; checked whole.
async fn printer_across(
    world: &World,
    host: &str,
    disrupt: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut terminal = world
        .relay
        .open_terminal("org_a", host, Some(PRINTER))
        .await?;
    let mut all = String::new();
    read_into(&mut terminal, &mut all, "L1000\r\n").await?;
    disrupt.await?;
    read_into(&mut terminal, &mut all, "DONE\r\n").await?;
    // Anything after DONE would be a repeat.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = terminal
        .read_until("\u{0}never", Duration::from_millis(10))
        .await;
    all.push_str(&String::from_utf8_lossy(&terminal.buffer));
    same_stream(&all, &expected_output())
}

/// Fails with the first place where `got` leaves `want` (lost or repeated bytes).
fn same_stream(got: &str, want: &str) -> anyhow::Result<()> {
    if got == want {
        return Ok(());
    }
    let at = got
        .bytes()
        .zip(want.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |s: &str| {
        s.get(at.saturating_sub(20)..(at + 40).min(s.len()))
            .unwrap_or("")
            .to_string()
    };
    anyhow::bail!(
        "the stream differs at byte {at} ({} bytes received, {} written): got {:?}, want {:?}",
        got.len(),
        want.len(),
        around(got),
        around(want)
    )
}

async fn relay_crash() -> anyhow::Result<()> {
    let (world, _machine, host) = connected(&[]).await?;
    let drop = async { world.relay.drop_connection("org_a", &host, false) };
    printer_across(&world, &host, drop).await
}

async fn clean_close() -> anyhow::Result<()> {
    let (world, _machine, host) = connected(&[]).await?;
    let drop = async { world.relay.drop_connection("org_a", &host, true) };
    printer_across(&world, &host, drop).await
}

async fn rotation() -> anyhow::Result<()> {
    let (world, _machine, host) = connected(&[]).await?;
    let before = world
        .relay
        .current_connection("org_a", &host)
        .context("not connected")?;
    let rotate = async {
        world.relay.expire_now("org_a", &host)?;
        world
            .relay
            .wait_reconnect("org_a", &host, before, WAIT)
            .await
            .map(drop)
    };
    printer_across(&world, &host, rotate).await
}

async fn host_restart() -> anyhow::Result<()> {
    let (world, machine, host) = connected(&[]).await?;
    let restart = async {
        let pid = machine.host_status("org_a").await?["pid"]
            .as_u64()
            .context("host pid")?;
        crate::scenarios::processes::kill(pid as u32, "KILL")?;
        machine.start_host("org_a").await
    };
    printer_across(&world, &host, restart).await
}

async fn ptyd_late() -> anyhow::Result<()> {
    let (world, machine, host) = connected(&[]).await?;
    let restart = async {
        let status = machine.host_status("org_a").await?;
        let pid = status["pid"].as_u64().context("host pid")? as u32;
        let ptyd = status["ptydPid"].as_u64().context("ptyd pid")? as u32;
        // The new host waits 5 s for ptyd before its hello: this one answers after 6.
        // (Stopped after the host is gone: stopped in the group the host's death orphans,
        // the kernel would send it SIGHUP.)
        crate::scenarios::processes::kill(pid, "KILL")?;
        crate::scenarios::processes::kill(ptyd, "STOP")?;
        let started = async {
            machine.start_host("org_a").await?;
            tokio::time::sleep(Duration::from_secs(6)).await;
            anyhow::Ok(())
        }
        .await;
        crate::scenarios::processes::kill(ptyd, "CONT")?;
        started
    };
    printer_across(&world, &host, restart).await
}

async fn typed_input() -> anyhow::Result<()> {
    let (world, _machine, host) = connected(&[]).await?;
    let drop = || world.relay.drop_connection("org_a", &host, false);
    typed_across(&world, &host, drop).await
}

async fn ptyd_upgrade() -> anyhow::Result<()> {
    let world = World::start().await?;
    let mut machine = world.machine()?;
    machine.own_binaries()?;
    let host = world.connect(&mut machine, &[]).await?;
    let machine = std::sync::Arc::new(machine);
    let mut upgrading = None;
    let upgrade = || {
        let machine = machine.clone();
        upgrading = Some(tokio::spawn(async move {
            machine.upgrade_ptyd_in_place().await
        }));
        Ok(())
    };
    typed_across(&world, &host, upgrade).await?;
    upgrading.context("the upgrade never started")?.await??;
    Ok(())
}

/// 300 numbered lines typed into `cat` (10 a millisecond apart, then 30 ms), `disrupt` run
/// before line 101; each must come back exactly once, in order.
async fn typed_across(
    world: &World,
    host: &str,
    disrupt: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut terminal = world
        .relay
        .open_terminal("org_a", host, Some("stty -echo; echo ready; cat"))
        .await?;
    terminal.read_until("ready\r\n", WAIT).await?;
    let mut want = String::new();
    let mut disrupt = Some(disrupt);
    for i in 1..=300 {
        if i == 101 {
            if let Some(disrupt) = disrupt.take() {
                disrupt()?;
            }
        }
        terminal.send(format!("I{i}\n").as_bytes())?;
        want.push_str(&format!("I{i}\r\n"));
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let got = terminal.read_until("I300\r\n", WAIT).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = terminal
        .read_until("\u{0}never", Duration::from_millis(10))
        .await;
    let got = format!("{got}{}", String::from_utf8_lossy(&terminal.buffer));
    same_stream(&got, &want)
}

async fn gap() -> anyhow::Result<()> {
    // A small replay buffer, so a few seconds offline outrun it.
    let (world, _machine, host) = connected(&[(REPLAY_BYTES_ENV, "8192")]).await?;
    let mut terminal = world
        .relay
        .open_terminal("org_a", &host, Some(PRINTER))
        .await?;
    let mut all = String::new();
    read_into(&mut terminal, &mut all, "L1000\r\n").await?;
    world.relay.set_refusing(true);
    world.relay.drop_connection("org_a", &host, false)?;
    // The printer finishes (about 1 s) while the relay is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.relay.set_refusing(false);
    read_into(&mut terminal, &mut all, "DONE\r\n").await?;
    let [(from, to, at)] = terminal.gaps[..] else {
        anyhow::bail!("expected one session.gap, got {:?}", terminal.gaps);
    };
    let want = expected_output();
    let (from, to, at) = (from as usize, to as usize, at as usize);
    ensure!(
        at == from,
        "the gap came after {at} bytes but starts at {from}"
    );
    ensure!(
        from < to && to <= want.len(),
        "gap {from}..{to} of {}",
        want.len()
    );
    same_stream(&all[..from.min(all.len())], &want[..from])?;
    same_stream(&all[from.min(all.len())..], &want[to..])
        .context("after the gap the stream must go on exactly at its end")
}

async fn protocol_1() -> anyhow::Result<()> {
    let world = World::start().await?;
    world.relay.set_protocol_1(true);
    let key = world.auth.state().issue_api_key("user_alice", "org_a");
    let mut machine = world.machine()?;
    machine.api_key = Some(key);
    machine.start_host("org_a").await?;
    let (host, _) = world.relay.wait_host("org_a", WAIT).await?;
    let mut terminal = world.relay.open_terminal("org_a", &host, None).await?;
    terminal.send(b"echo live-$((40+2))\n")?;
    terminal.read_until("live-42", WAIT).await?;
    let logs: String = machine.host_logs().into_iter().map(|(_, t)| t).collect();
    ensure!(
        logs.matches("resume is off").count() == 1,
        "the host did not say once that resume is off: {logs}"
    );
    Ok(())
}
