//! The files that make one host service per org findable: a lock held for its lifetime,
//! a state file with pid and port, the control socket, and the log.

use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::OrgId;

/// Paths of one org's host service under `TETHER_HOME`.
#[derive(Debug, Clone)]
pub struct InstancePaths {
    /// `run/host-<org>.lock`: held exclusively while the service runs.
    pub lock: PathBuf,
    /// `run/host-<org>.json`: pid, port, socket.
    pub state: PathBuf,
    /// `run/host-<org>.sock`: the control API.
    pub control_socket: PathBuf,
    /// `run/ptyd-<org>.sock`: the pty daemon.
    pub ptyd_socket: PathBuf,
    /// `logs/host-<org>.log`: daemon output.
    pub log: PathBuf,
}

impl InstancePaths {
    /// The paths for `org` under `home`.
    pub fn new(home: &Path, org: &OrgId) -> Self {
        let run = home.join("run");
        InstancePaths {
            lock: run.join(format!("host-{org}.lock")),
            state: run.join(format!("host-{org}.json")),
            control_socket: run.join(format!("host-{org}.sock")),
            ptyd_socket: run.join(format!("ptyd-{org}.sock")),
            log: home.join("logs").join(format!("host-{org}.log")),
        }
    }
}

/// What a running host service writes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// Process id.
    pub pid: u32,
    /// Health port on 127.0.0.1.
    pub port: u16,
    /// Organization served.
    pub organization_id: OrgId,
    /// Host id announced to the relay.
    pub host_id: String,
    /// Version of the service.
    pub version: String,
}

/// The held instance lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another service for this org holds it.
    #[error("a host service for this organization is already running (pid {pid})")]
    Running {
        /// The running service's pid, as its pid file says.
        pid: String,
    },
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Takes the instance lock without waiting. A stale lock file of a dead process is simply
/// reclaimed: the kernel drops a lock when its holder dies.
pub fn try_lock(paths: &InstancePaths) -> Result<InstanceLock, LockError> {
    if let Some(dir) = paths.lock.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let file = crate::private_file::open_lock(&paths.lock).map_err(|source| LockError::Io {
        path: paths.lock.clone(),
        source,
    })?;
    match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
        Ok(true) => Ok(InstanceLock { _file: file }),
        Err(source) => Err(LockError::Io {
            path: paths.lock.clone(),
            source,
        }),
        Ok(false) => Err(LockError::Running {
            pid: running_pid(paths)
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unknown".into()),
        }),
    }
}

/// True when a live service holds the lock.
pub fn is_running(paths: &InstancePaths) -> bool {
    let Ok(file) = File::open(&paths.lock) else {
        return false;
    };
    !matches!(fs4::fs_std::FileExt::try_lock_shared(&file), Ok(true))
}

/// The pid of the running service, read from its state file.
pub fn running_pid(paths: &InstancePaths) -> Option<u32> {
    read_info(paths).map(|i| i.pid)
}

/// Reads the state file.
pub fn read_info(paths: &InstancePaths) -> Option<InstanceInfo> {
    serde_json::from_slice(&std::fs::read(&paths.state).ok()?).ok()
}

/// Writes the state file (0600, atomically).
pub fn write_info(paths: &InstancePaths, info: &InstanceInfo) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    crate::private_file::write_atomically(&paths.state, &bytes)
}

/// Every org with host files under `home`.
pub fn known_orgs(home: &Path) -> Vec<OrgId> {
    let mut orgs: Vec<OrgId> = std::fs::read_dir(home.join("run"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("host-")
                .and_then(|n| n.strip_suffix(".lock"))
                .and_then(|n| OrgId::parse(n).ok())
        })
        .collect();
    orgs.sort();
    orgs
}
