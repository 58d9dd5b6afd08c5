//! The client side of the relay: a terminal on a host, as a test or benchmark uses it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use axum::extract::ws::Message;
use tether_contract::relay_protocol::{encode_binary, Control, KIND_INPUT};
use tokio::sync::mpsc;

use super::shared::{Shared, TerminalEvent};

/// A terminal on a host, reached through the relay.
pub struct Terminal {
    /// The relay's session id.
    pub session_id: String,
    /// The shell's pid, once opened.
    pub pid: Option<u32>,
    org: String,
    host: String,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<TerminalEvent>,
    /// Output received and not yet consumed by [`Terminal::read_until`].
    pub buffer: Vec<u8>,
    /// Output bytes received in all (the relay's count for this reader).
    pub received: u64,
    /// `session.gap`s announced: `(from, to, bytes received before it)`.
    pub gaps: Vec<(u64, u64, u64)>,
}

impl Terminal {
    pub(crate) fn new(
        shared: Arc<Shared>,
        org: &str,
        host: &str,
        session: &str,
        rx: mpsc::UnboundedReceiver<TerminalEvent>,
    ) -> Self {
        Terminal {
            session_id: session.into(),
            pid: None,
            org: org.into(),
            host: host.into(),
            shared,
            rx,
            buffer: Vec::new(),
            received: 0,
            gaps: Vec::new(),
        }
    }

    /// Waits for `session.opened`; fails on an error or an exit first.
    pub async fn wait_opened(&mut self, limit: Duration) -> anyhow::Result<()> {
        let wait = async {
            loop {
                match self.rx.recv().await {
                    Some(TerminalEvent::Opened(pid)) => return Ok(pid),
                    Some(TerminalEvent::Error(e)) => {
                        bail!("the host could not open the terminal: {e}")
                    }
                    Some(TerminalEvent::Output(bytes)) => self.take_output(bytes),
                    Some(TerminalEvent::Exit(code)) => {
                        bail!("the terminal exited at once ({code:?})")
                    }
                    Some(TerminalEvent::Gap(from, to)) => self.gaps.push((from, to, self.received)),
                    None => bail!("the relay dropped the terminal"),
                }
            }
        };
        self.pid = Some(
            tokio::time::timeout(limit, wait)
                .await
                .map_err(|_| anyhow!("no session.opened within {limit:?}"))??,
        );
        Ok(())
    }

    /// The next thing the host said about this terminal, unread by anything else;
    /// `None` when nothing came within `limit` or the relay dropped the terminal.
    pub async fn next_event(&mut self, limit: Duration) -> Option<TerminalEvent> {
        tokio::time::timeout(limit, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// A handle that types into this terminal while something else reads it.
    pub fn typist(&self) -> Typist {
        Typist {
            shared: self.shared.clone(),
            org: self.org.clone(),
            host: self.host.clone(),
            session_id: self.session_id.clone(),
        }
    }

    fn take_output(&mut self, bytes: Vec<u8>) {
        self.received += bytes.len() as u64;
        self.buffer.extend(bytes);
    }

    /// Types `bytes` into the terminal (kept by the relay until the host acknowledges
    /// them, so typing survives a reconnect).
    pub fn send(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let frame =
            input_frame(&self.session_id, bytes).ok_or_else(|| anyhow!("session id too long"))?;
        self.shared
            .send_input(&self.org, &self.host, &self.session_id, frame, bytes)
    }

    /// Changes the window size.
    pub fn resize(&self, cols: u16, rows: u16) -> anyhow::Result<()> {
        self.shared.to_host_json(
            &self.org,
            &self.host,
            &Control::SessionResize {
                session_id: self.session_id.clone(),
                cols,
                rows,
            },
        )
    }

    /// Asks the host to close the terminal.
    pub fn close(&self) -> anyhow::Result<()> {
        self.shared.to_host_json(
            &self.org,
            &self.host,
            &Control::SessionClose {
                session_id: self.session_id.clone(),
            },
        )
    }

    /// Reads output until it contains `needle`; returns everything read, and consumes it.
    pub async fn read_until(&mut self, needle: &str, limit: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(at) = find(&self.buffer, needle.as_bytes()) {
                let taken: Vec<u8> = self.buffer.drain(..at + needle.len()).collect();
                return Ok(String::from_utf8_lossy(&taken).into_owned());
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!(
                    "no {needle:?} within {limit:?}; saw {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
                Ok(None) => bail!("the relay dropped the terminal"),
                Ok(Some(TerminalEvent::Output(bytes))) => self.take_output(bytes),
                Ok(Some(TerminalEvent::Gap(from, to))) => self.gaps.push((from, to, self.received)),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Counts output bytes until at least `n` arrived; returns how many.
    pub async fn read_bytes(&mut self, n: usize, limit: Duration) -> anyhow::Result<usize> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut total = std::mem::take(&mut self.buffer).len();
        while total < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!("only {total} of {n} bytes within {limit:?}"),
                Ok(None) => bail!("the relay dropped the terminal"),
                Ok(Some(TerminalEvent::Output(bytes))) => {
                    self.received += bytes.len() as u64;
                    total += bytes.len();
                }
                Ok(Some(TerminalEvent::Gap(from, to))) => self.gaps.push((from, to, self.received)),
                Ok(Some(_)) => {}
            }
        }
        Ok(total)
    }

    /// Waits for an `error` about this terminal; returns its code.
    pub async fn error(&mut self, limit: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!("no error within {limit:?}"),
                Ok(None) => bail!("the relay dropped the terminal"),
                Ok(Some(TerminalEvent::Error(e))) => return Ok(e),
                Ok(Some(TerminalEvent::Output(bytes))) => self.take_output(bytes),
                Ok(Some(TerminalEvent::Gap(from, to))) => self.gaps.push((from, to, self.received)),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Waits for `session.exit`.
    pub async fn exit_code(&mut self, limit: Duration) -> anyhow::Result<Option<i32>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Err(_) => bail!("no session.exit within {limit:?}"),
                Ok(None) => bail!("the relay dropped the terminal"),
                Ok(Some(TerminalEvent::Exit(code))) => return Ok(code),
                Ok(Some(TerminalEvent::Output(bytes))) => self.take_output(bytes),
                Ok(Some(TerminalEvent::Gap(from, to))) => self.gaps.push((from, to, self.received)),
                Ok(Some(_)) => {}
            }
        }
    }
}

/// Types into a terminal (see [`Terminal::typist`]).
#[derive(Clone)]
pub struct Typist {
    shared: Arc<Shared>,
    org: String,
    host: String,
    session_id: String,
}

impl Typist {
    /// Types `bytes`, as [`Terminal::send`] does.
    pub fn send(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let frame =
            input_frame(&self.session_id, bytes).ok_or_else(|| anyhow!("session id too long"))?;
        self.shared
            .send_input(&self.org, &self.host, &self.session_id, frame, bytes)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len().max(1))
        .position(|w| w == needle)
}

/// Opens a terminal on a host and waits for `session.opened`.
pub(crate) async fn open_terminal(
    shared: &Arc<Shared>,
    org: &str,
    host: &str,
    command: Option<&str>,
    session: Option<&str>,
) -> anyhow::Result<Terminal> {
    let session = session
        .map(str::to_string)
        .unwrap_or_else(|| format!("term_{}", shared.next_conn.fetch_add(1, Ordering::SeqCst)));
    let rx = shared.register_terminal(org, host, &session);
    let open = Control::SessionOpen {
        session_id: session.clone(),
        cols: 80,
        rows: 24,
        command: command.map(str::to_string),
    };
    shared.to_host_json(org, host, &open)?;
    let mut terminal = Terminal::new(shared.clone(), org, host, &session, rx);
    terminal.wait_opened(Duration::from_secs(10)).await?;
    Ok(terminal)
}

/// Encodes keystrokes for a terminal.
fn input_frame(session: &str, bytes: &[u8]) -> Option<Message> {
    encode_binary(KIND_INPUT, session, bytes).map(Message::binary)
}
