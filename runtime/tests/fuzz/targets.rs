//! The fuzz targets: each takes one input and checks that decoding it neither panics nor
//! breaks the decoder's promise (round trips, the route policy, a live listener).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tether::host::answer_relayed;
use tether::host::HostState;
use tether::ptyd::read_frame;
use tether_contract::ptyd_protocol::{valid_session_id, Request};
use tether_contract::relay_protocol::{decode_binary, encode_binary, parse_control, Control};

/// Frames with plausible headers: lengths near, at and past the real ones.
pub fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..64),
        -8i64..8,
        -8i64..8,
    )
        .prop_map(|(json, payload, total_skew, json_skew)| {
            let json_len = (json.len() as i64 + json_skew).max(0) as u32;
            let total = (8 + json.len() + payload.len()) as i64 - 4 + total_skew;
            let mut out = (total.max(0) as u32).to_be_bytes().to_vec();
            out.extend_from_slice(&json_len.to_be_bytes());
            out.extend_from_slice(&json);
            out.extend_from_slice(&payload);
            out
        })
}

/// JSON that looks like the protocols' messages, with hostile values in every field.
pub fn json_like() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just("open"),
        Just("input"),
        Just("resize"),
        Just("close"),
        Just("subscribe"),
        Just("list"),
        Just("hello"),
        Just("session.open"),
        Just("session.close"),
        Just("http.request"),
        Just("oauth.callback"),
        Just("error"),
        Just("ping"),
    ];
    let number = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("65536".to_string()),
        Just("1e309".to_string()),
        Just("18446744073709551616".to_string()),
        Just("\"80\"".to_string()),
        Just("null".to_string()),
    ];
    let text = prop_oneof![
        any::<String>(),
        "[a-z0-9._:-]{0,140}",
        Just("a\u{0}b".to_string()),
    ];
    prop_oneof![
        (kind, text.clone(), number.clone(), number, text).prop_map(|(k, id, cols, rows, extra)| {
            format!(
                r#"{{"type":"{k}","id":{id},"sessionId":{id},"cols":{cols},"rows":{rows},"command":{extra},"path":{extra},"protocols":[{cols}],"replay":{rows}}}"#,
                id = serde_json::Value::String(id),
                extra = serde_json::Value::String(extra),
            )
        }),
        any::<String>(),
    ]
}

/// HTTP methods, odd ones included.
pub fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("get".to_string()),
        Just("POST".to_string()),
        "[A-Za-z]{0,8}",
    ]
}

/// Paths built from the pieces that fooled normalisers before.
pub fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/health"),
        Just("/internal"),
        Just("/.."),
        Just("/."),
        Just("&"),
        Just("%2f"),
        Just("%2e%2e"),
        Just("%69"),
        Just("+"),
        Just("\\"),
        Just("?"),
        Just("#"),
        Just("//"),
        Just("/status"),
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat()),
        any::<String>(),
    ]
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(future))
        .unwrap_or_else(|e| panic!("no runtime: {e}"))
}

/// Reads frames until the input ends or is refused; each frame read obeys the limits.
pub fn ptyd_frame(input: Vec<u8>) -> Result<(), TestCaseError> {
    block_on(async {
        let mut reader = &input[..];
        while let Ok(frame) = read_frame(&mut reader).await {
            prop_assert!(frame.json.len() + frame.payload.len() + 4 <= input.len());
        }
        Ok(())
    })
}

/// A request parses or is refused; a parsed one encodes back to the same request.
pub fn ptyd_request(text: String) -> Result<(), TestCaseError> {
    if let Ok(request) = serde_json::from_str::<Request>(&text) {
        if let Some(id) = request.session_id() {
            let _ = valid_session_id(id);
        }
        let again: Request = serde_json::from_slice(
            &serde_json::to_vec(&request).map_err(|e| TestCaseError::fail(e.to_string()))?,
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, request);
    }
    Ok(())
}

/// A binary frame decodes or is refused; a decoded one encodes back to the same bytes.
pub fn relay_binary(input: Vec<u8>) -> Result<(), TestCaseError> {
    if let Some((kind, id, payload)) = decode_binary(&input) {
        prop_assert_eq!(encode_binary(kind, id, payload), Some(input.clone()));
    }
    Ok(())
}

/// A control message parses or is refused; a parsed one serializes again.
pub fn relay_control(text: String) -> Result<(), TestCaseError> {
    if let Ok(Some(control)) = parse_control(&text) {
        let encoded: String =
            serde_json::to_string(&control).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(matches!(parse_control(&encoded), Ok(Some(_))), "{encoded}");
    }
    Ok(())
}

/// Only exactly `GET /health` answers through the relay; everything else is 403.
pub fn relayed_route((method, path): (String, String)) -> Result<(), TestCaseError> {
    let state = HostState::default();
    let Control::HttpResponse { status, .. } = answer_relayed("f".into(), &method, &path, &state)
    else {
        return Err(TestCaseError::fail("not an http.response"));
    };
    let health =
        method.eq_ignore_ascii_case("GET") && path.split(['?', '#']).next() == Some("/health");
    prop_assert_eq!(
        status,
        if health { 200 } else { 403 },
        "{} {:?}",
        method,
        path
    );
    let _ = tether::host::is_internal(&path);
    Ok(())
}

/// A loopback HTTP listener like the login's, on its own runtime thread.
pub struct LoopbackServer {
    addr: SocketAddr,
}

impl LoopbackServer {
    /// Starts it on 127.0.0.1 with a `/callback` route that reads the query.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route(
                    "/callback",
                    axum::routing::get(
                        |axum::extract::Query(q): axum::extract::Query<
                            std::collections::HashMap<String, String>,
                        >| async move { format!("{}", q.len()) },
                    ),
                );
                tether::http_server::serve(listener, app, 16).await;
            })
        });
        LoopbackServer { addr }
    }

    /// Sends `input` as a request, then checks a well-formed request still gets an answer.
    pub fn check(&self, input: Vec<u8>) -> Result<(), TestCaseError> {
        if let Ok(mut conn) = TcpStream::connect(self.addr) {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = conn.write_all(&input);
            let _ = conn.shutdown(std::net::Shutdown::Write);
            let _ = conn.read_to_end(&mut Vec::new());
        }
        let mut conn = TcpStream::connect(self.addr)
            .map_err(|e| TestCaseError::fail(format!("listener gone: {e}")))?;
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
        conn.write_all(
            b"GET /callback?state=x&code=y HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        prop_assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        Ok(())
    }
}

/// Strings near the organization id rule's edges: the allowed set, the 128-byte limit,
/// a leading dot, separators, control characters and anything at all.
pub fn org_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._:-]{0,130}",
        "\\.?[A-Za-z0-9._:/\\\n%-]{0,20}",
        any::<String>(),
    ]
}

/// An org id parses only when every byte is in the allowed set, the length is 1–128 and
/// it does not start with `.`; a parsed id is the input unchanged, and a refusal prints
/// on one line.
pub fn org_id(text: String) -> Result<(), TestCaseError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-');
    let valid =
        (1..=128).contains(&text.len()) && !text.starts_with('.') && text.bytes().all(allowed);
    match tether::OrgId::parse(&text) {
        Ok(org) => {
            prop_assert!(valid, "accepted {text:?}");
            prop_assert_eq!(org.as_str(), text.as_str());
            let json =
                serde_json::to_string(&org).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(serde_json::from_str::<tether::OrgId>(&json).ok(), Some(org));
        }
        Err(refused) => {
            prop_assert!(!valid, "refused {text:?}");
            let shown = refused.to_string();
            prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
    Ok(())
}

/// `latest.json`-like documents with hostile versions, targets and URLs.
pub fn latest_like() -> impl Strategy<Value = String> {
    let version = prop_oneof![
        Just("0.1.0".to_string()),
        Just("0.2.0-rc.1".to_string()),
        Just("1.0.0+build".to_string()),
        Just("18446744073709551616.0.0".to_string()),
        "[0-9.a-z+-]{0,24}",
        any::<String>(),
    ];
    (version, any::<String>(), any::<String>()).prop_map(|(version, url, sha)| {
        serde_json::json!({
            "version": version,
            "targets": {"linux-x64": {"url": url, "sha256": sha}},
        })
        .to_string()
    })
}

/// A `latest.json` parses or is refused; a parsed one's version compares with this build's
/// without panicking, and comparing a version with itself says "same".
pub fn latest_json(text: String) -> Result<(), TestCaseError> {
    use tether::release::{judge, Latest, Verdict};
    if let Ok(latest) = serde_json::from_str::<Latest>(&text) {
        if let Ok(verdict) = judge(&latest.version, tether::version::VERSION) {
            let back = judge(tether::version::VERSION, &latest.version).ok();
            let consistent = match verdict {
                Verdict::Same => back == Some(Verdict::Same),
                Verdict::Older => matches!(back, Some(Verdict::Newer | Verdict::PreRelease)),
                Verdict::Newer | Verdict::PreRelease => back == Some(Verdict::Older),
            };
            prop_assert!(
                consistent,
                "{} vs {}: {verdict:?} / {back:?}",
                latest.version,
                tether::version::VERSION
            );
            prop_assert_eq!(
                judge(&latest.version, &latest.version).ok(),
                Some(Verdict::Same)
            );
        }
    }
    Ok(())
}
