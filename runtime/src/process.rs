//! Other processes, by pid: whether one still runs, and signals that never reach the
//! wrong one (pid 0 or 1, or a pid the kernel has since given to another process).

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// True while `pid` runs. An exited process nobody has reaped yet (a zombie, common in
/// containers whose init does not reap) counts as gone.
pub fn running(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        return stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'));
    }
    usable(pid).is_some_and(|pid| nix::sys::signal::kill(pid, None).is_ok())
}

/// When `pid` started (clock ticks since boot), where `/proc` says; names one process
/// across pid reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 counts from the state, the first field after the command's `) `.
    stat.rsplit_once(") ")?.1.split(' ').nth(19)?.parse().ok()
}

/// Sends `signal` to `pid`; refuses pids that would signal a group or init.
pub fn signal(pid: u32, signal: Signal) -> nix::Result<()> {
    let pid = usable(pid).ok_or(nix::errno::Errno::ESRCH)?;
    nix::sys::signal::kill(pid, signal)
}

/// Sends `signal` to `pid` only if it is still the process that started at `started`.
pub fn signal_same(pid: u32, started: Option<u64>, signal: Signal) -> nix::Result<()> {
    if started.is_none() || start_time(pid) != started {
        return Err(nix::errno::Errno::ESRCH);
    }
    self::signal(pid, signal)
}

fn usable(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .map(Pid::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_zero_one_and_huge_are_never_signalled() {
        for pid in [0, 1, u32::MAX] {
            assert_eq!(signal(pid, Signal::SIGTERM), Err(nix::errno::Errno::ESRCH));
        }
    }

    #[test]
    fn a_reused_pid_is_not_signalled() {
        let me = std::process::id();
        let started = start_time(me);
        assert!(started.is_some());
        assert_eq!(
            signal_same(me, started.map(|t| t + 1), Signal::SIGCONT),
            Err(nix::errno::Errno::ESRCH)
        );
        assert_eq!(signal_same(me, started, Signal::SIGCONT), Ok(()));
        assert!(running(me));
    }
}
