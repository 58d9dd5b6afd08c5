//! Reaping every terminal's child from one task: on `SIGCHLD` (and once a second, in case
//! two exits share one signal with a registration in between) `waitpid(-1, WNOHANG)` until
//! nothing is left, each exit handed to the session waiting for its pid. No thread per
//! child. The daemon's only children are its terminals, so reaping any child is right.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use tokio::sync::oneshot;

use crate::sync::lock;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The exit code; `-1` when killed by a signal; `None` when unknown.
    pub code: Option<i32>,
    /// The signal's name when killed by one.
    pub signal: Option<String>,
}

#[derive(Default)]
struct Table {
    /// Sessions waiting for their child's exit, by pid.
    waiting: HashMap<i32, oneshot::Sender<Exit>>,
    /// Exits reaped before their session asked (a child that ended at once).
    early: HashMap<i32, Exit>,
}

static TABLE: OnceLock<Arc<Mutex<Table>>> = OnceLock::new();

/// Held while reaping; an upgrade holds it from writing its state to `execve`, so no exit
/// is reaped by the old image after the state was taken.
static REAPING: Mutex<()> = Mutex::new(());

/// Stops reaping until the guard is dropped.
pub fn pause() -> std::sync::MutexGuard<'static, ()> {
    lock(&REAPING)
}

fn table() -> &'static Arc<Mutex<Table>> {
    TABLE.get_or_init(Default::default)
}

/// Installs the `SIGCHLD` handler and starts the reaping task; call once, inside the
/// runtime, before the first child is started.
pub fn start() -> std::io::Result<()> {
    let mut sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            reap_all();
        }
    });
    Ok(())
}

/// Resolves with `pid`'s exit once it is reaped.
pub fn watch(pid: u32) -> oneshot::Receiver<Exit> {
    let (tx, rx) = oneshot::channel();
    let pid = pid as i32;
    let mut table = lock(table());
    match table.early.remove(&pid) {
        Some(exit) => {
            let _ = tx.send(exit);
        }
        None => {
            table.waiting.insert(pid, tx);
        }
    }
    rx
}

/// Reaps every child that has exited.
fn reap_all() {
    let _reaping = lock(&REAPING);
    loop {
        let (pid, exit) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (
                pid,
                Exit {
                    code: Some(code),
                    signal: None,
                },
            ),
            Ok(WaitStatus::Signaled(pid, signal, _)) => (
                pid,
                Exit {
                    code: Some(-1),
                    signal: Some(signal.as_str().to_string()),
                },
            ),
            Ok(WaitStatus::StillAlive) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            // ECHILD: no children at all.
            Err(_) => return,
        };
        let mut table = lock(table());
        match table.waiting.remove(&pid.as_raw()) {
            Some(tx) => {
                let _ = tx.send(exit);
            }
            None => {
                table.early.insert(pid.as_raw(), exit);
            }
        }
    }
}
