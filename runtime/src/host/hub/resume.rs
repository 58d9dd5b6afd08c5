//! Resume: what `hello` announces, what the relay's `resume` names, and following each
//! terminal from there exactly once (input acknowledged, output owed).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Hub;
use crate::host::streams::{admit, resume_point, Mode};
use crate::sync::lock;
use tether_contract::ptyd_protocol::{Request, SessionInfo};
use tether_contract::relay_protocol::{Control, HelloSession, ResumeSession};

impl Hub {
    /// The relay answered `hello` with `resume`: each listed terminal's output goes on
    /// from the relay's offset (ptyd replays it), the others' from the offset `hello` named.
    pub fn resume(&self, listed: Vec<ResumeSession>) {
        let listed: HashMap<String, u64> = listed
            .into_iter()
            .map(|s| (s.session_id, s.output_offset))
            .collect();
        let mut subscribe = Vec::new();
        {
            let mut terminals = lock(&self.terminals);
            for (id, stream) in terminals.iter_mut() {
                // Listed: from the relay's offset. Opened on this connection: from where its
                // output was held back. Otherwise the relay does not know it: from `hello` on.
                match listed.get(id) {
                    Some(offset) => stream.next_output = Some(*offset),
                    None if stream.next_output.is_none() => stream.next_output = stream.at_hello,
                    None => {}
                }
                subscribe.push((id.clone(), stream.next_output));
            }
            *lock(&self.mode) = Mode::Resumed;
        }
        let replayed = !listed.is_empty();
        *lock(&self.listed) = listed;
        if replayed {
            crate::metrics::global().resume_replayed();
        }
        for (id, from) in subscribe {
            let request = Request::Subscribe {
                id: id.clone(),
                replay: false,
                from,
            };
            if self.ptyd.send(&request, &[]).is_err() {
                return;
            }
            tracing::debug!(session = %id, ?from, "resuming output");
        }
    }

    /// Stops following every terminal while no relay connection has resumed: ptyd keeps
    /// their output in its replay buffers, and a terminal that ends meanwhile stays until
    /// its exit (after its last bytes) can reach the relay.
    pub(super) fn unsubscribe_all(&self) {
        let ids: Vec<String> = lock(&self.terminals).keys().cloned().collect();
        for id in ids {
            if self.ptyd.send(&Request::Unsubscribe { id }, &[]).is_err() {
                return;
            }
        }
    }

    /// No `resume` within 5 s of `hello`: a protocol-1 relay gets output from the offsets
    /// `hello` named (and the terminals it opened on this connection from the start).
    pub fn resume_timed_out(&self) {
        if *lock(&self.mode) != Mode::Holding || lock(&self.relay).is_none() {
            return;
        }
        if !self.said_protocol_1.swap(true, Ordering::Relaxed) {
            tracing::warn!("the relay did not answer hello with resume: it speaks protocol 1, so output after a reconnect may be lost or repeated (resume is off for this relay)");
        }
        self.resume(Vec::new());
    }

    /// After (re)connecting to ptyd: follow every terminal from where the relay connection
    /// stands, once it has resumed (until then `resume` does it).
    pub async fn resubscribe_all(&self) {
        // Ended ones too: their last bytes and their exit have yet to reach the relay.
        let sessions = self.list().await;
        let resumed = *lock(&self.mode) == Mode::Resumed;
        if !resumed {
            return;
        }
        for session in sessions {
            let from = {
                let listed = lock(&self.listed);
                let mut terminals = lock(&self.terminals);
                let stream = terminals.entry(session.id.clone()).or_default();
                resume_point(stream, listed.get(&session.id).copied())
            };
            let request = Request::Subscribe {
                id: session.id.clone(),
                replay: false,
                from,
            };
            if self.ptyd.send(&request, &[]).is_err() {
                return;
            }
            tracing::info!(session = %session.id, "re-attached to terminal");
        }
    }

    /// Counts input handed to ptyd for `id`; acknowledges at once after 64 KiB.
    pub fn input_forwarded(&self, id: &str, n: usize) {
        crate::metrics::global().input(n);
        let ack = lock(&self.terminals).get_mut(id).and_then(|stream| {
            stream.forwarded(n);
            stream.ack_due(Instant::now(), false)
        });
        if let Some(input_offset) = ack {
            self.to_relay(&Control::InputAck {
                session_id: id.to_string(),
                input_offset,
            });
        }
    }

    /// Sends the `input.ack`s that are due (called every 50 ms on a live connection).
    pub fn flush_acks(&self) {
        let now = Instant::now();
        let due: Vec<(String, u64)> = lock(&self.terminals)
            .iter_mut()
            .filter_map(|(id, stream)| stream.ack_due(now, true).map(|o| (id.clone(), o)))
            .collect();
        for (session_id, input_offset) in due {
            self.to_relay(&Control::InputAck {
                session_id,
                input_offset,
            });
        }
    }

    /// The terminals for a new connection's `hello`: where each stands is that
    /// connection's to learn from `resume`.
    pub async fn sessions_for_hello(&self) -> Vec<HelloSession> {
        let sessions = self.sessions().await;
        let mut terminals = lock(&self.terminals);
        for session in &sessions {
            if let Some(stream) = terminals.get_mut(&session.session_id) {
                stream.next_output = None;
                stream.at_hello = Some(session.output_offset);
            }
        }
        sessions
    }

    /// The live terminals the pty daemon holds, with their offsets, for `hello`.
    pub(super) async fn sessions(&self) -> Vec<HelloSession> {
        self.list()
            .await
            .into_iter()
            // `hello` names the live ones; an ended one is followed after `resume` for its
            // last bytes and its exit.
            .filter(|s| s.alive)
            .map(|s| HelloSession {
                session_id: s.id,
                pid: s.pid,
                cols: s.cols,
                rows: s.rows,
                output_offset: s.output_offset,
                input_offset: s.input_offset,
            })
            .collect()
    }

    /// Every terminal the pty daemon holds, ended ones included; each becomes one of ours.
    /// A daemon that goes away before it answers (an upgrade execs it) is asked again once
    /// it is back (within 5 s); one that is not connected gets no question.
    pub(super) async fn list(&self) -> Vec<SessionInfo> {
        for _ in 0..3 {
            let Some(rx) = self.ptyd.ask_list() else {
                return Vec::new();
            };
            match tokio::time::timeout(std::time::Duration::from_secs(5), rx).await {
                Ok(Ok(list)) => return self.adopt(list),
                // The connection ended and its waiters were dropped.
                Ok(Err(_)) => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    if !self
                        .ptyd
                        .wait_connected(std::time::Duration::from_secs(5))
                        .await
                    {
                        return Vec::new();
                    }
                }
                Err(_) => return Vec::new(),
            }
        }
        Vec::new()
    }

    /// Makes every terminal of a `list-reply` one of ours, with ptyd's input count.
    pub(super) fn adopt(&self, list: Vec<SessionInfo>) -> Vec<SessionInfo> {
        let mut terminals = lock(&self.terminals);
        for s in &list {
            let stream = terminals.entry(s.id.clone()).or_default();
            // ptyd's count is what the relay may rely on (input in flight to ptyd was
            // queued before this `list` and is counted in it).
            stream.input_offset = stream.input_offset.max(s.input_offset);
            stream.acked = stream.input_offset;
        }
        list
    }

    /// The part of an output chunk the relay connection is owed: nothing while holding
    /// for `resume`, then exactly the bytes after the offset it stands at (all of it from
    /// a daemon that sends no offsets).
    pub(super) fn owed(
        &self,
        id: &str,
        offset: Option<u64>,
        len: usize,
    ) -> Option<std::ops::Range<usize>> {
        if *lock(&self.mode) == Mode::Holding {
            return None;
        }
        let mut terminals = lock(&self.terminals);
        match (offset, terminals.get_mut(id)) {
            (Some(offset), Some(stream)) => admit(&mut stream.next_output, offset, len),
            _ => Some(0..len),
        }
    }
}
