//! One terminal: a child on a pty, its replay buffer and offsets, and the clients
//! subscribed to it.
//! Everything runs as tasks — reading the pty on the pty loop ([`super::pty_thread`]),
//! writing its input straight from the request when the pty takes it (else from a task on
//! the pty loop), waiting for its exit on the daemon's runtime — so the daemon's thread
//! count does not grow with its terminals.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, watch};

use super::frame::encode_message;
use super::input::{InputFull, InputQueue};
use super::reaper::{self, Exit};
use super::replay::{replay_bytes, ReplayBuffer};
use super::spawn;
use super::spawn::Spawn;
use super::subscriber::{ClientHandle, PAUSE_AT, PAUSE_LIMIT};
use crate::sync::lock;
use tether_contract::ptyd_protocol::{Event, SessionInfo};

#[derive(Debug)]
struct Shared {
    /// The newest output; its end is the output offset.
    replay: ReplayBuffer,
    /// Input bytes accepted since the terminal opened.
    input_offset: u64,
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
    master: Arc<AsyncFd<OwnedFd>>,
    input: InputQueue,
    shared: Mutex<Shared>,
    /// `true` once the child has exited.
    exited: watch::Sender<bool>,
    /// Called once the exit has reached a subscriber: the daemon forgets the session.
    forget: Box<dyn Fn(&str) + Send + Sync>,
}

/// How long `close` waits after its signal before `SIGKILL`.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long an exit waits for the output still in the pty to be read.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);
/// The most one read of a pty takes (the kernel hands out less).
const READ_CHUNK: usize = 64 * 1024;

/// While set, no pty is read: an upgrade is taking the replay buffers.
static FROZEN: AtomicBool = AtomicBool::new(false);
/// Pty reads under way (read and pushed to the replay buffer, or not started).
static READING: AtomicUsize = AtomicUsize::new(0);

/// Stops reading every pty, and waits until no read is half done: from now on the replay
/// buffers hold every byte read. (Blocking: called from the upgrade's own thread.)
pub fn freeze_output() {
    FROZEN.store(true, Ordering::SeqCst);
    while READING.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads the ptys again (an upgrade failed).
pub fn thaw_output() {
    FROZEN.store(false, Ordering::SeqCst);
}

thread_local! {
    /// One read buffer per runtime thread, not one per terminal.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// One non-blocking read into the thread's buffer, handed to `sink`.
fn read_once(fd: &OwnedFd, sink: impl FnOnce(&[u8])) -> std::io::Result<usize> {
    READ_BUFFER.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        let n = nix::unistd::read(fd.as_raw_fd(), &mut buffer).map_err(std::io::Error::from)?;
        sink(&buffer[..n]);
        Ok(n)
    })
}

impl Session {
    /// Starts the child on a new pty and the tasks that pump its output and input and
    /// report its exit; `forget` is called once its exit has been delivered.
    pub fn spawn(
        id: String,
        spec: Spawn,
        forget: Box<dyn Fn(&str) + Send + Sync>,
    ) -> anyhow::Result<Arc<Session>> {
        let started = spawn::spawn(&spec)?;
        Session::start(
            id,
            started.pid,
            started.master,
            Shared {
                replay: ReplayBuffer::new(replay_bytes()),
                input_offset: 0,
                subscribers: Vec::new(),
                alive: true,
                exit: None,
                size: (spec.cols, spec.rows),
            },
            forget,
        )
    }

    /// A terminal handed over by the daemon image before an upgrade.
    pub fn restore(
        saved: &super::upgrade::SavedSession,
        master: OwnedFd,
        replay: &[u8],
        forget: Box<dyn Fn(&str) + Send + Sync>,
    ) -> anyhow::Result<Arc<Session>> {
        let exit = saved.exit.as_ref().map(|(code, signal)| Event::Exit {
            id: saved.id.clone(),
            code: *code,
            signal: signal.clone(),
        });
        let shared = Shared {
            replay: ReplayBuffer::restored(replay_bytes(), saved.replay_start, replay),
            input_offset: saved.input_offset,
            subscribers: Vec::new(),
            alive: exit.is_none(),
            exit,
            size: (saved.cols, saved.rows),
        };
        Session::start(saved.id.clone(), saved.pid, master, shared, forget)
    }

    /// What an upgrade hands to the next image: everything but the live subscribers.
    pub fn save(&self) -> (super::upgrade::SavedSession, Vec<u8>, std::os::fd::RawFd) {
        let shared = lock(&self.shared);
        let exit = match &shared.exit {
            Some(Event::Exit { code, signal, .. }) => Some((*code, signal.clone())),
            _ => None,
        };
        let saved = super::upgrade::SavedSession {
            id: self.id.clone(),
            pid: self.pid,
            cols: shared.size.0,
            rows: shared.size.1,
            replay_start: shared.replay.start(),
            output_offset: shared.replay.end(),
            input_offset: shared.input_offset,
            exit,
        };
        (
            saved,
            shared.replay.snapshot(),
            self.master.get_ref().as_raw_fd(),
        )
    }

    /// Input queued and not yet written to the pty.
    pub fn unwritten_input(&self) -> usize {
        self.input.queued()
    }

    /// Starts the tasks of a terminal whose child runs as `pid` on `master`.
    fn start(
        id: String,
        pid: u32,
        master: OwnedFd,
        shared: Shared,
        forget: Box<dyn Fn(&str) + Send + Sync>,
    ) -> anyhow::Result<Arc<Session>> {
        let alive = shared.alive;
        let pty_loop = super::pty_thread::handle()?;
        // The pty is watched by the pty loop's reactor, whichever thread asks.
        let master = {
            let _in_pty_loop = pty_loop.enter();
            // SAFETY: an OwnedFd is open and names the same file until the AsyncFd drops it.
            unsafe { AsyncFd::register(master) }
                .map_err(|e| anyhow::anyhow!("cannot watch the pty: {e}"))?
        };
        let master = Arc::new(master);
        let session = Arc::new(Session {
            id,
            pid,
            input: InputQueue::start(&pty_loop, master.clone()),
            master,
            forget,
            exited: watch::Sender::new(!alive),
            shared: Mutex::new(shared),
        });
        if !alive {
            return Ok(session);
        }
        let exit = reaper::watch(pid);
        let (eof_tx, eof_rx) = oneshot::channel::<()>();
        let pump = session.clone();
        pty_loop.spawn(async move {
            pump.pump_output().await;
            drop(eof_tx);
        });
        tokio::spawn(session.clone().report_exit(exit, eof_rx));
        Ok(session)
    }

    /// Reads the pty until it closes, fanning output out.
    async fn pump_output(&self) {
        loop {
            self.wait_for_slow_subscribers().await;
            let Ok(mut ready) = self.master.readable().await else {
                break;
            };
            READING.fetch_add(1, Ordering::SeqCst);
            if FROZEN.load(Ordering::SeqCst) {
                READING.fetch_sub(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let read =
                ready.try_io(|fd| read_once(fd.get_ref(), |chunk| self.broadcast_output(chunk)));
            if matches!(read, Ok(Ok(n)) if n > 0) {
                // One read empties n_tty's 4 KiB buffer; reading again at once would only
                // get EAGAIN after the kernel synchronously flushed the tty's work queue.
                // Wait for the next wakeup instead: the kernel's push of more data wakes us
                // anew, and tokio clears only the readiness this guard saw (a wakeup that
                // came during the read stays set), so nothing is missed.
                ready.clear_ready();
            }
            READING.fetch_sub(1, Ordering::SeqCst);
            match read {
                Ok(Ok(0)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO: every holder of the slave side has closed it.
                Ok(Err(_)) => break,
                Err(_would_block) => {}
            }
        }
    }

    /// Waits for the child itself (not the pty: a background process may hold it open),
    /// lets the output already written reach the subscribers, then reports the exit.
    async fn report_exit(
        self: Arc<Self>,
        exit: oneshot::Receiver<Exit>,
        pty_closed: oneshot::Receiver<()>,
    ) {
        let Exit { code, signal } = exit.await.unwrap_or(Exit {
            code: None,
            signal: None,
        });
        // The pty usually closes right after the child: wait for that (bounded) so the
        // last output is not overtaken by the exit.
        let _ = tokio::time::timeout(DRAIN_LIMIT, pty_closed).await;
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
        self.exited.send_replace(true);
        tracing::info!(session = %self.id, pid = self.pid, ?code, "terminal exited");
        if delivered {
            (self.forget)(&self.id);
        }
    }

    /// Flow control: while a subscriber has more than 1 MiB unsent, stop reading the pty.
    async fn wait_for_slow_subscribers(&self) {
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
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn broadcast_output(&self, chunk: &[u8]) {
        let mut shared = lock(&self.shared);
        let offset = shared.replay.end();
        shared.replay.push(chunk);
        if shared.subscribers.is_empty() {
            return;
        }
        let frame = encode_message(
            &Event::Output {
                id: self.id.clone(),
                offset: Some(offset),
            },
            chunk,
        );
        for sub in &shared.subscribers {
            sub.send_frame(frame.clone());
        }
    }

    /// Adds a subscriber. With `from`, it first gets what the buffer holds from that
    /// offset on (a `gap` first when it is older); else, with `replay`, everything the
    /// buffer holds; then live output. Under the session's lock: no byte is missed or sent twice.
    pub fn subscribe(&self, client: &ClientHandle, replay: bool, from: Option<u64>) {
        let mut shared = lock(&self.shared);
        shared.subscribers.retain(|s| s.id != client.id);
        let start = match from {
            Some(from) => Some(from),
            None if replay => Some(0),
            None => None,
        };
        if let Some(start) = start {
            let resumed = shared.replay.from(start);
            if let (Some((from, to)), Some(_)) = (resumed.gap, from) {
                let id = self.id.clone();
                client.send(&Event::Gap { id, from, to }, &[]);
            }
            if !resumed.bytes.is_empty() {
                let output = Event::Output {
                    id: self.id.clone(),
                    offset: Some(resumed.offset),
                };
                client.send(&output, &resumed.bytes);
            }
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
    /// Accepted bytes count towards the input offset.
    pub fn input(&self, bytes: &[u8]) -> Result<(), InputFull> {
        self.input.push(bytes)?;
        lock(&self.shared).input_offset += bytes.len() as u64;
        Ok(())
    }

    /// Changes the window size.
    pub fn resize(&self, cols: u16, rows: u16) -> anyhow::Result<()> {
        spawn::resize(self.master.get_ref(), cols, rows)?;
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
        let mut exited = self.exited.subscribe();
        tokio::spawn(async move {
            let ended = tokio::time::timeout(CLOSE_GRACE, exited.wait_for(|done| *done)).await;
            if !matches!(ended, Ok(Ok(_))) {
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
        });
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
            output_offset: shared.replay.end(),
            input_offset: shared.input_offset,
        }
    }

    /// True until the child has exited.
    pub fn alive(&self) -> bool {
        lock(&self.shared).alive
    }
}
