//! The daemon: a `0600` Unix socket, one task per client, sessions shared by all.
//! A bad frame closes that client only; nothing a client sends can stop the daemon.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::frame::{read_frame, Frame};
use super::session::Session;
use super::spawn::Spawn;
use super::subscriber::ClientHandle;
use crate::sync::lock;
use crate::version::VERSION;
use tether_contract::ptyd_protocol::{valid_session_id, ErrorCode, Event, Request, PROTOCOL};

/// Every terminal the daemon holds, by id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    /// Drops an exited session whose exit was delivered (a live one of the same id stays).
    fn forget_exited(&self, id: &str) {
        let mut map = lock(&self.map);
        if map.get(id).is_some_and(|s| !s.alive()) {
            map.remove(id);
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.map).get(id).cloned()
    }

    fn insert(&self, session: Arc<Session>) {
        lock(&self.map).insert(session.id.clone(), session);
    }

    fn remove(&self, id: &str) {
        lock(&self.map).remove(id);
    }

    fn all(&self) -> Vec<Arc<Session>> {
        let mut all: Vec<_> = lock(&self.map).values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

/// What every client's handler may need: the terminals, and for an upgrade the socket's
/// path and the listening fd to hand over.
pub struct Daemon {
    sessions: Arc<Sessions>,
    socket: PathBuf,
    listener_fd: RawFd,
}

/// Binds `socket` (removing a stale file first) — or, after an upgrade, takes over the
/// previous image's socket and terminals from the state at `resume_state` — and serves
/// clients until the process ends.
pub async fn serve(socket: &Path, resume_state: Option<RawFd>) -> anyhow::Result<()> {
    super::reaper::start().context("cannot watch for terminals' exits (SIGCHLD)")?;
    let sessions = Arc::new(Sessions::default());
    let listener = match resume_state {
        Some(fd) => resume(fd, &sessions, socket).await?,
        None => bind(socket).await?,
    };
    let listener_fd = listener.as_raw_fd();
    let mut listener = crate::private_socket::SameUserListener(listener);
    tracing::info!(socket = %socket.display(), pid = std::process::id(), version = VERSION, "tether-ptyd listening");
    let daemon = Arc::new(Daemon {
        sessions,
        socket: socket.to_path_buf(),
        listener_fd,
    });
    let next_id = AtomicU64::new(1);
    loop {
        let (stream, _) = axum::serve::Listener::accept(&mut listener).await;
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_client(stream, id, daemon.clone()));
    }
}

/// Restores the terminals the previous image handed over, and its listening socket.
async fn resume(
    fd: RawFd,
    sessions: &Arc<Sessions>,
    socket: &Path,
) -> anyhow::Result<UnixListener> {
    let (listener, restored) = super::upgrade::read_state(fd)
        .context("cannot read the state the previous tether-ptyd handed over")?;
    let count = restored.len();
    for terminal in restored {
        let forget = forgetter(sessions);
        let session =
            Session::restore(&terminal.session, terminal.master, &terminal.replay, forget)
                .with_context(|| format!("cannot restore terminal {}", terminal.session.id))?;
        sessions.insert(session);
    }
    tracing::info!(terminals = count, "upgraded in place: terminals restored");
    match listener {
        Some(fd) => {
            let listener = std::os::unix::net::UnixListener::from(fd);
            listener.set_nonblocking(true)?;
            Ok(UnixListener::from_std(listener)?)
        }
        None => bind(socket).await,
    }
}

/// `forget` for a session: drop it from `sessions` once its exit was delivered.
fn forgetter(sessions: &Arc<Sessions>) -> Box<dyn Fn(&str) + Send + Sync> {
    let registry = Arc::downgrade(sessions);
    Box::new(move |id: &str| {
        if let Some(sessions) = registry.upgrade() {
            sessions.forget_exited(id);
        }
    })
}

/// Binds the socket with mode `0600`; a stale file is removed, a live daemon is not displaced.
pub async fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).await.is_ok() {
            anyhow::bail!(
                "another tether-ptyd is already serving {}",
                socket.display()
            );
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("cannot remove stale socket {}", socket.display()))?;
    }
    crate::private_socket::bind(socket)
        .with_context(|| format!("cannot listen on {}", socket.display()))
}

async fn serve_client(stream: UnixStream, id: u64, daemon: Arc<Daemon>) {
    let sessions = daemon.sessions.clone();
    let (reader, writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let (client, rx) = ClientHandle::new(id);
    let writer_task = tokio::spawn(write_frames(writer, rx, client.pending_counter()));

    let mut greeted = false;
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut reader) => frame,
            _ = client.kicked() => break,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(super::frame::FrameError::Closed) => break,
            Err(e) => {
                reject(&client, None, &e.to_string());
                break;
            }
        };
        let request: Request = match serde_json::from_slice(&frame.json) {
            Ok(request) => request,
            Err(e) => {
                reject(&client, None, &format!("malformed message: {e}"));
                break;
            }
        };
        if !greeted {
            if !greet(&client, request) {
                break;
            }
            greeted = true;
            continue;
        }
        let opened = matches!(request, Request::Open { .. });
        handle(&client, &daemon, request, frame);
        if opened {
            // A burst of opens is read from the buffer without ever waiting: let this
            // client's writer (in this worker's LIFO slot, where no other worker can take
            // it) send each `open-ok` as its terminal starts, not after the whole burst.
            tokio::task::yield_now().await;
        }
    }

    for session in sessions.all() {
        session.unsubscribe(id);
    }
    drop(client);
    let _ = writer_task.await;
}

/// Writes a client's queued frames until its handle is dropped or the socket fails.
async fn write_frames(
    writer: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Arc<AtomicUsize>,
) {
    let mut writer = BufWriter::with_capacity(256 * 1024, writer);
    // Write whatever is queued, then flush once: one syscall for a burst of frames.
    while let Some(frame) = rx.recv().await {
        let mut written = frame.len();
        let mut ok = writer.write_all(&frame).await.is_ok();
        while ok {
            let Ok(next) = rx.try_recv() else { break };
            written += next.len();
            ok = writer.write_all(&next).await.is_ok();
        }
        if !ok || writer.flush().await.is_err() {
            break;
        }
        pending.fetch_sub(written, Ordering::Relaxed);
    }
    let _ = writer.shutdown().await;
}

/// Answers a client's first message: `true` once a `hello` with our protocol is
/// acknowledged, `false` (after saying why) when the connection must close.
fn greet(client: &ClientHandle, request: Request) -> bool {
    match request {
        Request::Hello { protocols } if protocols.contains(&PROTOCOL) => {
            client.send(
                &Event::HelloAck {
                    protocol: PROTOCOL,
                    daemon_version: VERSION.into(),
                    daemon_pid: std::process::id(),
                },
                &[],
            );
            true
        }
        Request::Hello { protocols } => {
            let message =
                format!("no common protocol: daemon speaks {PROTOCOL}, client {protocols:?}");
            client.send(&Event::error(None, ErrorCode::Version, message), &[]);
            false
        }
        _ => {
            reject(client, None, "the first message must be hello");
            false
        }
    }
}

fn reject(client: &ClientHandle, id: Option<&str>, message: &str) {
    tracing::warn!(client = client.id, "closing client: {message}");
    client.send(&Event::error(id, ErrorCode::Protocol, message), &[]);
}

fn handle(client: &ClientHandle, daemon: &Arc<Daemon>, request: Request, frame: Frame) {
    let sessions = &daemon.sessions;
    if request.session_id().is_some_and(|id| !valid_session_id(id)) {
        // Answered without echoing the id: it may hold anything.
        let message = "session ids are 1-128 bytes of [A-Za-z0-9._:-]";
        client.send(&Event::error(None, ErrorCode::Invalid, message), &[]);
        return;
    }
    match request {
        Request::Hello { .. } => client.send(
            &Event::error(None, ErrorCode::Protocol, "hello was already said"),
            &[],
        ),
        Request::Open {
            id,
            command,
            args,
            cwd,
            env,
            cols,
            rows,
        } => {
            let spec = Spawn {
                command,
                args,
                cwd,
                env: env.into_iter().collect(),
                cols,
                rows,
            };
            open(client, sessions, id, spec);
        }
        Request::Input { id } => with_session(client, sessions, &id, |session| {
            if session.input(&frame.payload).is_err() {
                let message = "the terminal holds 1 MiB of unread input: this input was dropped";
                client.send(&Event::error(Some(&id), ErrorCode::Full, message), &[]);
            }
        }),
        Request::Resize { id, cols, rows } => with_session(client, sessions, &id, |session| {
            if let Err(e) = session.resize(cols, rows) {
                let message = format!("cannot resize: {e:#}");
                client.send(&Event::error(Some(&id), ErrorCode::Io, message), &[]);
            }
        }),
        Request::Close { id, signal } => close(client, sessions, id, signal),
        Request::List => {
            let list = sessions.all().iter().map(|s| s.info()).collect();
            client.send(&Event::ListReply { sessions: list }, &[]);
        }
        Request::Subscribe { id, replay, from } => with_session(client, sessions, &id, |session| {
            session.subscribe(client, replay, from)
        }),
        Request::Unsubscribe { id } => with_session(client, sessions, &id, |session| {
            session.unsubscribe(client.id)
        }),
        Request::Upgrade { path } => {
            let (client, daemon) = (client.clone(), daemon.clone());
            // Its own thread: it waits on a dry run and, on success, never comes back.
            tokio::task::spawn_blocking(move || {
                let failure = upgrade(&daemon, PathBuf::from(path));
                tracing::warn!("upgrade refused: {failure:#}");
                client.send(
                    &Event::error(None, ErrorCode::Upgrade, format!("{failure:#}")),
                    &[],
                );
            });
        }
    }
}

/// Runs `f` on session `id`, or answers `ENOENT`.
fn with_session(
    client: &ClientHandle,
    sessions: &Sessions,
    id: &str,
    f: impl FnOnce(&Arc<Session>),
) {
    match sessions.get(id) {
        Some(session) => f(&session),
        None => client.send(
            &Event::error(
                Some(id),
                ErrorCode::NoSuchTerminal,
                format!("no session {id:?}"),
            ),
            &[],
        ),
    }
}

/// Starts terminal `id` unless a live one has that id.
fn open(client: &ClientHandle, sessions: &Arc<Sessions>, id: String, spec: Spawn) {
    if sessions.get(&id).is_some_and(|s| s.alive()) {
        let message = format!("session {id:?} already exists");
        client.send(&Event::error(Some(&id), ErrorCode::Exists, message), &[]);
        return;
    }
    match Session::spawn(id.clone(), spec, forgetter(sessions)) {
        Ok(session) => {
            let pid = session.pid;
            sessions.insert(session);
            tracing::info!(session = %id, pid, "terminal opened");
            client.send(&Event::OpenOk { id, pid }, &[]);
        }
        Err(e) => {
            let message = format!("cannot start the terminal: {e:#}");
            client.send(&Event::error(Some(&id), ErrorCode::Spawn, message), &[]);
        }
    }
}

/// Signals terminal `id` (SIGHUP unless named) and forgets it.
fn close(client: &ClientHandle, sessions: &Sessions, id: String, signal: Option<String>) {
    with_session(client, sessions, &id, |session| {
        let name = signal.unwrap_or_else(|| "SIGHUP".into());
        let Ok(signal) = nix::sys::signal::Signal::from_str(&name) else {
            let message = format!("unknown signal {name:?}");
            client.send(&Event::error(Some(&id), ErrorCode::Protocol, message), &[]);
            return;
        };
        if session.alive() {
            session.close(signal);
        }
        sessions.remove(&id);
        client.send(&Event::Closed { id: id.clone() }, &[]);
    });
}

/// Becomes the `tether-ptyd` at `path` with every terminal; returns why not (the daemon
/// goes on serving as it was).
fn upgrade(daemon: &Daemon, path: PathBuf) -> anyhow::Error {
    // The reaper waits for any child: paused, it cannot take the dry run's exit status.
    let reaping = super::reaper::pause();
    if let Err(e) = super::upgrade::dry_run(&path) {
        return e;
    }
    // Input already accepted reaches its pty first (a program that reads nothing for 2 s
    // loses what it had not read: the one loss an upgrade can cause).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while daemon
        .sessions
        .all()
        .iter()
        .any(|s| s.unwritten_input() > 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    super::session::freeze_output();
    let saved: Vec<_> = daemon.sessions.all().iter().map(|s| s.save()).collect();
    let mut keep: Vec<RawFd> = saved.iter().map(|(_, _, fd)| *fd).collect();
    keep.push(daemon.listener_fd);
    let failure = match super::upgrade::encode(&saved, Some(daemon.listener_fd)) {
        Ok(state) => super::upgrade::exec(&path, &daemon.socket, &state, &keep),
        Err(e) => e,
    };
    super::session::thaw_output();
    drop(reaping);
    failure
}
