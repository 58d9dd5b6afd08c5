//! `tether host start | stop | status | logs`.

use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::auth::config_store::ConfigStore;
use crate::bundle::find_host;
use crate::host::control_api::ShutdownRequest;
use crate::host::control_client;
use crate::host::instance::{self, InstanceInfo, InstancePaths};
use crate::host::state::{Health, PtydState};
use crate::settings::Settings;
use crate::OrgId;

/// How long `host start --daemon` waits for `/health`.
pub const HEALTH_WAIT: Duration = Duration::from_secs(10);

/// The org to act for: the flag, else the stored one, else an API key's bound org; each
/// checked against contract section 1 where it enters.
pub async fn resolve_org(settings: &Settings, flag: Option<String>) -> anyhow::Result<OrgId> {
    if let Some(org) = flag {
        return Ok(OrgId::parse(&org)?);
    }
    if settings.api_key.is_none() {
        if let Some(org) = ConfigStore::new(&settings.home).load()?.organization_id {
            return Ok(org);
        }
    }
    let running: Vec<OrgId> = instance::known_orgs(&settings.home)
        .into_iter()
        .filter(|org| instance::is_running(&InstancePaths::new(&settings.home, org)))
        .collect();
    if let [only] = running.as_slice() {
        return Ok(only.clone());
    }
    let report = super::status_report::current_status(settings).await?;
    report
        .organization_id
        .context("no organization is known: pass --org ORG")
}

/// `tether host start`.
pub async fn start(
    settings: &Settings,
    daemon: bool,
    port: u16,
    org: Option<String>,
) -> anyhow::Result<()> {
    let org = resolve_org(settings, org).await?;
    let paths = InstancePaths::new(&settings.home, &org);
    if instance::is_running(&paths) {
        let pid = instance::running_pid(&paths)
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into());
        bail!("a host service for {org} is already running (pid {pid})");
    }
    let host = find_host()?;
    let mut command = host_command(settings, &host, &org, port);
    if !daemon {
        let err = command.exec();
        bail!("cannot run {}: {err}", host.display());
    }

    ConfigStore::new(&settings.home).ensure_home()?;
    if let Some(dir) = paths.log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .with_context(|| format!("cannot open {}", paths.log.display()))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot run {}", host.display()))?;

    let failure = match wait_until_healthy(child, &paths).await {
        Ok((info, url, health)) => {
            println!(
                "tether-host is running for {org} (pid {}, {url}, relay {:?}, ptyd {:?})",
                info.pid, health.relay, health.ptyd
            );
            println!("log: {}", paths.log.display());
            return Ok(());
        }
        Err(failure) => failure,
    };
    eprintln!("{failure}. Last lines of {}:", paths.log.display());
    for line in tail_lines(&paths.log, log_start, 20) {
        eprintln!("  {line}");
    }
    bail!("host start failed for {org}")
}

/// `tether-host` for `org`, with the settings passed on in its environment.
fn host_command(settings: &Settings, host: &Path, org: &str, port: u16) -> Command {
    let mut command = Command::new(host);
    command
        .args(["--org", org, "--port", &port.to_string()])
        .env("TETHER_HOME", &settings.home)
        .env("TETHER_API_URL", &settings.api_url)
        .env("TETHER_RELAY_URL", &settings.relay_url);
    match &settings.api_key {
        Some(key) => command.env("TETHER_API_KEY", key.expose()),
        None => command.env_remove("TETHER_API_KEY"),
    };
    command
}

/// Waits until the started `tether-host` answers `/health` with its pty daemon settled;
/// the error says why it did not.
async fn wait_until_healthy(
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

/// The last `n` lines written to `path` after byte `from`.
fn tail_lines(path: &Path, from: u64, n: usize) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return vec![];
    };
    let _ = file.seek(SeekFrom::Start(from));
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// `tether host stop`: shuts the service and its pty daemon down; leaves no process behind.
pub async fn stop(settings: &Settings, org: Option<String>) -> anyhow::Result<()> {
    let org = resolve_org(settings, org).await?;
    let paths = InstancePaths::new(&settings.home, &org);
    if !instance::is_running(&paths) {
        println!("tether-host is not running for {org}");
        return Ok(());
    }
    let status = control_client::status(&paths.control_socket).await.ok();
    let asked = control_client::shutdown(
        &paths.control_socket,
        &ShutdownRequest {
            stop_ptyd: true,
            restart: false,
        },
    )
    .await;
    if asked.is_err() {
        if let Some(pid) = instance::running_pid(&paths) {
            let _ = crate::process::signal(pid, nix::sys::signal::Signal::SIGTERM);
        }
    }
    wait_stopped(&paths, &org).await?;
    // The lock goes when the process closes its files; wait for the processes themselves too.
    if let Some(status) = status {
        wait_gone(status.pid, Duration::from_secs(5)).await;
        if let Some(pid) = status.ptyd_pid {
            wait_gone(pid, Duration::from_secs(5)).await;
        }
    }
    println!("tether-host stopped for {org}");
    Ok(())
}

/// Waits (at most 10 s) until the host service of `paths` no longer holds its instance lock.
pub async fn wait_stopped(paths: &InstancePaths, org: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while instance::is_running(paths) {
        if Instant::now() > deadline {
            bail!("tether-host for {org} did not stop within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
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

/// One org's line in `host status`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Organization.
    pub organization_id: OrgId,
    /// `running` or `stopped`.
    pub state: &'static str,
    /// Service pid.
    pub pid: Option<u32>,
    /// Health port.
    pub port: Option<u16>,
    /// Relay state.
    pub relay: Option<String>,
    /// Why the relay is in that state.
    pub relay_detail: Option<String>,
    /// Pty daemon state.
    pub ptyd: Option<String>,
    /// Pty daemon restarts since the service started.
    pub ptyd_restarts: Option<u64>,
    /// Relay reconnections after a lost connection.
    pub reconnects: Option<u64>,
    /// What runs it: `systemd`, `launchd` or `daemon`.
    pub manager: Option<String>,
    /// The running service's version.
    pub version: Option<String>,
    /// When the running image started, unix ms (a restart in place keeps the pid, not this).
    pub started_at: Option<i64>,
    /// The counters of `/metrics`, and the time since the relay connected.
    pub metrics: Option<crate::metrics::MetricsSnapshot>,
    /// The pty daemon's pid, version and binary.
    pub ptyd_pid: Option<u32>,
    /// The pty daemon's version.
    pub ptyd_version: Option<String>,
    /// The binary the pty daemon runs from.
    pub ptyd_exe: Option<String>,
}

/// `tether host status [--json]`.
pub async fn status(settings: &Settings, json: bool, org: Option<String>) -> anyhow::Result<()> {
    let orgs = match org {
        Some(org) => vec![OrgId::parse(&org)?],
        None => instance::known_orgs(&settings.home),
    };
    let mut hosts = Vec::new();
    for org in orgs {
        let paths = InstancePaths::new(&settings.home, &org);
        let mut line = HostStatus {
            organization_id: org.clone(),
            state: "stopped",
            pid: None,
            port: None,
            relay: None,
            relay_detail: None,
            ptyd: None,
            ptyd_restarts: None,
            reconnects: None,
            manager: None,
            version: None,
            started_at: None,
            metrics: None,
            ptyd_pid: None,
            ptyd_version: None,
            ptyd_exe: None,
        };
        if instance::is_running(&paths) {
            line.state = "running";
            line.pid = instance::running_pid(&paths);
            if let Ok(doc) = control_client::status(&paths.control_socket).await {
                line.port = Some(doc.port);
                line.relay = serde_json::to_value(doc.state.relay)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string));
                line.ptyd = serde_json::to_value(doc.state.ptyd)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string));
                line.relay_detail = doc.state.relay_detail;
                line.ptyd_restarts = Some(doc.state.ptyd_restarts);
                line.reconnects = Some(doc.state.reconnects);
                line.manager = Some(doc.manager).filter(|m| !m.is_empty());
                line.version = Some(doc.version);
                line.started_at = Some(doc.started_at).filter(|t| *t > 0);
                line.metrics = Some(doc.metrics);
                line.ptyd_pid = doc.ptyd_pid;
                line.ptyd_version = doc.ptyd_version;
                line.ptyd_exe = doc.ptyd_exe;
            }
        }
        hosts.push(line);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "hosts": hosts }))?
        );
        return Ok(());
    }
    if hosts.is_empty() {
        println!("no host service has been started here");
    }
    for h in &hosts {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        println!(
            "{}: {} pid {} port {} relay {} ptyd {} under {}",
            h.organization_id,
            h.state,
            h.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            h.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            dash(&h.relay),
            dash(&h.ptyd),
            dash(&h.manager)
        );
        if let Some(detail) = &h.relay_detail {
            println!("  relay: {detail}");
        }
    }
    Ok(())
}

/// `tether host logs [-f]`.
pub async fn logs(settings: &Settings, follow: bool, org: Option<String>) -> anyhow::Result<()> {
    let org = resolve_org(settings, org).await?;
    let paths = InstancePaths::new(&settings.home, &org);
    // A host run by systemd logs to the journal, not to the file.
    let status = control_client::status(&paths.control_socket).await.ok();
    if status.is_some_and(|s| s.manager == "systemd") {
        if let Some(mut journal) = crate::install::journal(settings, &org, follow) {
            let err = journal.exec();
            bail!("cannot run journalctl for the {org} host service: {err}");
        }
    }
    let path = paths.log;
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("no log at {}", path.display()))?;
    let mut out = std::io::stdout();
    std::io::copy(&mut file, &mut out)?;
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::io::copy(&mut file, &mut out)?;
    }
}
