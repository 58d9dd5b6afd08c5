//! `tether self-update [--check] [--version V] [--rollback]`: the signed update of the
//! installed bundle (contract section 8), then the running host services restarted on
//! the new binaries with their terminals alive (the new host adopts the running ptyd).

use anyhow::{bail, Context};

use crate::bundle::{find_host, ptyd_path_beside};
use crate::host::control;
use crate::host::{instance, lifecycle};
use crate::release::update::{self, Installed, Offer, Source};
use crate::release::{self, replace};
use crate::settings::Settings;
use crate::version::{TARGET, VERSION};

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
        replace::rollback(&installed.paths())?;
        println!("rolled back to the previous tether (run --rollback again to undo)");
        return restart_hosts(settings, &installed).await;
    }
    let url = std::env::var(tether_contract::environment::DOWNLOAD_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| Some(release::DEFAULT_DOWNLOAD_URL.to_string()).filter(|u| !u.is_empty()))
        .context(
            "TETHER_DOWNLOAD_URL is not set: point it at the release directory to update from",
        )?;
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
        let restarted = lifecycle::restart(&paths, &org, &installed.cli).await;
        let upgraded = match restarted {
            Ok(()) => control::client::upgrade_ptyd(&paths.control_socket).await,
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
