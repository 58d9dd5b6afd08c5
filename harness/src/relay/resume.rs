//! The reference relay's side of resume (contract section 4, protocol 2): per terminal,
//! the output bytes received over all connections and the input not yet acknowledged,
//! kept across connections; `resume` once a host's previous connection has closed (or
//! after 5 s), and the unacknowledged input resent after it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use tether_contract::relay_protocol::{
    encode_binary, Control, HelloSession, ResumeSession, KIND_INPUT, PROTOCOL,
};

use super::shared::Shared;

/// How long `resume` waits for the host's previous connection to close.
pub const OLD_CONNECTION_WAIT: Duration = Duration::from_secs(5);

/// One terminal's streams as the relay counts them.
#[derive(Debug, Default, Clone)]
pub struct RelayStream {
    /// Output bytes received from the host (a `session.gap` moves it to the gap's end).
    pub output_offset: u64,
    /// Input typed and not yet acknowledged, starting at `input_base`.
    pub unacked: VecDeque<u8>,
    /// The input offset of `unacked[0]`.
    pub input_base: u64,
    /// Gaps the host announced, in order.
    pub gaps: Vec<(u64, u64)>,
}

impl RelayStream {
    /// The input offset after the last byte typed.
    pub fn input_end(&self) -> u64 {
        self.input_base + self.unacked.len() as u64
    }

    /// Forgets input up to `offset`, which the host has handed to its pty daemon.
    pub fn acknowledge(&mut self, offset: u64) {
        let done = offset
            .saturating_sub(self.input_base)
            .min(self.unacked.len() as u64);
        self.unacked.drain(..done as usize);
        self.input_base += done;
    }

    /// The input beyond `offset` (what the host's `hello` says ptyd has), to send again.
    pub fn unacked_from(&self, offset: u64) -> Vec<u8> {
        let skip = offset
            .saturating_sub(self.input_base)
            .min(self.unacked.len() as u64);
        self.unacked.range(skip as usize..).copied().collect()
    }
}

/// A host's `hello` on connection `conn`: for protocol 2, once its other connections have
/// closed (or 5 s), answer `resume` with every terminal's output offset and resend the
/// input the host does not have; a protocol-1 host gets input at once.
pub(crate) fn on_hello(
    shared: &Arc<Shared>,
    key: (String, String),
    conn: u64,
    protocol: Option<u32>,
    sessions: Vec<HelloSession>,
) {
    if protocol.unwrap_or(1) < PROTOCOL || shared.resume_off() {
        if let Some(entry) = shared.hosts().get_mut(&key) {
            entry.input_ready = Some(conn);
        }
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        let alone = shared.wait_for(OLD_CONNECTION_WAIT, |hosts| {
            let open = &hosts.get(&key)?.open;
            (open.len() == 1 && open.contains(&conn)).then_some(())
        });
        let _ = alone.await;
        let mut hosts = shared.hosts();
        let Some(entry) = hosts.get_mut(&key) else {
            return;
        };
        if entry.current.as_ref().map(|(id, _)| *id) != Some(conn) {
            return;
        }
        let resume = Control::Resume {
            sessions: entry
                .streams
                .iter()
                .map(|(id, stream)| ResumeSession {
                    session_id: id.clone(),
                    output_offset: stream.output_offset,
                })
                .collect(),
        };
        let have: HashMap<&str, u64> = sessions
            .iter()
            .map(|s| (s.session_id.as_str(), s.input_offset))
            .collect();
        let Some((_, tx)) = entry.current.clone() else {
            return;
        };
        let _ = tx.send(Message::text(
            serde_json::to_string(&resume).unwrap_or_default(),
        ));
        let resend = !crate::lock::lock(&shared.verifier.broken).forget_unacked_input;
        for (id, stream) in entry.streams.iter().filter(|_| resend) {
            let from = have.get(id.as_str()).copied().unwrap_or(stream.input_base);
            let again = stream.unacked_from(from);
            if let (false, Some(frame)) = (again.is_empty(), encode_binary(KIND_INPUT, id, &again))
            {
                let _ = tx.send(Message::binary(frame));
            }
        }
        entry.input_ready = Some(conn);
        drop(hosts);
        shared.changed.notify_waiters();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacknowledged_input_is_kept_and_resent_from_the_hosts_offset() {
        let mut stream = RelayStream::default();
        stream.unacked.extend(b"line1\nline2\nline3\n");
        stream.acknowledge(6);
        assert_eq!(stream.input_base, 6);
        assert_eq!(stream.unacked_from(12), b"line3\n");
        // The host has less than was acknowledged (it lost input): resend what is kept.
        assert_eq!(stream.unacked_from(0), b"line2\nline3\n");
        assert_eq!(stream.input_end(), 18);
    }
}
