//! Relay messages about terminals, turned into pty daemon requests.

use super::hub::{Hub, OAuthCallback};
use super::routes;
use tether_contract::ptyd_protocol::Request;
use tether_contract::relay_protocol::{Control, OpenRefused};

/// Handles a control message from the relay (everything but `tokenExpired` and `ping`).
pub fn from_relay(hub: &Hub, control: Control) {
    match control {
        Control::SessionOpen {
            session_id,
            cols,
            rows,
            command,
        } => open(hub, session_id, cols, rows, command),
        Control::SessionResize {
            session_id,
            cols,
            rows,
        } => {
            let resize = Request::Resize {
                id: session_id.clone(),
                cols,
                rows,
            };
            forward(hub, &session_id, &resize, &[]);
        }
        Control::SessionClose { session_id } => {
            let close = Request::Close {
                id: session_id.clone(),
                signal: None,
            };
            forward(hub, &session_id, &close, &[]);
        }
        Control::HttpRequest {
            id, method, path, ..
        } => {
            // Headers are deliberately ignored: nothing a relayed request claims makes it local.
            hub.to_relay(&routes::answer_relayed(id, &method, &path, &hub.state));
        }
        Control::OAuthCallback {
            state,
            code,
            error,
            iss,
        } => hub.oauth.deliver(OAuthCallback {
            state,
            code,
            error,
            iss,
        }),
        Control::Error { session_id, error } => {
            tracing::warn!(session = ?session_id, "relay reported: {error}")
        }
        other => tracing::debug!("ignoring relay message {other:?}"),
    }
}

/// `session.open`: claims the id (within the terminal cap), opens the terminal in the pty
/// daemon and follows it; any refusal goes back to the relay as an `error`.
fn open(hub: &Hub, session_id: String, cols: u16, rows: u16, command: Option<String>) {
    if let Err(code) = hub.claim_session(&session_id, max_terminals()) {
        tracing::warn!(%code, "refused a session.open from the relay");
        // An invalid id is not echoed back: it may hold anything.
        let session_id = (code != OpenRefused::InvalidSessionId).then_some(session_id);
        hub.to_relay(&Control::Error {
            session_id,
            error: code.as_str().into(),
        });
        return;
    }
    let (command, args) = match command {
        Some(line) => (Some("/bin/sh".to_string()), vec!["-c".to_string(), line]),
        None => (None, vec![]),
    };
    let open = Request::Open {
        id: session_id.clone(),
        command,
        args,
        cwd: None,
        env: Default::default(),
        cols,
        rows,
    };
    let subscribe = Request::Subscribe {
        id: session_id.clone(),
        replay: false,
        from: Some(0),
    };
    if let Err(e) = hub
        .ptyd
        .send(&open, &[])
        .and_then(|_| hub.ptyd.send(&subscribe, &[]))
    {
        hub.release_session(&session_id);
        hub.to_relay(&Control::Error {
            session_id: Some(session_id),
            error: e.to_string(),
        });
    }
}

/// Most input bytes in one ptyd frame: larger relay frames are split (contract section 5).
pub const INPUT_CHUNK: usize = 1024 * 1024;
/// Default for `TETHER_MAX_TERMINALS`.
pub const DEFAULT_MAX_TERMINALS: usize = 64;

/// `TETHER_MAX_TERMINALS`, else 64.
fn max_terminals() -> usize {
    std::env::var(tether_contract::environment::MAX_TERMINALS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_TERMINALS)
}

/// Keystrokes from the relay for one terminal, in pieces ptyd accepts.
pub fn input(hub: &Hub, session_id: &str, payload: &[u8]) {
    for chunk in payload.chunks(INPUT_CHUNK) {
        match hub.input_to_ptyd(session_id, chunk) {
            Ok(true) => hub.input_forwarded(session_id, chunk.len()),
            // Kept back while ptyd upgrades; counted when it goes.
            Ok(false) => {}
            Err(e) => hub.to_relay(&Control::Error {
                session_id: Some(session_id.to_string()),
                error: e.to_string(),
            }),
        }
    }
}

/// Sends `request` to ptyd; false (and an `error` to the relay) when it is not there.
fn forward(hub: &Hub, session_id: &str, request: &Request, payload: &[u8]) -> bool {
    match hub.ptyd.send(request, payload) {
        Ok(()) => true,
        Err(e) => {
            hub.to_relay(&Control::Error {
                session_id: Some(session_id.to_string()),
                error: e.to_string(),
            });
            false
        }
    }
}
