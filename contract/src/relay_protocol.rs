//! What the host service and the relay say to each other over the WebSocket
//! (contract section 4): JSON control messages in text frames, terminal bytes in
//! binary frames. Shared by the runtime (as `tether::host::relay_protocol`) and the
//! harness's reference relay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A terminal the host already has, announced in `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloSession {
    /// The relay's session id.
    pub session_id: String,
    /// The shell's process id.
    pub pid: u32,
    /// Width in columns.
    pub cols: u16,
    /// Height in rows.
    pub rows: u16,
    /// Output bytes the terminal has produced since it opened (protocol 2).
    #[serde(default)]
    pub output_offset: u64,
    /// Input bytes the host has handed to the terminal since it opened (protocol 2).
    #[serde(default)]
    pub input_offset: u64,
}

/// One terminal in `resume`: how much of its output the relay has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeSession {
    /// The relay's session id.
    pub session_id: String,
    /// Output bytes of this terminal the relay has received, over all connections.
    pub output_offset: u64,
}

/// The relay protocol version that resumes without loss (contract section 4).
pub const PROTOCOL: u32 = 2;

/// A JSON control message, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Control {
    /// host → relay, first on every connection.
    #[serde(rename = "hello", rename_all = "camelCase")]
    Hello {
        /// This host's id.
        host_id: String,
        /// The host service's version.
        version: String,
        /// The organization served.
        organization_id: String,
        /// The protocol the host speaks ([`PROTOCOL`]; absent from protocol-1 hosts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u32>,
        /// The terminals that already exist.
        sessions: Vec<HelloSession>,
    },
    /// relay → host, the answer to every `hello` (protocol 2): where to resume each
    /// terminal's output.
    #[serde(rename = "resume")]
    Resume {
        /// The terminals the relay knows, with the output it has of each.
        sessions: Vec<ResumeSession>,
    },
    /// host → relay: output bytes `from..to` of a terminal are gone (out of the replay
    /// buffer); the next byte sent is at `to`.
    #[serde(rename = "session.gap", rename_all = "camelCase")]
    SessionGap {
        /// The relay's session id.
        session_id: String,
        /// The first missing byte's offset.
        from: u64,
        /// The offset after the last missing byte.
        to: u64,
    },
    /// host → relay: input of a terminal up to `inputOffset` has reached the pty daemon.
    #[serde(rename = "input.ack", rename_all = "camelCase")]
    InputAck {
        /// The relay's session id.
        session_id: String,
        /// Input bytes handed to the terminal since it opened.
        input_offset: u64,
    },
    /// Either way: something went wrong; `tokenExpired` from the relay asks for rotation.
    #[serde(rename = "error", rename_all = "camelCase")]
    Error {
        /// The relay's session id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
        /// What went wrong (`tokenExpired`, `invalid_session_id`, …).
        error: String,
    },
    /// relay → host: open a terminal (no `command`: the login shell).
    #[serde(rename = "session.open", rename_all = "camelCase")]
    SessionOpen {
        /// The relay's session id.
        session_id: String,
        /// Width in columns.
        cols: u16,
        /// Height in rows.
        rows: u16,
        /// A command line for `/bin/sh -c`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// relay → host: new window size.
    #[serde(rename = "session.resize", rename_all = "camelCase")]
    SessionResize {
        /// The relay's session id.
        session_id: String,
        /// Width in columns.
        cols: u16,
        /// Height in rows.
        rows: u16,
    },
    /// relay → host: end a terminal.
    #[serde(rename = "session.close", rename_all = "camelCase")]
    SessionClose {
        /// The relay's session id.
        session_id: String,
    },
    /// host → relay: the terminal started.
    #[serde(rename = "session.opened", rename_all = "camelCase")]
    SessionOpened {
        /// The relay's session id.
        session_id: String,
        /// The shell's process id.
        pid: u32,
    },
    /// host → relay: the terminal's process ended.
    #[serde(rename = "session.exit", rename_all = "camelCase")]
    SessionExit {
        /// The relay's session id.
        session_id: String,
        /// The exit code (none when killed by a signal).
        code: Option<i32>,
    },
    /// relay → host: an HTTP request for the host's public routes.
    #[serde(rename = "http.request")]
    HttpRequest {
        /// Pairs the response with its request.
        id: String,
        /// HTTP method.
        method: String,
        /// Path and query, as sent.
        path: String,
        /// Headers (never trusted: nothing relayed is local).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// Body text.
        #[serde(default)]
        body: Option<String>,
    },
    /// host → relay: the answer to an `http.request`.
    #[serde(rename = "http.response")]
    HttpResponse {
        /// Pairs the response with its request.
        id: String,
        /// HTTP status.
        status: u16,
        /// Headers (never trusted: nothing relayed is local).
        headers: BTreeMap<String, String>,
        /// Body text.
        body: String,
    },
    /// relay → host: the browser came back from the authorization server.
    #[serde(rename = "oauth.callback")]
    OAuthCallback {
        /// The OAuth `state` the flow was started with.
        state: String,
        /// The authorization code, on success.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The OAuth error the authorization server redirected with, on failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The callback query's `iss` (RFC 9207), when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iss: Option<String>,
    },
    /// relay → host: liveness probe.
    #[serde(rename = "ping")]
    Ping,
    /// host → relay: liveness answer.
    #[serde(rename = "pong")]
    Pong,
}

/// The `error` the relay sends when a connection's JWT has expired.
pub const TOKEN_EXPIRED: &str = "tokenExpired";

/// The `error` words a host answers a `session.open` with when it refuses it (contract
/// section 5); the `error` field is text, so these are its fixed words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenRefused {
    /// The id breaks contract section 5's rule (the id is not echoed back).
    InvalidSessionId,
    /// A terminal of that id is open.
    SessionExists,
    /// The host's terminal cap is reached.
    TooManySessions,
}

impl OpenRefused {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenRefused::InvalidSessionId => "invalid_session_id",
            OpenRefused::SessionExists => "session_exists",
            OpenRefused::TooManySessions => "too_many_sessions",
        }
    }
}

impl std::fmt::Display for OpenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
/// WebSocket close code meaning "drain: reconnect now, no backoff".
pub const CLOSE_DRAIN: u16 = 4001;
/// Binary frame kind: terminal output, host → relay.
pub const KIND_OUTPUT: u8 = 0x01;
/// Binary frame kind: keystrokes, relay → host.
pub const KIND_INPUT: u8 = 0x02;

/// Parses a text frame; `Ok(None)` for a well-formed message of a type this version does not know.
pub fn parse_control(text: &str) -> Result<Option<Control>, serde_json::Error> {
    match serde_json::from_str::<Control>(text) {
        Ok(control) => Ok(Some(control)),
        Err(e) => {
            let value: serde_json::Value = serde_json::from_str(text)?;
            if value.get("type").and_then(|t| t.as_str()).is_some() {
                let known = [
                    "hello",
                    "resume",
                    "session.gap",
                    "input.ack",
                    "error",
                    "session.open",
                    "session.resize",
                    "session.close",
                    "session.opened",
                    "session.exit",
                    "http.request",
                    "http.response",
                    "oauth.callback",
                    "ping",
                    "pong",
                ];
                if !known.contains(&value["type"].as_str().unwrap_or_default()) {
                    return Ok(None);
                }
            }
            Err(e)
        }
    }
}

/// Encodes a binary frame: kind, session id length, session id, payload.
pub fn encode_binary(kind: u8, session_id: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let id = session_id.as_bytes();
    let len = u8::try_from(id.len()).ok()?;
    let mut out = Vec::with_capacity(2 + id.len() + payload.len());
    out.push(kind);
    out.push(len);
    out.extend_from_slice(id);
    out.extend_from_slice(payload);
    Some(out)
}

/// Decodes a binary frame into kind, session id and payload.
pub fn decode_binary(frame: &[u8]) -> Option<(u8, &str, &[u8])> {
    let (&kind, rest) = frame.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = len as usize;
    if rest.len() < len {
        return None;
    }
    let id = std::str::from_utf8(&rest[..len]).ok()?;
    Some((kind, id, &rest[len..]))
}

/// The relay's HTTP base for browser redirects: `ws` → `http`, `wss` → `https`.
pub fn relay_http_url(relay_url: &str) -> String {
    match relay_url.split_once("://") {
        Some(("wss", rest)) => format!("https://{rest}"),
        Some(("ws", rest)) => format!("http://{rest}"),
        _ => relay_url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_is_reached_over_http_by_browsers() {
        assert_eq!(
            relay_http_url("wss://relay.example.com"),
            "https://relay.example.com"
        );
        assert_eq!(relay_http_url("ws://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn binary_frames_round_trip() {
        let frame = encode_binary(KIND_OUTPUT, "s-1", b"hello").expect("encode");
        assert_eq!(&frame[..5], &[1, 3, b's', b'-', b'1']);
        assert_eq!(
            decode_binary(&frame),
            Some((KIND_OUTPUT, "s-1", &b"hello"[..]))
        );
        assert_eq!(decode_binary(&[2, 10, b'a']), None);
        assert_eq!(decode_binary(&[]), None);
    }

    #[test]
    fn control_messages_use_the_contract_names() {
        let open = parse_control(r#"{"type":"session.open","sessionId":"a","cols":80,"rows":24}"#)
            .expect("json");
        assert_eq!(
            open,
            Some(Control::SessionOpen {
                session_id: "a".into(),
                cols: 80,
                rows: 24,
                command: None
            })
        );
        let expired = parse_control(r#"{"type":"error","error":"tokenExpired"}"#).expect("json");
        assert_eq!(
            expired,
            Some(Control::Error {
                session_id: None,
                error: TOKEN_EXPIRED.into()
            })
        );
        assert_eq!(
            serde_json::to_string(&Control::Pong).expect("json"),
            r#"{"type":"pong"}"#
        );
    }

    #[test]
    fn unknown_types_are_not_errors_but_malformed_known_ones_are() {
        assert_eq!(
            parse_control(r#"{"type":"future.thing","x":1}"#).expect("ignored"),
            None
        );
        assert!(parse_control(r#"{"type":"session.open"}"#).is_err());
        assert!(parse_control("not json").is_err());
    }
}
