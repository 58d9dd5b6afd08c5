//! Per-scenario transcripts for the conformance report (contract section 12): what crossed
//! each edge — HTTP exchanges at the authorization server's front door, relay frames both
//! ways, tether commands and their output, host log tails — with monotonic timestamps.
//! Every recorded byte passes [`redact`] on the way in, so no secret is ever stored.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use regex::Regex;
use serde::Serialize;

use crate::lock::lock;

/// Events kept per scenario; later ones are counted, not kept.
const MAX_EVENTS: usize = 400;
/// Characters kept of one body, output or log.
const MAX_TEXT: usize = 4000;

/// One thing that crossed an edge.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Milliseconds since the scenario started.
    pub at_ms: f64,
    /// What it was.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// An HTTP exchange with a reference server.
    Http {
        /// Which server (`auth`).
        server: String,
        /// Request method.
        method: String,
        /// Request target.
        path: String,
        /// Response status (`None` when no answer came).
        status: Option<u16>,
        /// Request headers.
        request_headers: Vec<(String, String)>,
        /// Request body.
        request_body: String,
        /// Response headers.
        response_headers: Vec<(String, String)>,
        /// Response body.
        response_body: String,
    },
    /// A relay frame.
    Frame {
        /// `to_host` or `from_host`.
        direction: &'static str,
        /// The connection's number at the relay.
        connection: u64,
        /// JSON verbatim, or a binary frame's kind, session, length and first bytes.
        text: String,
    },
    /// A tether command.
    Command {
        /// What ran.
        argv: String,
        /// Its exit status.
        exit: String,
        /// Standard output.
        stdout: String,
        /// Standard error.
        stderr: String,
    },
    /// The tail of a log file.
    Log {
        /// The file.
        name: String,
        /// Its last lines.
        tail: String,
    },
    /// Anything else worth seeing.
    Note {
        /// The text.
        text: String,
    },
}

/// One scenario's transcript.
#[derive(Debug)]
pub struct Transcript {
    started: Instant,
    events: Mutex<Vec<Event>>,
    omitted: Mutex<usize>,
}

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Arc<Transcript> {
        Arc::new(Transcript {
            started: Instant::now(),
            events: Mutex::new(Vec::new()),
            omitted: Mutex::new(0),
        })
    }

    /// Adds `kind`, redacted and cut to size, stamped with the time since the start.
    pub fn push(&self, kind: EventKind) {
        let at_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let mut events = lock(&self.events);
        if events.len() >= MAX_EVENTS {
            *lock(&self.omitted) += 1;
            return;
        }
        events.push(Event {
            at_ms,
            kind: clean(kind),
        });
    }

    /// The events so far, and how many were left out.
    pub fn events(&self) -> (Vec<Event>, usize) {
        (lock(&self.events).clone(), *lock(&self.omitted))
    }
}

tokio::task_local! {
    static CURRENT: Arc<Transcript>;
}

/// The transcript of the scenario running on this task, if any. Servers take it when
/// they start (in the scenario's task) and record into it from their own runtime.
pub fn current() -> Option<Arc<Transcript>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Records `kind` into the current scenario's transcript (nothing outside a scenario).
pub fn record(kind: EventKind) {
    if let Some(transcript) = current() {
        transcript.push(kind);
    }
}

/// Runs `body` with `transcript` as the current one.
pub async fn scope<F: std::future::Future>(transcript: Arc<Transcript>, body: F) -> F::Output {
    CURRENT.scope(transcript, body).await
}

/// Secrets seen in this process (issued by the reference servers, read from fixtures):
/// each is replaced wherever it appears, besides the patterns below.
fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Every secret used in this process, for the check that none reached a report.
fn used() -> &'static Mutex<Vec<String>> {
    static USED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    USED.get_or_init(|| Mutex::new(Vec::new()))
}

/// Registers a secret of a shape no pattern knows: it is replaced wherever it appears.
pub fn secret(value: &str) {
    if value.len() < 8 {
        return;
    }
    let mut secrets = lock(registry());
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
    }
    drop(secrets);
    issued(value);
}

/// Notes a secret the reference servers issued in a shape the patterns redact (their
/// tokens, keys and codes), so that the report check can look for it.
pub fn issued(value: &str) {
    lock(used()).push(value.to_string());
}

/// Every secret registered or issued so far.
pub fn secrets() -> Vec<String> {
    lock(used()).clone()
}

/// A secret as section 1 shows it: its first characters and an ellipsis.
pub fn prefix(secret: &str) -> String {
    let keep: String = secret.chars().take(10).collect();
    format!("{keep}…")
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static PATTERNS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let rules: [(&str, &str); 7] = [
            // PEM private keys, whole.
            (
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
                "pem",
            ),
            // JWTs (three base64url parts, the first a JSON header).
            (r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", "token"),
            // API keys.
            (r"sk_(?:live|test)_[A-Za-z0-9_-]{6,}", "token"),
            // The reference servers' refresh, access, session and device tokens and codes.
            (r"\b(?:rt|at|sess|dc|code)_[A-Za-z0-9_-]{30,}", "token"),
            // Credentials in URLs (proxy passwords).
            (r"(?P<keep>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", "url"),
            // Header values that carry credentials.
            (
                r"(?im)^(?P<keep>(?:authorization|proxy-authorization|x-api-key|cookie|set-cookie)\s*[:=]\s*)(?P<value>.+)$",
                "header",
            ),
            // Token-bearing JSON fields and form parameters.
            (
                r#"(?P<keep>"?(?:access_token|refresh_token|id_token|client_secret|device_code|code_verifier|accessToken|refreshToken|token|password)"?\s*[:=]\s*"?)(?P<value>[^"&\s,}]{8,})"#,
                "field",
            ),
        ];
        rules
            .into_iter()
            .filter_map(|(re, kind)| Regex::new(re).ok().map(|re| (re, kind)))
            .collect()
    })
}

/// `text` with every secret replaced by its prefix: registered secrets, then the
/// patterns (private keys, JWTs, API keys, URL passwords, credential headers and fields).
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    for secret in lock(registry()).iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), &prefix(secret));
        }
    }
    for (re, kind) in patterns() {
        out = match *kind {
            "pem" => re
                .replace_all(&out, "-----PRIVATE KEY (redacted)-----")
                .into_owned(),
            "token" => re
                .replace_all(&out, |c: &regex::Captures<'_>| prefix(&c[0]))
                .into_owned(),
            "url" => re.replace_all(&out, "${keep}…@").into_owned(),
            _ => re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let value = &c["value"];
                    // Already a prefix: leave it.
                    if value.ends_with('…') {
                        return c[0].to_string();
                    }
                    // `Bearer x…`: keep the scheme word.
                    let shown = match value.split_once(' ') {
                        Some((scheme, rest)) if scheme.len() < 10 => {
                            format!("{scheme} {}", prefix(rest))
                        }
                        _ => prefix(value),
                    };
                    format!("{}{shown}", &c["keep"])
                })
                .into_owned(),
        };
    }
    out
}

/// At most [`MAX_TEXT`] characters of `text` (the start; a mark says how much went).
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}… ({} more bytes)", &text[..at], text.len() - at),
        None => text.to_string(),
    }
}

fn clean_text(text: &str) -> String {
    cut(&redact(text))
}

fn clean_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let line = redact(&format!("{name}: {value}"));
            let value = line
                .split_once(": ")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            (name, value)
        })
        .collect()
}

fn clean(mut kind: EventKind) -> EventKind {
    match &mut kind {
        EventKind::Http {
            path,
            request_headers,
            request_body,
            response_headers,
            response_body,
            ..
        } => {
            *path = clean_text(path);
            *request_headers = clean_headers(std::mem::take(request_headers));
            *request_body = clean_text(request_body);
            *response_headers = clean_headers(std::mem::take(response_headers));
            *response_body = clean_text(response_body);
        }
        EventKind::Frame { text, .. } | EventKind::Note { text } => *text = clean_text(text),
        EventKind::Command {
            argv,
            stdout,
            stderr,
            ..
        } => {
            *argv = clean_text(argv);
            *stdout = clean_text(stdout);
            *stderr = clean_text(stderr);
        }
        EventKind::Log { tail, .. } => *tail = clean_text(tail),
    }
    kind
}

/// A binary relay frame as the report shows it: kind, session, length, first 64 bytes.
pub fn describe_binary(frame: &[u8]) -> String {
    match tether_contract::relay_protocol::decode_binary(frame) {
        Some((kind, session, payload)) => {
            let head: String = payload
                .iter()
                .take(64)
                .flat_map(|b| std::ascii::escape_default(*b))
                .map(char::from)
                .collect();
            format!(
                "binary kind {kind} session {session:?} {} bytes: \"{head}\"{}",
                payload.len(),
                if payload.len() > 64 { "…" } else { "" }
            )
        }
        None => format!("binary {} bytes (undecodable)", frame.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_secret_becomes_a_prefix() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJlX2J5dGVz";
        secret("opaque-refresh-0123456789");
        let text = format!(
            "authorization: Bearer {jwt}\nx-api-key: sk_live_abcdef123456\n\
             {{\"refresh_token\":\"opaque-refresh-0123456789\",\"client_secret\":\"s3cr3t-value-long\"}}\n\
             HTTPS_PROXY=http://user:hunter2-password@proxy:3128\n\
             -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----\ncode_verifier=abcdefghijklmnop"
        );
        let out = redact(&text);
        for secret in [
            jwt,
            "sk_live_abcdef123456",
            "opaque-refresh-0123456789",
            "s3cr3t-value-long",
            "hunter2-password",
            "MIIEvQ",
            "abcdefghijklmnop",
        ] {
            assert!(!out.contains(secret), "{secret} survived:\n{out}");
        }
        assert!(out.contains("Bearer eyJhbGciOi…"), "{out}");
        assert!(out.contains("sk_live_ab…"), "{out}");
    }

    #[test]
    fn a_binary_frame_shows_its_kind_session_length_and_first_bytes() {
        let mut frame = vec![1u8, 2];
        frame.extend_from_slice(b"s1");
        frame.extend_from_slice(&[b'x'; 100]);
        let shown = describe_binary(&frame);
        assert!(
            shown.starts_with("binary kind 1 session \"s1\" 100 bytes"),
            "{shown}"
        );
        assert!(shown.ends_with('…'), "{shown}");
    }
}
