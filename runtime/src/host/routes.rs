//! The route policy for requests that arrive through the relay (`http.request`): only
//! public routes answer; anything under `/internal/` is `403`, whatever the headers say.

use std::collections::BTreeMap;

use super::relay_protocol::Control;
use super::state::HostState;

/// Normalises a request path the way a router would see it: percent-decoded, duplicate
/// slashes collapsed, `.` and `..` resolved, query dropped, lowercased.
pub fn normalize_path(raw: &str) -> String {
    let path = raw.split(['?', '#']).next().unwrap_or("");
    let decoded = url::form_urlencoded::parse(format!("p={}", path.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
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
    if is_internal(path) {
        tracing::warn!(%method, path, "refused a relayed request for an internal route");
        return json(403, r#"{"error":"forbidden","message":"internal routes are served only on the local control socket"}"#.into());
    }
    match (
        method.to_ascii_uppercase().as_str(),
        normalize_path(path).as_str(),
    ) {
        ("GET", "/health") => json(
            200,
            serde_json::to_string(&state.health()).unwrap_or_default(),
        ),
        _ => json(404, r#"{"error":"not_found"}"#.into()),
    }
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
}
