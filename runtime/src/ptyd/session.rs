//! One terminal: a child on a pty, its scrollback, and the clients subscribed to it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use tokio::sync::{mpsc, Notify};

use super::protocol::{encode, Event, SessionInfo};
use super::scrollback::{Scrollback, SCROLLBACK_BYTES};
use crate::sync::lock;

/// Unsent bytes at which a subscriber makes the pty pause (contract: 1 MiB).
pub const PAUSE_AT: usize = 1024 * 1024;
/// Unsent bytes at which a subscriber is disconnected (contract: 8 MiB).
pub const DISCONNECT_AT: usize = 8 * 1024 * 1024;
/// How long a pty waits for a slow subscriber before disconnecting it.
pub const PAUSE_LIMIT: Duration = Duration::from_secs(10);

/// The daemon's side of one connected client: where its frames go.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    /// Unique per connection.
    pub id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
    kicked: Arc<AtomicBool>,
    kick: Arc<Notify>,
}

impl ClientHandle {
    /// A handle and the receiving end its writer task drains.
    pub fn new(id: u64) -> (Self, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = ClientHandle {
            id,
            tx,
            pending: Arc::new(AtomicUsize::new(0)),
            kicked: Arc::new(AtomicBool::new(false)),
            kick: Arc::new(Notify::new()),
        };
        (handle, rx)
    }

    /// Queues an encoded frame; a client too far behind is disconnected instead.
    pub fn send_frame(&self, frame: Vec<u8>) {
        if self.kicked.load(Ordering::Relaxed) {
            return;
        }
        let queued = self.pending.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        if queued > DISCONNECT_AT {
            tracing::warn!(
                client = self.id,
                queued,
                "client is more than 8 MiB behind: disconnecting it"
            );
            self.disconnect();
            return;
        }
        let _ = self.tx.send(frame);
    }

    /// Queues an event with a payload.
    pub fn send(&self, event: &Event, payload: &[u8]) {
        self.send_frame(encode(event, payload));
    }

    /// The counter the writer task decrements after writing; holding it keeps no sender alive.
    pub fn pending_counter(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// Bytes queued but not yet written.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Asks the connection to close.
    pub fn disconnect(&self) {
        self.kicked.store(true, Ordering::Relaxed);
        self.kick.notify_one();
    }

    /// Resolves when the connection was asked to close.
    pub async fn kicked(&self) {
        if !self.kicked.load(Ordering::Relaxed) {
            self.kick.notified().await;
        }
    }
}

#[derive(Debug)]
struct Shared {
    scrollback: Scrollback,
    subscribers: Vec<ClientHandle>,
    alive: bool,
    /// How the child ended, once it has: told to late subscribers too.
    exit: Option<Event>,
    size: (u16, u16),
}

/// A running (or exited) terminal.
pub struct Session {
    /// The client's name for it.
    pub id: String,
    /// The child's process id (also its process group: the child leads its own session).
    pub pid: u32,
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: InputQueue,
    shared: Mutex<Shared>,
    /// Called once the exit has reached a subscriber: the daemon forgets the session.
    forget: Box<dyn Fn(&str) + Send + Sync>,
}

/// Unwritten input a session may hold before more is refused (contract: 1 MiB).
pub const INPUT_CAP: usize = 1024 * 1024;
/// How long `close` waits after its signal before `SIGKILL`.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long an exit waits for the output still in the pty to be read.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);

/// A session's input, written by a thread of its own so a program that never reads
/// blocks only its own terminal.
struct InputQueue {
    tx: Mutex<std::sync::mpsc::Sender<Vec<u8>>>,
    queued: Arc<AtomicUsize>,
}

/// Input refused because the session already holds [`INPUT_CAP`] unwritten bytes.
#[derive(Debug)]
pub struct InputFull;

impl InputQueue {
    fn start(mut writer: Box<dyn Write + Send>) -> std::io::Result<InputQueue> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = queued.clone();
        std::thread::Builder::new()
            .name("pty-input".into())
            .spawn(move || {
                for chunk in rx {
                    let ok = writer
                        .write_all(&chunk)
                        .and_then(|()| writer.flush())
                        .is_ok();
                    drained.fetch_sub(chunk.len(), Ordering::Relaxed);
                    if !ok {
                        break;
                    }
                }
            })?;
        Ok(InputQueue {
            tx: Mutex::new(tx),
            queued,
        })
    }

    fn push(&self, bytes: &[u8]) -> Result<(), InputFull> {
        let before = self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        if before + bytes.len() > INPUT_CAP {
            self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
            return Err(InputFull);
        }
        if lock(&self.tx).send(bytes.to_vec()).is_err() {
            // The writer is gone (the pty closed): the bytes go nowhere, as on a hung-up tty.
            self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        }
        Ok(())
    }
}

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    /// Program; `None` is the user's login shell.
    pub command: Option<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Width.
    pub cols: u16,
    /// Height.
    pub rows: u16,
}

impl Session {
    /// Starts the child on a new pty, the threads that pump its output and input, and the
    /// one that reaps it; `forget` is called once its exit has been delivered.
    pub fn spawn(
        id: String,
        spec: Spawn,
        forget: Box<dyn Fn(&str) + Send + Sync>,
    ) -> anyhow::Result<Arc<Session>> {
        let pair = native_pty_system().openpty(PtySize {
            rows: spec.rows.max(1),
            cols: spec.cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        })?;
        let mut cmd = match &spec.command {
            Some(program) => {
                let mut cmd = CommandBuilder::new(program);
                cmd.args(&spec.args);
                cmd
            }
            None => CommandBuilder::new_default_prog(),
        };
        if cmd.get_env("TERM").is_none() {
            cmd.env("TERM", "xterm-256color");
        }
        for (key, value) in &spec.env {
            cmd.env(key, value);
        }
        // After the client's env too: a remote user may not smuggle a credential back in.
        for (name, value) in crate::child_env::changes() {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        match &spec.cwd {
            Some(cwd) => cmd.cwd(cwd),
            None => {
                if let Some(home) = std::env::var_os("HOME") {
                    cmd.cwd(home);
                }
            }
        }
        let child = pair.slave.spawn_command(cmd)?;
        drop(pair.slave);
        let pid = match child.process_id() {
            Some(pid) if pid > 0 => pid,
            _ => anyhow::bail!("the terminal's process has no id"),
        };
        let reader = pair.master.try_clone_reader()?;
        let writer = pair.master.take_writer()?;
        let session = Arc::new(Session {
            id,
            pid,
            master: Mutex::new(pair.master),
            input: InputQueue::start(writer)?,
            forget,
            shared: Mutex::new(Shared {
                scrollback: Scrollback::new(SCROLLBACK_BYTES),
                subscribers: Vec::new(),
                alive: true,
                exit: None,
                size: (spec.cols, spec.rows),
            }),
        });
        // Thread names hold no client input: std panics on a NUL in a thread name.
        let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
        let pump = session.clone();
        std::thread::Builder::new()
            .name("pty-output".into())
            .spawn(move || {
                pump.pump_output(reader);
                drop(eof_tx);
            })?;
        let reaper = session.clone();
        std::thread::Builder::new()
            .name("pty-reaper".into())
            .spawn(move || reaper.reap(child, eof_rx))?;
        Ok(session)
    }

    /// Reads the pty until it closes, fanning output out.
    fn pump_output(&self, mut reader: Box<dyn Read + Send>) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            self.wait_for_slow_subscribers();
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.broadcast_output(&buf[..n]),
            }
        }
    }

    /// Waits for the child itself (not the pty: a background process may hold it open),
    /// lets the output already written reach the subscribers, then reports the exit.
    fn reap(&self, child: Box<dyn Child + Send + Sync>, pty_closed: std::sync::mpsc::Receiver<()>) {
        use nix::sys::wait::{waitpid, WaitStatus};
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        let (code, signal) = loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break (Some(code), None),
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    break (Some(-1), Some(signal.as_str().to_string()))
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break (None, None),
            }
        };
        drop(child);
        // The pty usually closes right after the child: wait for that (bounded) so the
        // last output is not overtaken by the exit.
        let _ = pty_closed.recv_timeout(DRAIN_LIMIT);
        let event = Event::Exit {
            id: self.id.clone(),
            code,
            signal,
        };
        let delivered = {
            let mut shared = lock(&self.shared);
            shared.alive = false;
            for sub in &shared.subscribers {
                sub.send(&event, &[]);
            }
            shared.exit = Some(event);
            !shared.subscribers.is_empty()
        };
        tracing::info!(session = %self.id, pid = self.pid, ?code, "terminal exited");
        if delivered {
            (self.forget)(&self.id);
        }
    }

    /// Flow control: while a subscriber has more than 1 MiB unsent, stop reading the pty.
    fn wait_for_slow_subscribers(&self) {
        let started = Instant::now();
        loop {
            let slow: Vec<ClientHandle> = lock(&self.shared)
                .subscribers
                .iter()
                .filter(|s| s.pending() > PAUSE_AT)
                .cloned()
                .collect();
            if slow.is_empty() {
                return;
            }
            if started.elapsed() > PAUSE_LIMIT {
                for sub in slow {
                    tracing::warn!(client = sub.id, session = %self.id, "subscriber did not drain for 10 s: disconnecting it");
                    sub.disconnect();
                    self.unsubscribe(sub.id);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn broadcast_output(&self, chunk: &[u8]) {
        let mut shared = lock(&self.shared);
        shared.scrollback.push(chunk);
        if shared.subscribers.is_empty() {
            return;
        }
        let frame = encode(
            &Event::Output {
                id: self.id.clone(),
            },
            chunk,
        );
        for sub in &shared.subscribers {
            sub.send_frame(frame.clone());
        }
    }

    /// Adds a subscriber; with `replay`, it first gets one `output` with the scrollback.
    pub fn subscribe(&self, client: &ClientHandle, replay: bool) {
        let mut shared = lock(&self.shared);
        shared.subscribers.retain(|s| s.id != client.id);
        if replay {
            client.send(
                &Event::Output {
                    id: self.id.clone(),
                },
                &shared.scrollback.snapshot(),
            );
        }
        // A terminal that already ended says so, or a late subscriber would wait forever;
        // once told, the daemon forgets it.
        if let Some(exit) = &shared.exit {
            client.send(exit, &[]);
            drop(shared);
            (self.forget)(&self.id);
            return;
        }
        shared.subscribers.push(client.clone());
    }

    /// Removes a subscriber.
    pub fn unsubscribe(&self, client_id: u64) {
        lock(&self.shared).subscribers.retain(|s| s.id != client_id);
    }

    /// Queues keystrokes for the pty; refused when [`INPUT_CAP`] bytes are already waiting.
    pub fn input(&self, bytes: &[u8]) -> Result<(), InputFull> {
        self.input.push(bytes)
    }

    /// Changes the window size.
    pub fn resize(&self, cols: u16, rows: u16) -> anyhow::Result<()> {
        lock(&self.master).resize(PtySize {
            rows: rows.max(1),
            cols: cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        })?;
        lock(&self.shared).size = (cols, rows);
        Ok(())
    }

    /// Sends `signal` to the child's whole process group, then `SIGKILL` after
    /// [`CLOSE_GRACE`] if the child is still there (`trap '' HUP`, a foreground job).
    pub fn close(self: &Arc<Self>, signal: nix::sys::signal::Signal) {
        let group = nix::unistd::Pid::from_raw(self.pid as i32);
        if let Err(e) = nix::sys::signal::killpg(group, signal) {
            tracing::debug!(session = %self.id, "signal failed: {e}");
        }
        let session = self.clone();
        let spawned = std::thread::Builder::new()
            .name("pty-close".into())
            .spawn(move || {
                let deadline = Instant::now() + CLOSE_GRACE;
                while session.alive() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            });
        if spawned.is_err() {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// The `list-reply` entry.
    pub fn info(&self) -> SessionInfo {
        let shared = lock(&self.shared);
        SessionInfo {
            id: self.id.clone(),
            pid: self.pid,
            cols: shared.size.0,
            rows: shared.size.1,
            alive: shared.alive,
        }
    }

    /// True until the child has exited.
    pub fn alive(&self) -> bool {
        lock(&self.shared).alive
    }
}
