//! A host service's life seen from outside it: starting one and waiting until it is
//! healthy, stopping one, and restarting one in place on new binaries (`tether host`
//! and `tether self-update` share it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tether_contract::environment::API_KEY_ENV;

use crate::host::control;
use crate::host::control::api::ShutdownRequest;
use crate::host::instance::{self, InstanceInfo, InstancePaths};
use crate::host::state::{Health, PtydState};
use crate::settings::Settings;
use crate::OrgId;

/// How long a started host has to answer `/health`.
pub const HEALTH_WAIT: Duration = Duration::from_secs(10);

/// How long a stopping host has to let go of its instance lock.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// `tether-host` at `host` for `org`, with the settings passed on in its environment (and
/// no inherited API key when the settings hold none).
pub fn host_command(settings: &Settings, host: &Path, org: &OrgId, port: u16) -> Command {
    let mut command = Command::new(host);
    command.args(["--org", org.as_str(), "--port", &port.to_string()]);
    command.env_remove(API_KEY_ENV);
    command.envs(settings.to_env());
    command
}

/// Waits until the started `tether-host` answers `/health` with its pty daemon settled;
/// the error says why it did not.
pub async fn wait_until_healthy(
    mut child: std::process::Child,
    paths: &InstancePaths,
) -> Result<(InstanceInfo, String, Health), String> {
    const PTYD_WAIT: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let http = crate::net::local_http_client(Duration::from_secs(1));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "tether-host exited ({status}) before it was healthy"
            ));
        }
        if let Some(info) = instance::read_info(paths).filter(|i| i.pid == child.id()) {
            let url = format!("http://127.0.0.1:{}/health", info.port);
            if let Ok(response) = http.get(&url).send().await {
                // Healthy means the pty daemon is up too (or given up on): "running" with
                // ptyd still starting would send the user's first terminal into a restart.
                let settled =
                    |h: &Health| h.ptyd != PtydState::Restarting || started.elapsed() > PTYD_WAIT;
                if let Some(health) = response.json::<Health>().await.ok().filter(settled) {
                    return Ok((info, url, health));
                }
            }
        }
        if started.elapsed() > HEALTH_WAIT {
            return Err(format!(
                "tether-host was not healthy within {} s",
                HEALTH_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Stops the running host of `paths` and its pty daemon, and waits until neither process
/// is left (one that outstays its time is killed, never a process that got its pid since).
pub async fn stop(paths: &InstancePaths, org: &OrgId) -> anyhow::Result<()> {
    let status = control::client::status(&paths.control_socket).await.ok();
    let asked = control::client::shutdown(
        &paths.control_socket,
        &ShutdownRequest {
            stop_ptyd: true,
            restart: false,
        },
    )
    .await;
    if asked.is_err() {
        if let Some(pid) = instance::running_pid(paths) {
            let _ = crate::process::signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    while instance::is_running(paths) {
        if Instant::now() > deadline {
            bail!(
                "tether-host for {org} did not stop within {} s",
                STOP_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The lock goes when the process closes its files; wait for the processes themselves too.
    if let Some(status) = status {
        wait_gone(status.pid, Duration::from_secs(5)).await;
        if let Some(pid) = status.ptyd_pid {
            wait_gone(pid, Duration::from_secs(5)).await;
        }
    }
    Ok(())
}

async fn wait_gone(pid: u32, limit: Duration) {
    let started = crate::process::start_time(pid);
    let deadline = Instant::now() + limit;
    while crate::process::running(pid) {
        if Instant::now() > deadline {
            // Only the process we waited for: never one that got its pid since.
            let _ = crate::process::signal_same(pid, started, nix::sys::signal::Signal::SIGKILL);
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asks the running host of `paths` to re-execute itself on the binaries now installed,
/// and waits until the new image answers. A host from before restart-in-place exits
/// instead: it is started again with `cli host start --daemon` and the environment it had.
pub async fn restart(paths: &InstancePaths, org: &OrgId, cli: &Path) -> anyhow::Result<()> {
    let before = control::client::status(&paths.control_socket)
        .await
        .context("its control socket does not answer")?;
    // Read now: once it has exited, its environment is gone.
    let environment = std::fs::read(format!("/proc/{}/environ", before.pid)).ok();
    let request = ShutdownRequest {
        stop_ptyd: false,
        restart: true,
    };
    // A service that acts on the request at once may re-execute before its answer is out:
    // a cut answer is judged by whether the service comes back, not taken as a refusal.
    let asked = control::client::shutdown(&paths.control_socket, &request)
        .await
        .context("cannot ask it to restart");
    let deadline = Instant::now() + HEALTH_WAIT;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(now) = control::client::status(&paths.control_socket).await {
            if now.started_at != before.started_at || now.pid != before.pid {
                return Ok(());
            }
        }
        if !crate::process::running(before.pid) {
            return start_again(cli, org, environment.as_deref());
        }
        if Instant::now() > deadline {
            asked?;
            bail!(
                "it did not come back within {} s (see `tether host logs --org {org}`)",
                HEALTH_WAIT.as_secs()
            );
        }
    }
}

/// `<cli> host start --daemon --org ORG`, with `environment` (NUL-separated) when known.
fn start_again(cli: &Path, org: &OrgId, environment: Option<&[u8]>) -> anyhow::Result<()> {
    let mut command = Command::new(cli);
    command.args(["host", "start", "--daemon", "--org", org.as_str()]);
    if let Some(environment) = environment {
        command.env_clear();
        for pair in environment.split(|b| *b == 0) {
            let pair = String::from_utf8_lossy(pair);
            if let Some((name, value)) = pair.split_once('=') {
                command.env(name, value);
            }
        }
    }
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", cli.display()))?;
    if !out.status.success() {
        bail!(
            "the new tether-host for {org} did not start:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}
