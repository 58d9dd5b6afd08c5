//! The processes of a [`Machine`]: found by its `TETHER_HOME` in their environment, and
//! their memory figures from `/proc`.

use std::path::PathBuf;

use super::env::Machine;

impl Machine {
    /// Pids of this machine's processes running `binary` (e.g. `tether-ptyd`).
    pub fn pids_of(&self, binary: &str) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|(_, exe)| exe.as_ref().and_then(|e| e.file_name()) == Some(binary.as_ref()))
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
            if matches!(gone, None | Some("Z") | Some("X")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(())
}
