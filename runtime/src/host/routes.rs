//! The route policy for requests that arrive through the relay (`http.request`): exactly
//! `GET /health` answers; every other path is `403`, whatever its spelling or headers.

use std::collections::BTreeMap;

use super::state::HostState;
use tether_contract::relay_protocol::Control;

/// Normalises a request path the way a router would see it: percent-decoded, duplicate
/// slashes collapsed, `.` and `..` resolved, query dropped, lowercased.
pub fn normalize_path(raw: &str) -> String {
    let path = raw.split(['?', '#']).next().unwrap_or("");
    // Percent-decoding only: form decoding would split on `&` and turn `+` into a space.
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut parts: Vec<&str> = Vec::new();
    for segment in decoded.split(['/', '\\']) {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/")).to_ascii_lowercase()
}

/// True for paths only the local control socket may reach.
pub fn is_internal(raw_path: &str) -> bool {
    let path = normalize_path(raw_path);
    path == "/internal" || path.starts_with("/internal/")
}

/// Answers an `http.request` that came through the relay.
pub fn answer_relayed(id: String, method: &str, path: &str, state: &HostState) -> Control {
    let json = |status: u16, body: String| {
        let headers =
            BTreeMap::from([("content-type".to_string(), "application/json".to_string())]);
        Control::HttpResponse {
            id: id.clone(),
            status,
            headers,
            body,
        }
    };
    let bare = path.split(['?', '#']).next().unwrap_or("");
    if method.eq_ignore_ascii_case("GET") && bare == "/health" {
        return json(
            200,
            serde_json::to_string(&state.health()).unwrap_or_default(),
        );
    }
    if is_internal(path) {
        tracing::warn!(%method, "refused a relayed request for an internal route");
    }
    json(403, r#"{"error":"forbidden","message":"only GET /health is served through the relay; everything else is on the local control socket"}"#.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_internal_is_internal() {
        for path in [
            "/internal/oauth/connect/start",
            "/internal",
            "//internal/x",
            "/health/../internal/shutdown",
            "/%69nternal/shutdown",
            "/INTERNAL/shutdown",
            "/./internal/x?y=1",
            "\\internal\\x",
            "/x&/../internal/shutdown",
            "/a+b/../../internal/status",
        ] {
            assert!(is_internal(path), "{path}");
        }
        for path in ["/health", "/internals", "/public/internal"] {
            assert!(!is_internal(path), "{path}");
        }
    }

    #[test]
    fn relayed_internal_requests_get_403_and_health_answers() {
        let state = HostState::default();
        let Control::HttpResponse { status, .. } =
            answer_relayed("1".into(), "POST", "/internal/shutdown", &state)
        else {
            panic!("not a response")
        };
        assert_eq!(status, 403);
        let Control::HttpResponse { status, body, .. } =
            answer_relayed("2".into(), "GET", "/health", &state)
        else {
            panic!("not a response")
        };
        assert_eq!(status, 200);
        assert!(body.contains(r#""status":"ok""#));
    }

    #[test]
    fn only_exactly_get_health_answers_through_the_relay() {
        let state = HostState::default();
        for (method, path) in [
            ("GET", "/health&/../internal/status"),
            ("GET", "/x&/../internal/shutdown"),
            ("GET", "/nothing-here"),
            ("POST", "/health"),
            ("GET", "/health/"),
            ("GET", "/%68ealth"),
        ] {
            let Control::HttpResponse { status, body, .. } =
                answer_relayed("1".into(), method, path, &state)
            else {
                panic!("not a response")
            };
            assert_eq!(status, 403, "{method} {path}: {body}");
            assert!(!body.contains(r#""status":"ok""#), "{method} {path}");
        }
    }
}
