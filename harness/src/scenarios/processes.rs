//! The processes of a [`Machine`]: found by its `TETHER_HOME` in their environment, their
//! memory figures from `/proc`, and its pty daemon upgraded in place.

use std::path::PathBuf;

use anyhow::Context;

use super::env::Machine;

impl Machine {
    /// Pids of this machine's processes running `binary` (e.g. `tether-ptyd`).
    pub fn pids_of(&self, binary: &str) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|(_, exe)| {
                // A binary replaced under a running process reads "<path> (deleted)".
                let name = exe.as_ref().and_then(|e| e.file_name()?.to_str());
                name.map(|n| n.trim_end_matches(" (deleted)")) == Some(binary)
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Every process whose environment has this machine's `TETHER_HOME`, with its executable.
    pub(crate) fn processes(&self) -> Vec<(u32, Option<PathBuf>)> {
        let home = format!("TETHER_HOME={}\0", self.home().display());
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let environ = std::fs::read(entry.path().join("environ")).ok()?;
                String::from_utf8_lossy(&environ)
                    .contains(&home)
                    .then(|| (pid, std::fs::read_link(entry.path().join("exe")).ok()))
            })
            .collect()
    }
}

/// A `/proc/<pid>/status` figure in KiB, e.g. `VmRSS` (resident) or `VmHWM` (peak).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The processes that have `path` open, with their command lines. Each thread's fd table
/// is looked at (`/proc/*/task/*/fd`): a killed process's leader can be a zombie while its
/// other threads, still exiting, hold its files — and its locks.
pub fn holders(path: &std::path::Path) -> Vec<(u32, String)> {
    let Ok(wanted) = path.canonicalize() else {
        return vec![];
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(entry.path().join("task")) else {
            continue;
        };
        let open = tasks.flatten().any(|task| {
            std::fs::read_dir(task.path().join("fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == wanted))
            })
        });
        if open {
            let cmdline = std::fs::read(entry.path().join("cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            out.push((pid, cmdline.trim().to_string()));
        }
    }
    out
}

/// Sends `SIG<signal>` (`KILL`, `TERM`, …) to `pid` with `kill(1)`.
pub fn kill(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    if signal == "KILL" {
        // `kill` returns before the process is gone; its locks go with it (at most 5 s).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the command's closing parenthesis: gone, or a zombie.
            let gone = state
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next());
            // A zombie leader may still have threads exiting, holding the files (and
            // locks) they share: only the leader left counts as gone.
            let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| tasks.count())
                .unwrap_or(0);
            if matches!(gone, None | Some("X")) || (gone == Some("Z") && threads <= 1) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(())
}

impl Machine {
    /// Gives this machine copies of the three binaries, so that one can be replaced on disk
    /// (as an update does) without touching the build's.
    pub fn own_binaries(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.path().join("bin");
        std::fs::create_dir_all(&dir)?;
        for name in ["tether", "tether-host", "tether-ptyd"] {
            std::fs::copy(self.bins.join(name), dir.join(name))
                .with_context(|| format!("cannot copy {name} to {}", dir.display()))?;
        }
        self.bins = dir;
        Ok(())
    }

    /// Puts a new `tether-ptyd` file in place of the running one's (as an update does) and
    /// has the host of `org_a` upgrade the daemon to it; checks that it kept its pid and
    /// runs the new file. The daemon's pid.
    pub async fn upgrade_ptyd_in_place(&self) -> anyhow::Result<u32> {
        let before = self.pids_of("tether-ptyd");
        let bin = self.bins.join("tether-ptyd");
        let staged = self.bins.join(".tether-ptyd.new");
        std::fs::copy(&bin, &staged)?;
        std::fs::rename(&staged, &bin)?;
        let socket = self.home().join("run/host-org_a.sock");
        let answer = control_post(&socket, "/internal/ptyd/upgrade").await?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        anyhow::ensure!(
            head.starts_with("HTTP/1.1 200"),
            "the host did not upgrade tether-ptyd: {answer}"
        );
        let done: serde_json::Value = serde_json::from_str(body.trim())
            .with_context(|| format!("the upgrade's answer is not JSON: {body}"))?;
        let pid = done["pid"]
            .as_u64()
            .context("no pid in the upgrade's answer")? as u32;
        anyhow::ensure!(
            before == [pid],
            "tether-ptyd was {before:?} before the upgrade and {pid} after"
        );
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
        anyhow::ensure!(
            exe == bin,
            "tether-ptyd runs {} after the upgrade",
            exe.display()
        );
        Ok(pid)
    }
}

/// One `POST` to a host's control API on its Unix socket; the whole answer.
async fn control_post(socket: &std::path::Path, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| {
            format!(
                "cannot reach the host's control socket {}",
                socket.display()
            )
        })?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        stream.read_to_end(&mut answer),
    )
    .await
    .context("the host's control API did not answer within 15 s")??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
