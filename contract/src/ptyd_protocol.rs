//! tether-ptyd's messages, the JSON part of each frame (contract section 6): what
//! `tether-host` and any other client send the daemon, what it answers, its error codes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The one protocol version this daemon speaks.
pub const PROTOCOL: u32 = 1;

/// Messages from a client to the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Request {
    /// First message: the protocol versions the client speaks.
    Hello {
        /// Protocol versions the client speaks.
        protocols: Vec<u32>,
    },
    /// Start a terminal named `id`.
    Open {
        /// The session id.
        id: String,
        /// The program (none: the user's login shell).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// Its arguments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// Working directory (none: the home directory).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        /// Variables added to the cleaned environment.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Width in columns.
        cols: u16,
        /// Height in rows.
        rows: u16,
    },
    /// Keystrokes for `id`, in the payload.
    Input {
        /// The session id.
        id: String,
    },
    /// New window size.
    Resize {
        /// The session id.
        id: String,
        /// Width in columns.
        cols: u16,
        /// Height in rows.
        rows: u16,
    },
    /// End a terminal with `signal` (default `SIGHUP`).
    Close {
        /// The session id.
        id: String,
        /// Signal name (default `SIGHUP`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
    },
    /// Every terminal the daemon holds.
    List,
    /// Receive `id`'s output: from absolute offset `from` (replayed from the buffer, a
    /// `gap` first when it is older), else after the buffered output when `replay`, else live.
    Subscribe {
        /// The session id.
        id: String,
        /// Send the buffered output first.
        #[serde(default)]
        replay: bool,
        /// Resume at this output offset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u64>,
    },
    /// Stop receiving `id`'s output.
    Unsubscribe {
        /// The session id.
        id: String,
    },
    /// Re-execute as the `tether-ptyd` at `path`, keeping every terminal (contract section 6,
    /// "Upgrade in place"); refused with `EUPGRADE` when that cannot be done safely.
    Upgrade {
        /// The new binary.
        path: String,
    },
}

impl Request {
    /// The session a request names, if it names one.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Request::Open { id, .. }
            | Request::Input { id }
            | Request::Resize { id, .. }
            | Request::Close { id, .. }
            | Request::Subscribe { id, .. }
            | Request::Unsubscribe { id } => Some(id),
            Request::Hello { .. } | Request::List | Request::Upgrade { .. } => None,
        }
    }
}

/// One terminal in a `list-reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The client's name for it.
    pub id: String,
    /// The child process id.
    pub pid: u32,
    /// Width in columns.
    pub cols: u16,
    /// Height in rows.
    pub rows: u16,
    /// False once the child has exited.
    pub alive: bool,
    /// Output bytes read from the pty since the terminal opened.
    #[serde(default, rename = "outputOffset")]
    pub output_offset: u64,
    /// Input bytes accepted for the terminal since it opened.
    #[serde(default, rename = "inputOffset")]
    pub input_offset: u64,
}

/// Messages from the daemon to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    /// Answer to `hello`.
    HelloAck {
        /// The protocol version chosen.
        protocol: u32,
        #[serde(rename = "daemonVersion")]
        /// The daemon's version.
        daemon_version: String,
        #[serde(rename = "daemonPid")]
        /// The daemon's pid.
        daemon_pid: u32,
    },
    /// The terminal started.
    OpenOk {
        /// The session id.
        id: String,
        /// The shell's process id.
        pid: u32,
    },
    /// The terminal was closed on request.
    Closed {
        /// The session id.
        id: String,
    },
    /// Answer to `list`.
    ListReply {
        /// Every terminal.
        sessions: Vec<SessionInfo>,
    },
    /// Terminal output, in the payload.
    Output {
        /// The session id.
        id: String,
        /// The output offset of the payload's first byte (absent from older daemons).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// Output `from..to` is no longer in the replay buffer; what follows starts at `to`.
    Gap {
        /// The session id.
        id: String,
        /// The first missing byte's offset.
        from: u64,
        /// The offset after the last missing byte.
        to: u64,
    },
    /// The child exited.
    Exit {
        /// The session id.
        id: String,
        /// The exit status, or `-1` when a signal ended the child.
        code: Option<i32>,
        /// The signal's name (`SIGKILL`), when one ended it.
        signal: Option<String>,
    },
    /// A request failed.
    Error {
        /// The session id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// What failed, as an errno-like word.
        code: ErrorCode,
        /// Why, for a person.
        message: String,
    },
}

/// The codes of an `error` event (contract section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// No protocol both sides speak.
    #[serde(rename = "EVERSION")]
    Version,
    /// A malformed or out-of-order message: the connection closes.
    #[serde(rename = "EPROTO")]
    Protocol,
    /// A well-formed request with a value out of range (a bad session id, …).
    #[serde(rename = "EINVAL")]
    Invalid,
    /// The terminal already holds its 1 MiB of unwritten input.
    #[serde(rename = "EFULL")]
    Full,
    /// An upgrade in place was refused; the daemon goes on.
    #[serde(rename = "EUPGRADE")]
    Upgrade,
    /// No such terminal.
    #[serde(rename = "ENOENT")]
    NoSuchTerminal,
    /// A terminal of that id exists.
    #[serde(rename = "EEXIST")]
    Exists,
    /// The program could not be started.
    #[serde(rename = "ESPAWN")]
    Spawn,
    /// The pty refused an operation (a resize).
    #[serde(rename = "EIO")]
    Io,
    /// A code this build does not know (a newer daemon's).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Version => "EVERSION",
            ErrorCode::Protocol => "EPROTO",
            ErrorCode::Invalid => "EINVAL",
            ErrorCode::Full => "EFULL",
            ErrorCode::Upgrade => "EUPGRADE",
            ErrorCode::NoSuchTerminal => "ENOENT",
            ErrorCode::Exists => "EEXIST",
            ErrorCode::Spawn => "ESPAWN",
            ErrorCode::Io => "EIO",
            ErrorCode::Unknown => "EUNKNOWN",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// An `error` event.
    pub fn error(id: Option<&str>, code: ErrorCode, message: impl Into<String>) -> Self {
        Event::Error {
            id: id.map(str::to_string),
            code,
            message: message.into(),
        }
    }
}

/// Longest session id (contract section 5).
pub const MAX_SESSION_ID: usize = 128;

/// True for 1–128 bytes of `[A-Za-z0-9._:-]`, the only session ids anyone accepts.
pub fn valid_session_id(id: &str) -> bool {
    (1..=MAX_SESSION_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_follow_the_contract() {
        for id in ["a", "s-1", "org_a:term.2", &"x".repeat(128)] {
            assert!(valid_session_id(id), "{id}");
        }
        for id in ["", "a\0b", "a b", "a/b", "\u{1b}[2J", "é", &"x".repeat(129)] {
            assert!(!valid_session_id(id), "{id:?}");
        }
    }

    #[test]
    fn error_codes_are_the_contract_words_and_an_unknown_one_is_kept_apart() {
        let all = [
            ErrorCode::Version,
            ErrorCode::Protocol,
            ErrorCode::Invalid,
            ErrorCode::Full,
            ErrorCode::Upgrade,
            ErrorCode::NoSuchTerminal,
            ErrorCode::Exists,
            ErrorCode::Spawn,
            ErrorCode::Io,
        ];
        for code in all {
            let json = serde_json::to_string(&code).expect("json");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(
                serde_json::from_str::<ErrorCode>(&json).expect("back"),
                code
            );
        }
        let event: Event =
            serde_json::from_str(r#"{"type":"error","code":"ENEWER","message":"m"}"#)
                .expect("an error event with a code from a newer daemon");
        assert!(
            matches!(
                event,
                Event::Error {
                    code: ErrorCode::Unknown,
                    ..
                }
            ),
            "{event:?}"
        );
    }

    #[test]
    fn wire_names_follow_the_contract() {
        let ack = Event::HelloAck {
            protocol: 1,
            daemon_version: "0.1.0".into(),
            daemon_pid: 7,
        };
        assert_eq!(
            serde_json::to_string(&ack).expect("json"),
            r#"{"type":"hello-ack","protocol":1,"daemonVersion":"0.1.0","daemonPid":7}"#
        );
        let open: Request =
            serde_json::from_str(r#"{"type":"open","id":"s1","cols":80,"rows":24}"#).expect("open");
        assert!(matches!(
            open,
            Request::Open {
                cols: 80,
                rows: 24,
                ..
            }
        ));
        let reply = serde_json::to_string(&Event::ListReply { sessions: vec![] }).expect("json");
        assert_eq!(reply, r#"{"type":"list-reply","sessions":[]}"#);
    }
}
