//! Keeps one `tether-ptyd` running beside this service: found next to our own executable
//! and nowhere else, adopted if already running (shells outlive the host service),
//! restarted with backoff when it crashes, given up after more than 3 crashes in 60 s.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hub::Hub;
use super::state::PtydState;
use crate::backoff::{Backoff, Jitter};
use crate::bundle::ptyd_path_beside;
use crate::ptyd::client::PtydClient;
use crate::sliding_window::SlidingWindow;

/// Why the pty daemon cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// Not beside the host service.
    #[error("pty daemon not found at {0}: the bundle is incomplete (tether-host and tether-ptyd must be in the same directory)")]
    Missing(PathBuf),
    /// The path of this executable is unknown.
    #[error("cannot find this executable's path: {0}")]
    NoExe(std::io::Error),
}

/// Resolves the pty daemon next to this executable; errors name the exact path looked at.
pub fn resolve_ptyd() -> Result<PathBuf, SupervisorError> {
    let exe = std::env::current_exe().map_err(SupervisorError::NoExe)?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let path = ptyd_path_beside(&exe);
    if path.is_file() {
        Ok(path)
    } else {
        Err(SupervisorError::Missing(path))
    }
}

/// Crashes tolerated in the window before giving up.
const MAX_CRASHES: usize = 3;
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// Restart delays: 200 ms, 400 ms, 800 ms.
const RESTART_BACKOFF: Backoff = Backoff::new(
    Duration::from_millis(200),
    Duration::from_secs(5),
    Jitter::None,
);

/// Runs forever (or until the daemon crash-loops): connect or start, pump events, repeat.
pub async fn supervise(hub: Arc<Hub>, ptyd: PathBuf, socket: PathBuf) {
    let mut crashes = SlidingWindow::new(CRASH_WINDOW);
    let mut first = true;
    // Daemons (pid, version) already asked to upgrade: a refusal is not asked again.
    let mut asked = std::collections::HashSet::new();
    loop {
        hub.state.set_ptyd(PtydState::Restarting);
        let connected = match PtydClient::connect(&socket).await {
            Ok(conn) => {
                if first {
                    tracing::info!(pid = conn.0.daemon_pid, "adopted the running tether-ptyd");
                }
                reap_when_it_exits(conn.0.daemon_pid);
                Ok(conn)
            }
            Err(_) => start(&ptyd, &socket).await,
        };
        first = false;
        match connected {
            Ok((client, mut events)) => {
                let (pid, version) = (client.daemon_pid, client.daemon_version.clone());
                tracing::info!(pid, %version, "tether-ptyd connected");
                hub.ptyd.set(Some(client));
                hub.state.set_ptyd(PtydState::Running);
                // Input kept back during an upgrade goes to the new image, before any newer.
                hub.release_held_input();
                resubscribe(hub.clone());
                // An older daemon (this host was updated): upgrade it in place, once.
                if version != crate::version::VERSION && asked.insert((pid, version.clone())) {
                    hub.upgrade_ptyd(&ptyd);
                }
                while let Some((event, payload)) = events.recv().await {
                    hub.route_ptyd_event(event, payload).await;
                }
                hub.ptyd.set(None);
                if hub.upgrade_ended() && crate::process::running(pid) {
                    // Same pid, new image: reconnect at once, not a crash.
                    tracing::info!(pid, "tether-ptyd upgraded in place: reconnecting");
                    crate::metrics::global().ptyd_upgraded();
                    continue;
                }
                tracing::warn!("lost tether-ptyd");
            }
            Err(e) => tracing::error!("cannot start tether-ptyd: {e:#}"),
        }
        let crashes_in_window = crashes.record(Instant::now());
        if crashes_in_window > MAX_CRASHES {
            hub.state.set_ptyd(PtydState::Failed);
            tracing::error!("tether-ptyd crashed more than {MAX_CRASHES} times in 60 s: not restarting it again");
            return;
        }
        hub.state.count_ptyd_restart();
        let delay = RESTART_BACKOFF.delay(crashes_in_window as u32 - 1);
        tracing::info!("restarting tether-ptyd in {} ms", delay.as_millis());
        tokio::time::sleep(delay).await;
    }
}

/// An adopted daemon is our child when this process re-executed itself (a self-update):
/// wait for it on a thread of its own so it never lingers as a zombie. For any other
/// process `waitpid` fails at once (not our child).
fn reap_when_it_exits(pid: u32) {
    static WAITING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    // One waiting thread per daemon, however often it is re-adopted (an upgrade keeps its pid).
    {
        let mut waiting = crate::sync::lock(&WAITING);
        if waiting.contains(&pid) {
            return;
        }
        waiting.push(pid);
    }
    std::thread::spawn(move || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(raw), None);
    });
}

/// After (re)connecting, follow every live terminal again.
fn resubscribe(hub: Arc<Hub>) {
    tokio::spawn(async move { hub.resubscribe_all().await });
}

/// Starts the daemon in its own process group (so shells outlive us) and connects to it.
async fn start(
    ptyd: &Path,
    socket: &Path,
) -> anyhow::Result<(
    PtydClient,
    tokio::sync::mpsc::Receiver<crate::ptyd::client::Incoming>,
)> {
    let mut command = tokio::process::Command::new(ptyd);
    for (name, value) in crate::child_env::changes() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", ptyd.display()))?;
    let pid = child.id();
    tokio::spawn(async move {
        if let Ok(status) = child.wait().await {
            tracing::warn!(?pid, %status, "tether-ptyd exited");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match PtydClient::connect(socket).await {
            Ok(conn) => return Ok(conn),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
