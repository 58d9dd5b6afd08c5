//! A terminal's input: written straight to the pty when nothing waits, else queued for a
//! task on the pty loop that waits for the pty to take more, so a program that never reads
//! blocks only its own terminal.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::sync::lock;

/// Unwritten input a session may hold before more is refused (contract: 1 MiB).
pub const INPUT_CAP: usize = 1024 * 1024;

/// A session's input: what the pty does not take at once waits here for the session's
/// writer task.
pub(super) struct InputQueue {
    master: Arc<AsyncFd<OwnedFd>>,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    /// Held while input is written directly or queued, so two pushes never interleave.
    order: Mutex<()>,
}

/// Input refused because the session already holds [`INPUT_CAP`] unwritten bytes.
#[derive(Debug)]
pub struct InputFull;

impl InputQueue {
    pub(super) fn start(pty_loop: &Handle, master: Arc<AsyncFd<OwnedFd>>) -> InputQueue {
        let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        pty_loop.spawn(write_input(master.clone(), rx, queued.clone()));
        InputQueue {
            master,
            tx,
            queued,
            order: Mutex::new(()),
        }
    }

    /// Writes what the pty takes at once when nothing is queued (a keystroke reaches the
    /// pty without a hand-off to the pty loop), and queues the rest.
    pub(super) fn push(&self, mut bytes: &[u8]) -> Result<(), InputFull> {
        let _order = lock(&self.order);
        // Only the writer task changes `queued` meanwhile, and only downwards.
        let queued = self.queued.load(Ordering::Relaxed);
        if queued + bytes.len() > INPUT_CAP {
            return Err(InputFull);
        }
        if queued == 0 {
            // Full (EAGAIN), interrupted, or an error the writer task will meet and end on:
            // then all of it is queued.
            if let Ok(n) = nix::unistd::write(self.master.get_ref(), bytes) {
                bytes = &bytes[n..];
            }
            if bytes.is_empty() {
                return Ok(());
            }
        }
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        if self.tx.send(bytes.to_vec()).is_err() {
            // The writer is gone (the pty closed): the bytes go nowhere, as on a hung-up tty.
            self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Input queued and not yet written to the pty.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

/// Writes each queued chunk whole, waiting (without a thread) while the pty is full.
async fn write_input(
    master: Arc<AsyncFd<OwnedFd>>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
) {
    while let Some(chunk) = rx.recv().await {
        let written = write_all(&master, &chunk).await;
        queued.fetch_sub(chunk.len(), Ordering::Relaxed);
        if written.is_err() {
            break;
        }
    }
}

async fn write_all(master: &AsyncFd<OwnedFd>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let mut ready = master.writable().await?;
        match ready
            .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => bytes = &bytes[n..],
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}
