//! Which proxy, if any, a connection goes through (contract section 9): `HTTPS_PROXY`
//! for `https://`/`wss://`, `HTTP_PROXY` for `http://`/`ws://`, `ALL_PROXY` for both,
//! either case, and `NO_PROXY` (names, suffixes, IPs, CIDRs, `*`).
//!
//! The decision is hyper-util's matcher (the one reqwest itself uses), so tether follows
//! curl's rules, with three additions: loopback never goes through a proxy (a proxy is
//! another machine, and would read `ws://` and `http://` traffic), `*` also covers IP
//! addresses, and names match with or without a trailing dot (`[::1]` entries too).
//! The same decision serves the HTTP client and the relay WebSocket.

use std::fmt;
use std::sync::OnceLock;

use http::{HeaderValue, Uri};
use hyper_util::client::proxy::matcher::Matcher;

/// A proxy to go through. Its credentials are only in [`ProxyHop::auth`]; `Display`
/// shows the proxy's address without them.
#[derive(Clone)]
pub struct ProxyHop {
    /// `http://host:port/` of the proxy, without credentials.
    pub uri: Uri,
    /// `Proxy-Authorization: Basic …` from the proxy URL's user and password.
    pub auth: Option<HeaderValue>,
}

impl fmt::Display for ProxyHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.uri.scheme_str().unwrap_or("http");
        let authority = self.uri.authority().map(|a| a.as_str()).unwrap_or("");
        write!(f, "proxy {scheme}://{authority}")
    }
}

impl fmt::Debug for ProxyHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyHop({self}, auth: {})", self.auth.is_some())
    }
}

/// Proxy rules read from environment variables.
pub struct ProxyRules {
    matcher: Matcher,
    bypass_all: bool,
}

impl ProxyRules {
    /// Reads the process environment (upper case first, as curl and hyper-util do; under
    /// CGI, where `HTTP_PROXY` is a request header, only `http_proxy`).
    pub fn from_env() -> ProxyRules {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
                .unwrap_or_default()
        };
        let http: &[&str] = if std::env::var_os("REQUEST_METHOD").is_some() {
            &["http_proxy"]
        } else {
            &["HTTP_PROXY", "http_proxy"]
        };
        ProxyRules::from_values(
            &first(&["ALL_PROXY", "all_proxy"]),
            &first(http),
            &first(&["HTTPS_PROXY", "https_proxy"]),
            &first(&["NO_PROXY", "no_proxy"]),
        )
    }

    /// Rules from explicit values (tests).
    pub fn from_values(all: &str, http: &str, https: &str, no: &str) -> ProxyRules {
        ProxyRules {
            matcher: Matcher::builder()
                .all(all.to_string())
                .http(http.to_string())
                .https(https.to_string())
                .no(normalise_no_proxy(no))
                .build(),
            bypass_all: has_star(no),
        }
    }

    /// The proxy for `url` (`http`, `https`, `ws` or `wss`), or `None` to go direct.
    pub fn route(&self, url: &url::Url) -> Option<ProxyHop> {
        if self.bypass_all || super::plaintext::is_loopback(url) {
            return None;
        }
        let scheme = match url.scheme() {
            "ws" | "http" => "http",
            "wss" | "https" => "https",
            _ => return None,
        };
        let host = url.host_str()?;
        let host = host.strip_suffix('.').unwrap_or(host);
        let port = url.port_or_known_default()?;
        let dst: Uri = format!("{scheme}://{host}:{port}/").parse().ok()?;
        let intercept = self.matcher.intercept(&dst)?;
        Some(ProxyHop {
            uri: intercept.uri().clone(),
            auth: intercept.basic_auth().cloned(),
        })
    }
}

/// `NO_PROXY` with each entry's trailing dot and IPv6 brackets removed, the spelling the
/// matcher compares with.
fn normalise_no_proxy(no_proxy: &str) -> String {
    no_proxy
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            let entry = entry.strip_suffix('.').unwrap_or(entry);
            match entry.strip_prefix('[').and_then(|e| e.split_once(']')) {
                Some((ip, _port)) => ip,
                None => entry,
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn has_star(no_proxy: &str) -> bool {
    no_proxy.split(',').any(|entry| entry.trim() == "*")
}

/// The process's proxy rules, read once.
pub fn rules() -> &'static ProxyRules {
    static RULES: OnceLock<ProxyRules> = OnceLock::new();
    RULES.get_or_init(ProxyRules::from_env)
}

/// The proxy for `url` under the process's rules.
pub fn route(url: &url::Url) -> Option<ProxyHop> {
    rules().route(url)
}

/// The `Proxy-Authorization` of the proxy that `scheme` (`http` or `https`) URLs use.
/// Credentials depend only on the scheme's variable, so any host that is not exempt
/// answers; `.invalid` names are never real, so only a `NO_PROXY` listing `invalid` (or
/// `*`, when no proxy is used at all) hides them.
pub fn credentials_for_scheme(scheme: &str) -> Option<HeaderValue> {
    let probe = url::Url::parse(&format!("{scheme}://proxy-credentials.invalid/")).ok()?;
    route(&probe).and_then(|hop| hop.auth)
}

/// "direct" or "proxy http://host:port", for messages and `tether doctor`.
pub fn describe(hop: Option<&ProxyHop>) -> String {
    hop.map_or_else(|| "direct".to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("test URL")
    }

    #[test]
    fn each_scheme_takes_its_own_variable_and_all_proxy_fills_in() {
        let rules = ProxyRules::from_values("http://all:1", "", "http://secure:3128", "");
        let secure = rules
            .route(&url("wss://relay.example.com"))
            .expect("proxied");
        assert_eq!(secure.to_string(), "proxy http://secure:3128");
        let plain = rules
            .route(&url("ws://relay.example.com"))
            .expect("proxied");
        assert_eq!(plain.to_string(), "proxy http://all:1");
    }

    #[test]
    fn no_proxy_covers_names_suffixes_ips_cidrs_and_star() {
        let rules = ProxyRules::from_values(
            "",
            "",
            "http://p:3128",
            "internal.example, .corp.example, 10.1.2.3, 192.168.0.0/16",
        );
        for direct in [
            "https://internal.example/",
            "https://api.internal.example/",
            "https://x.corp.example/",
            "https://10.1.2.3/",
            "wss://192.168.7.9:8443/",
        ] {
            assert!(
                rules.route(&url(direct)).is_none(),
                "{direct} should go direct"
            );
        }
        for proxied in [
            "https://example.com/",
            "https://notinternal.example/",
            "https://10.1.2.4/",
        ] {
            assert!(
                rules.route(&url(proxied)).is_some(),
                "{proxied} should use the proxy"
            );
        }
        let star = ProxyRules::from_values("", "", "http://p:3128", " * ");
        assert!(star.route(&url("https://example.com/")).is_none());
        assert!(star.route(&url("https://10.0.0.1/")).is_none());
    }

    #[test]
    fn loopback_never_goes_through_a_proxy() {
        let rules = ProxyRules::from_values("http://p:1", "http://p:1", "http://p:1", "");
        for direct in [
            "http://127.0.0.1:9/api",
            "ws://localhost:8080/",
            "wss://localhost./",
            "http://127.8.0.1/",
            "ws://[::1]:9/",
        ] {
            assert!(
                rules.route(&url(direct)).is_none(),
                "{direct} went through the proxy"
            );
        }
        assert!(rules.route(&url("http://10.0.0.1/")).is_some());
    }

    #[test]
    fn no_proxy_matches_trailing_dots_and_bracketed_ipv6() {
        let rules = ProxyRules::from_values(
            "",
            "",
            "http://p:3128",
            "internal.example., [fd00::1], [fd00::2]:443",
        );
        for direct in [
            "https://internal.example/",
            "https://internal.example./",
            "https://api.internal.example./",
            "https://[fd00::1]/",
            "https://[fd00::2]/",
        ] {
            assert!(
                rules.route(&url(direct)).is_none(),
                "{direct} should go direct"
            );
        }
        assert!(rules.route(&url("https://[fd00::3]/")).is_some());
    }

    #[test]
    fn credentials_become_basic_auth_and_never_show() {
        let rules = ProxyRules::from_values("", "", "http://alice:s%40cret@p:3128", "");
        let hop = rules
            .route(&url("https://api.example.com"))
            .expect("proxied");
        assert_eq!(
            hop.auth.as_ref().and_then(|h| h.to_str().ok()),
            Some("Basic YWxpY2U6c0BjcmV0")
        );
        let shown = format!("{hop} {hop:?}");
        assert!(
            !shown.contains("cret") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
