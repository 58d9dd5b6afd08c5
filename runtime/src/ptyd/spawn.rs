//! Starting a program on a new pty: the master stays here (non-blocking, close-on-exec),
//! the child gets the slave as its controlling terminal in a session of its own.
//!
//! Written on `nix::pty` rather than `portable-pty`'s `spawn_command`, which closes every
//! descriptor number found in `/dev/fd` in the forked child: with 1,000 terminals open that
//! is thousands of `close` calls per open, and every descriptor tether-ptyd opens is
//! close-on-exec already. Reads and writes go through tokio (`AsyncFd`), not a thread each.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::Winsize;

nix::ioctl_write_ptr_bad!(
    /// `ioctl(fd, TIOCSWINSZ, &winsize)`.
    set_winsize_ioctl,
    nix::libc::TIOCSWINSZ,
    Winsize
);

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    /// Program; `None` is the user's login shell.
    pub command: Option<String>,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (the user's home when absent or not a directory).
    pub cwd: Option<String>,
    /// Variables added to the daemon's environment (credentials are removed after them).
    pub env: Vec<(String, String)>,
    /// Terminal width in columns.
    pub cols: u16,
    /// Terminal height in rows.
    pub rows: u16,
}

/// A started child: its pid and the pty master (non-blocking).
pub struct Started {
    /// The child's pid, also its process group and session id.
    pub pid: u32,
    /// The master side of its pty.
    pub master: OwnedFd,
}

fn winsize(cols: u16, rows: u16) -> Winsize {
    Winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// The soft limit on open files the daemon started with (`u64::MAX`: not changed).
static CHILD_FILE_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

/// One descriptor per terminal: lifts the daemon's soft limit on open files to the hard
/// one (at most 65,536), so a default of 1,024 does not cap terminals near a thousand.
/// Terminals get the limit the daemon started with.
pub fn raise_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let wanted = hard.min(65_536);
        if soft < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() {
            CHILD_FILE_LIMIT.store(soft, Ordering::Relaxed);
        }
    }
}

/// Sets the window size of the pty whose master is `master`.
pub fn resize(master: &OwnedFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = winsize(cols, rows);
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which outlives the call.
    unsafe { set_winsize_ioctl(master.as_raw_fd(), &size) }
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Opens a pty of `spec`'s size and starts `spec`'s program on it.
pub fn spawn(spec: &Spawn) -> anyhow::Result<Started> {
    let pty = nix::pty::openpty(Some(&winsize(spec.cols, spec.rows)), None)
        .context("cannot open a pty")?;
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .context("cannot make the pty close-on-exec")?;
    }
    let flags = fcntl(pty.master.as_raw_fd(), FcntlArg::F_GETFL).context("pty flags")?;
    fcntl(
        pty.master.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .context("cannot make the pty non-blocking")?;

    let mut command = command(spec);
    command
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave));
    let file_limit = CHILD_FILE_LIMIT.load(Ordering::Relaxed);
    // SAFETY: only async-signal-safe calls (signal, sigprocmask, setsid, ioctl, setrlimit)
    // between fork and exec.
    unsafe {
        command.pre_exec(move || {
            use nix::libc;
            if file_limit != u64::MAX {
                let mut limit: libc::rlimit = std::mem::zeroed();
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                    limit.rlim_cur = file_limit as libc::rlim_t;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                }
            }
            for signal in [
                libc::SIGCHLD,
                libc::SIGHUP,
                libc::SIGINT,
                libc::SIGQUIT,
                libc::SIGTERM,
                libc::SIGALRM,
            ] {
                libc::signal(signal, libc::SIG_DFL);
            }
            let empty: libc::sigset_t = std::mem::zeroed();
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            // The pty (stdin) becomes the controlling terminal: SIGWINCH, job control.
            if libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("cannot run {}", program_name(spec)))?;
    // Reaped by the daemon's reaper (`reaper.rs`), not through this handle.
    let pid = child.id();
    drop(child);
    Ok(Started {
        pid,
        master: pty.master,
    })
}

fn program_name(spec: &Spawn) -> String {
    spec.command.clone().unwrap_or_else(login_shell)
}

/// The command line and environment of `spec`: the daemon's environment, `TERM` when
/// missing, the client's variables, then every credential removed (a remote user may not
/// smuggle one back in) and proxies stripped of their passwords.
fn command(spec: &Spawn) -> Command {
    let mut command = match &spec.command {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(&spec.args);
            command
        }
        None => {
            let shell = login_shell();
            let mut command = Command::new(&shell);
            // A login shell: argv[0] is `-<name>`.
            let name = shell.rsplit('/').next().unwrap_or(&shell);
            command.arg0(format!("-{name}"));
            command.env("SHELL", &shell);
            command
        }
    };
    if std::env::var_os("TERM").is_none() {
        command.env("TERM", "xterm-256color");
    }
    for (key, value) in &spec.env {
        command.env(key, value);
    }
    for (name, value) in crate::child_env::changes() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| OsString::from("/"));
    let cwd = spec
        .cwd
        .as_deref()
        .map(Path::new)
        .filter(|dir| dir.is_dir())
        .map(|dir| dir.as_os_str().to_os_string())
        .unwrap_or(home);
    command.current_dir(cwd);
    command
}

/// `$SHELL` when it is executable, else the passwd database's shell, else `/bin/sh`.
fn login_shell() -> String {
    let executable = |path: &str| nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    if let Some(shell) = std::env::var("SHELL").ok().filter(|s| executable(s)) {
        return shell;
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .and_then(|user| user.shell.to_str().map(str::to_string))
        .filter(|s| executable(s))
        .unwrap_or_else(|| "/bin/sh".into())
}
