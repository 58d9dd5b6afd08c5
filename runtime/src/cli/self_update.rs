//! `tether self-update [--check] [--version V] [--rollback]`: the signed update of the
//! installed bundle (contract section 8), then the running host services restarted on
//! the new binaries with their terminals alive (the new host adopts the running ptyd).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};

use crate::bundle::{find_host, ptyd_path_beside};
use crate::host::control_api::ShutdownRequest;
use crate::host::{control_client, instance};
use crate::release::update::{self, Installed, Offer, Source};
use crate::release::{self, replace};
use crate::settings::Settings;
use crate::version::{TARGET, VERSION};

/// Where releases come from: `TETHER_DOWNLOAD_URL`, else the build's default.
pub const DOWNLOAD_URL_ENV: &str = "TETHER_DOWNLOAD_URL";

/// What `tether self-update` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Only say whether an update is available.
    pub check: bool,
    /// Install exactly this version (older ones included).
    pub version: Option<String>,
    /// Put the previous files back.
    pub rollback: bool,
}

/// Runs `tether self-update`.
pub async fn run(settings: &Settings, request: Request) -> anyhow::Result<()> {
    let installed = installed()?;
    refuse_packaged(&installed)?;
    if request.rollback {
        replace::rollback(&installed.paths()).map_err(anyhow::Error::msg)?;
        println!("rolled back to the previous tether (run --rollback again to undo)");
        return restart_hosts(settings, &installed).await;
    }
    let url = std::env::var(DOWNLOAD_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| Some(release::DEFAULT_DOWNLOAD_URL.to_string()).filter(|u| !u.is_empty()))
        .with_context(|| {
            format!(
                "{DOWNLOAD_URL_ENV} is not set: point it at the release directory to update from"
            )
        })?;
    crate::net::plaintext::check(&url)?;
    let target = release::target_name(TARGET)
        .with_context(|| format!("no tether release is made for {TARGET}"))?;
    let source = Source {
        url,
        public_key: release::PUBLIC_KEY.into(),
    };
    let http = crate::net::download_client();
    let wanted = request.version.as_deref();
    let offer = update::offer(&http, &source, target, VERSION, wanted)
        .await
        .map_err(|e| anyhow::anyhow!("{e}: nothing was changed"))?;
    let (version, url, sha256) = match offer {
        Offer::UpToDate { version } => {
            println!("tether {VERSION} is up to date (the latest release is {version})");
            return Ok(());
        }
        Offer::PreRelease { version } => {
            println!("tether {VERSION} is up to date; the release server offers the pre-release {version} (install it with `tether self-update --version {version}`)");
            return Ok(());
        }
        Offer::Update { version, .. } if request.check => {
            println!("tether {version} is available (this is {VERSION}): run `tether self-update`");
            return Ok(());
        }
        Offer::Update {
            version,
            url,
            sha256,
        } => (version, url, sha256),
    };
    update::install(&http, &installed, target, &version, &url, &sha256)
        .await
        .map_err(|e| anyhow::anyhow!("{e}: nothing was changed"))?;
    println!(
        "updated tether {VERSION} → {version}; the previous files are kept as *.old (`tether self-update --rollback`)"
    );
    restart_hosts(settings, &installed).await
}

/// Refuses to touch binaries a package manager installed: the next upgrade or removal
/// of the package would trip over files it no longer recognises.
fn refuse_packaged(installed: &Installed) -> anyhow::Result<()> {
    for file in installed.paths() {
        if let Some(owner) = release::package_manager::owner(&file) {
            bail!(
                "{} belongs to the {} package `{}`: update it with `{}`; nothing was changed",
                file.display(),
                owner.manager,
                owner.package,
                owner.update_command()
            );
        }
    }
    Ok(())
}

/// The installed bundle's files, from this CLI's own path.
fn installed() -> anyhow::Result<Installed> {
    let cli = std::env::current_exe().context("cannot find this executable's path")?;
    let cli = cli.canonicalize().unwrap_or(cli);
    let host = find_host()?;
    let ptyd = ptyd_path_beside(&host);
    if !ptyd.is_file() {
        bail!(
            "pty daemon not found at {}: the bundle is incomplete",
            ptyd.display()
        );
    }
    Ok(Installed { cli, host, ptyd })
}

/// Restarts every running host service on the new binaries, leaving the pty daemons (and
/// so the terminals) running. Each service re-executes itself in place (same pid, so
/// systemd and launchd see no change, and its environment never leaves the process);
/// a host left behind by a crash is skipped, and one that fails is reported after the
/// others were tried.
pub async fn restart_hosts(settings: &Settings, installed: &Installed) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for org in instance::known_orgs(&settings.home) {
        let paths = instance::InstancePaths::new(&settings.home, &org);
        if !instance::is_running(&paths) {
            continue;
        }
        let restarted = restart_host(&paths, &org, installed).await;
        let upgraded = match restarted {
            Ok(()) => control_client::upgrade_ptyd(&paths.control_socket).await,
            Err(e) => Err(e),
        };
        match upgraded {
            Ok(ptyd) => println!(
                "restarted tether-host for {org} on the new version, and tether-ptyd in place (pid {}, {}); its terminals kept running",
                ptyd.pid, ptyd.version
            ),
            Err(e) => {
                eprintln!("tether-host for {org}: {e:#}");
                failed.push(org.to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "the update is installed, but tether-host did not restart for {}: run `tether host stop` and `tether host start` for it",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Asks one running host to re-execute itself, and waits until the new image answers.
async fn restart_host(
    paths: &instance::InstancePaths,
    org: &crate::OrgId,
    installed: &Installed,
) -> anyhow::Result<()> {
    let before = control_client::status(&paths.control_socket)
        .await
        .context("its control socket does not answer")?;
    // A host from before restart-in-place exits instead; its environment is readable then.
    let environment = std::fs::read(format!("/proc/{}/environ", before.pid)).ok();
    let request = ShutdownRequest {
        stop_ptyd: false,
        restart: true,
    };
    // A service that acts on the request at once may re-execute before its answer is out:
    // a cut answer is judged by whether the service comes back, not taken as a refusal.
    let asked = control_client::shutdown(&paths.control_socket, &request)
        .await
        .context("cannot ask it to restart");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if let Ok(now) = control_client::status(&paths.control_socket).await {
            if now.started_at != before.started_at || now.pid != before.pid {
                return Ok(());
            }
        }
        if !crate::process::running(before.pid) {
            return start_host(&installed.cli, org, environment.as_deref());
        }
        if std::time::Instant::now() > deadline {
            asked?;
            bail!("it did not come back within 10 s (see `tether host logs --org {org}`)");
        }
    }
}

/// `<cli> host start --daemon --org ORG`, with `environment` (NUL-separated) when known.
fn start_host(cli: &Path, org: &str, environment: Option<&[u8]>) -> anyhow::Result<()> {
    let mut command = Command::new(cli);
    command.args(["host", "start", "--daemon", "--org", org]);
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
