//! Relay messages about terminals, turned into pty daemon requests.

use super::hub::{Hub, OAuthCallback};
use super::relay_protocol::Control;
use super::routes;
use crate::ptyd::protocol::Request;

/// Handles a control message from the relay (everything but `tokenExpired` and `ping`).
pub fn from_relay(hub: &Hub, control: Control) {
    match control {
        Control::SessionOpen {
            session_id,
            cols,
            rows,
            command,
        } => {
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
            };
            if let Err(e) = hub
                .to_ptyd(&open, &[])
                .and_then(|_| hub.to_ptyd(&subscribe, &[]))
            {
                hub.to_relay(&Control::Error {
                    session_id: Some(session_id),
                    error: e.to_string(),
                });
            }
        }
        Control::SessionResize {
            session_id,
            cols,
            rows,
        } => {
            forward(
                hub,
                &session_id,
                &Request::Resize {
                    id: session_id.clone(),
                    cols,
                    rows,
                },
                &[],
            );
        }
        Control::SessionClose { session_id } => {
            forward(
                hub,
                &session_id,
                &Request::Close {
                    id: session_id.clone(),
                    signal: None,
                },
                &[],
            );
        }
        Control::HttpRequest {
            id, method, path, ..
        } => {
            // Headers are deliberately ignored: nothing a relayed request claims makes it local.
            hub.to_relay(&routes::answer_relayed(id, &method, &path, &hub.state));
        }
        Control::OAuthCallback { state, code, error } => {
            hub.oauth_callback(OAuthCallback { state, code, error })
        }
        Control::Error { session_id, error } => {
            tracing::warn!(session = ?session_id, "relay reported: {error}")
        }
        other => tracing::debug!("ignoring relay message {other:?}"),
    }
}

/// Keystrokes from the relay for one terminal.
pub fn input(hub: &Hub, session_id: &str, payload: &[u8]) {
    forward(
        hub,
        session_id,
        &Request::Input {
            id: session_id.to_string(),
        },
        payload,
    );
}

fn forward(hub: &Hub, session_id: &str, request: &Request, payload: &[u8]) {
    if let Err(e) = hub.to_ptyd(request, payload) {
        hub.to_relay(&Control::Error {
            session_id: Some(session_id.to_string()),
            error: e.to_string(),
        });
    }
}
