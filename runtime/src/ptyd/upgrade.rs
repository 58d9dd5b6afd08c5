//! Upgrading tether-ptyd in place (contract section 6): the running daemon checks the new
//! binary, writes its terminals to a sealed memfd, keeps exactly the pty masters, the
//! listening socket and that memfd across `execve`, and becomes the new binary with the
//! same pid, so the shells stay its children. The new image reads the state back
//! (`--resume-state FD`) and serves the same terminals, offsets and replay buffers.
//!
//! State format 1, in the memfd: `b"TPTYD\0"`, the header's length (u32 big-endian), the
//! header (JSON: `{"format":1,"sessions":[{id,pid,cols,rows,replayStart,outputOffset,
//! inputOffset,exit,masterFd,replayLen}]}`), then each session's replay bytes in order.
//! A format only ever gains readers: a daemon reads every format in [`READS`].

use std::ffi::CString;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, SealFlag};
use serde::{Deserialize, Serialize};

/// The format this daemon writes.
pub const STATE_FORMAT: u32 = 1;
/// The formats this daemon reads (`tether-ptyd --state-formats` prints them).
pub const READS: &[u32] = &[1];
const MAGIC: &[u8] = b"TPTYD\0";

/// One terminal as handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedSession {
    /// The client's name for it.
    pub id: String,
    /// The child's pid.
    pub pid: u32,
    /// Width in columns.
    pub cols: u16,
    /// Height in rows.
    pub rows: u16,
    /// The offset of the first replay byte.
    pub replay_start: u64,
    /// The output offset (the end of the replay bytes).
    pub output_offset: u64,
    /// Input bytes accepted.
    pub input_offset: u64,
    /// How the child ended, when it has (exit code, signal).
    pub exit: Option<(Option<i32>, Option<String>)>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(flatten)]
    session: SavedSession,
    master_fd: RawFd,
    replay_len: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: u32,
    /// The listening socket, kept open across `execve`.
    #[serde(default)]
    listener_fd: Option<RawFd>,
    sessions: Vec<Entry>,
}

/// A terminal read back by the new image.
pub struct Restored {
    /// What it was.
    pub session: SavedSession,
    /// Its pty master.
    pub master: OwnedFd,
    /// Its replay bytes.
    pub replay: Vec<u8>,
}

/// Encodes the state: header and replay bytes.
pub fn encode(
    sessions: &[(SavedSession, Vec<u8>, RawFd)],
    listener_fd: Option<RawFd>,
) -> anyhow::Result<Vec<u8>> {
    let header = Header {
        format: STATE_FORMAT,
        listener_fd,
        sessions: sessions
            .iter()
            .map(|(session, replay, fd)| Entry {
                session: session.clone(),
                master_fd: *fd,
                replay_len: replay.len() as u64,
            })
            .collect(),
    };
    let json = serde_json::to_vec(&header)?;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&u32::try_from(json.len())?.to_be_bytes());
    out.extend_from_slice(&json);
    for (_, replay, _) in sessions {
        out.extend_from_slice(replay);
    }
    Ok(out)
}

/// A decoded state: the listening socket's fd and each terminal with its master fd
/// (numbers, not yet owned) and replay bytes.
pub type Decoded = (Option<RawFd>, Vec<(SavedSession, RawFd, Vec<u8>)>);

/// Decodes a state.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Decoded> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .context("not a tether-ptyd state (no magic)")?;
    let (len, rest) = rest.split_at_checked(4).context("truncated state")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (json, mut replay) = rest
        .split_at_checked(len)
        .context("truncated state header")?;
    let header: Header = serde_json::from_slice(json).context("state header")?;
    if !READS.contains(&header.format) {
        bail!(
            "state format {} is not one this daemon reads ({READS:?})",
            header.format
        );
    }
    let mut out = Vec::new();
    for entry in header.sessions {
        let (bytes, next) = replay
            .split_at_checked(entry.replay_len as usize)
            .context("truncated replay bytes")?;
        replay = next;
        out.push((entry.session, entry.master_fd, bytes.to_vec()));
    }
    Ok((header.listener_fd, out))
}

/// Asks `path --state-formats` which formats it reads; refuses anything that is not an
/// executable tether-ptyd reading ours.
pub fn dry_run(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("{} is not an executable file", path.display());
    }
    let mut child = std::process::Command::new(path)
        .arg("--state-formats")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", path.display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} --state-formats did not answer within 5 s",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut said);
    }
    let formats: Vec<u32> = said
        .trim()
        .strip_prefix("tether-ptyd state formats:")
        .map(|list| {
            list.split(',')
                .filter_map(|f| f.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if !status.success() || formats.is_empty() {
        bail!(
            "{} is not a tether-ptyd (it does not name the state formats it reads)",
            path.display()
        );
    }
    if !formats.contains(&STATE_FORMAT) {
        bail!("{} reads state formats {formats:?}, not {STATE_FORMAT}: it cannot take these terminals over", path.display());
    }
    Ok(())
}

/// What `--state-formats` prints.
pub fn formats_line() -> String {
    let list: Vec<String> = READS.iter().map(u32::to_string).collect();
    format!("tether-ptyd state formats: {}", list.join(","))
}

fn set_cloexec(fd: RawFd, on: bool) -> nix::Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags)).map(drop)
}

/// Writes `state` to a memfd sealed against every change; it stays open across `execve`.
fn sealed_memfd(state: &[u8]) -> anyhow::Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let name = CString::new("tether-ptyd-state")?;
    let fd = memfd_create(
        &name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create")?;
    let mut file = std::fs::File::from(fd);
    file.write_all(state)?;
    file.rewind()?;
    let seals = SealFlag::F_SEAL_WRITE
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_SEAL;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).context("sealing the state")?;
    Ok(OwnedFd::from(file))
}

/// Becomes `path`, handing over `state` and keeping `keep` (pty masters, the listening
/// socket) open; returns only on failure, with every fd close-on-exec again.
pub fn exec(path: &Path, socket: &Path, state: &[u8], keep: &[RawFd]) -> anyhow::Error {
    let memfd = match sealed_memfd(state) {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut handed = keep.to_vec();
    handed.push(memfd.as_raw_fd());
    for fd in &handed {
        if let Err(e) = set_cloexec(*fd, false) {
            for fd in &handed {
                let _ = set_cloexec(*fd, true);
            }
            return anyhow::anyhow!("cannot keep fd {fd} open across execve: {e}");
        }
    }
    tracing::info!(path = %path.display(), terminals = keep.len().saturating_sub(1), "upgrading in place");
    let err = std::process::Command::new(path)
        .arg0("tether-ptyd")
        .arg("--socket")
        .arg(socket)
        .arg("--resume-state")
        .arg(memfd.as_raw_fd().to_string())
        .exec();
    for fd in &handed {
        let _ = set_cloexec(*fd, true);
    }
    anyhow::anyhow!("execve {} failed: {err}", path.display())
}

/// Reads the state the previous image left at `fd` and takes ownership of its fds: the
/// listening socket (when handed over) and the terminals.
pub fn read_state(fd: RawFd) -> anyhow::Result<(Option<OwnedFd>, Vec<Restored>)> {
    // SAFETY: the previous image handed this fd over for us alone (`--resume-state`).
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).context("reading the state")?;
    let (listener, sessions) = decode(&bytes)?;
    let listener = match listener {
        Some(fd) => {
            set_cloexec(fd, true).context("the listening socket")?;
            // SAFETY: the previous image kept its listening socket open for us.
            Some(unsafe { OwnedFd::from_raw_fd(fd) })
        }
        None => None,
    };
    let mut out = Vec::new();
    for (session, master, replay) in sessions {
        set_cloexec(master, true).with_context(|| format!("pty fd {master} of {}", session.id))?;
        // SAFETY: the previous image kept this pty master open for us; nothing else owns it.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        out.push(Restored {
            session,
            master,
            replay,
        });
    }
    Ok((listener, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(id: &str) -> SavedSession {
        SavedSession {
            id: id.into(),
            pid: 42,
            cols: 80,
            rows: 24,
            replay_start: 100,
            output_offset: 105,
            input_offset: 7,
            exit: None,
        }
    }

    #[test]
    fn state_round_trips() {
        let state = encode(
            &[
                (saved("a"), b"hello".to_vec(), 9),
                (saved("b"), b"".to_vec(), 10),
            ],
            Some(3),
        )
        .expect("encode");
        let (listener, back) = decode(&state).expect("decode");
        assert_eq!(listener, Some(3));
        assert_eq!(back[0], (saved("a"), 9, b"hello".to_vec()));
        assert_eq!(back[1].0.id, "b");
    }

    /// The format-1 fixture committed with the first release that upgrades in place: every
    /// later daemon must read it (`READS` only grows).
    #[test]
    fn the_committed_format_1_fixture_is_read() {
        let fixture = include_bytes!("../../../fixtures/ptyd-state/format-1.bin");
        let (_, sessions) = decode(fixture).expect("format 1 must stay readable");
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].0.id, "shell-1");
        assert_eq!(sessions[0].2, b"$ echo hi\r\nhi\r\n$ ");
        assert_eq!(sessions[1].0.exit, Some((Some(0), None)));
    }

    #[test]
    fn a_newer_format_or_garbage_is_refused() {
        let mut state = encode(&[(saved("a"), b"x".to_vec(), 9)], None).expect("encode");
        let at = state
            .windows(10)
            .position(|w| w == b"\"format\":1")
            .expect("format field");
        state[at + 9] = b'9';
        assert!(decode(&state).is_err_and(|e| e.to_string().contains("format 9")));
        assert!(decode(b"garbage").is_err());
    }
}
