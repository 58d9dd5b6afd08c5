//! `tether host start | stop | status | logs`.

use std::io::{BufRead, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::auth::config_store::ConfigStore;
use crate::bundle::find_host;
use crate::host::control;
use crate::host::control::api::Manager;
use crate::host::instance::{self, InstancePaths};
use crate::host::lifecycle;
use crate::settings::Settings;
use crate::OrgId;

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
    let mut command = lifecycle::host_command(settings, &host, &org, port);
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

    let failure = match lifecycle::wait_until_healthy(child, &paths).await {
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
    lifecycle::stop(&paths, &org).await?;
    println!("tether-host stopped for {org}");
    Ok(())
}

/// One org's line in `host status`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// The organization this host serves.
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
    pub manager: Option<Manager>,
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
            if let Ok(doc) = control::client::status(&paths.control_socket).await {
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
                line.manager = Some(doc.manager);
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
        let manager = h.manager.map(|m| m.to_string());
        println!(
            "{}: {} pid {} port {} relay {} ptyd {} under {}",
            h.organization_id,
            h.state,
            h.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            h.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            dash(&h.relay),
            dash(&h.ptyd),
            dash(&manager)
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
    let status = control::client::status(&paths.control_socket).await.ok();
    if status.is_some_and(|s| s.manager == Manager::Systemd) {
        if let Some(mut journal) = super::install::journal(settings, &org, follow) {
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
