//! The reference relay's side of resume (contract section 4, protocol 2): per terminal,
//! the output bytes received over all connections and the input not yet acknowledged,
//! kept across connections; `resume` once a host's previous connection has closed (or
//! after 5 s), and the unacknowledged input resent after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Message;
use tether_contract::relay_protocol::{
    encode_binary, Control, HelloSession, ResumeSession, KIND_INPUT, PROTOCOL,
};

use super::shared::Shared;

/// How long `resume` waits for the host's previous connection to close.
pub const OLD_CONNECTION_WAIT: Duration = Duration::from_secs(5);

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
