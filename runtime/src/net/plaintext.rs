//! The plaintext rule (contract section 9): `http://` and `ws://` only to loopback
//! hosts unless `TETHER_ALLOW_PLAINTEXT=1`, checked before any connection so no token
//! ever travels in cleartext.

use std::net::IpAddr;

/// A plaintext URL to a host that is not loopback.
#[derive(Debug, Clone, thiserror::Error)]
#[error("refusing to use {url}: plaintext http:// and ws:// are allowed only to loopback hosts. Use https:// or wss://, or set TETHER_ALLOW_PLAINTEXT=1 on a network you trust")]
pub struct PlaintextRefused {
    /// The refused URL.
    pub url: String,
}

/// Checks `url` against the rule, with the override read from the environment.
pub fn check(url: &str) -> Result<(), PlaintextRefused> {
    let allowed =
        std::env::var(tether_contract::environment::ALLOW_PLAINTEXT_ENV).is_ok_and(|v| v == "1");
    check_with(url, allowed)
}

/// Checks `url`; `allow_any` is the `TETHER_ALLOW_PLAINTEXT=1` override.
pub fn check_with(url: &str, allow_any: bool) -> Result<(), PlaintextRefused> {
    let refused = || PlaintextRefused {
        url: url.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|_| refused())?;
    match parsed.scheme() {
        "https" | "wss" => Ok(()),
        "http" | "ws" if allow_any => Ok(()),
        "http" | "ws" if is_loopback(&parsed) => Ok(()),
        _ => Err(refused()),
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1` (a trailing dot changes nothing).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name
            .strip_suffix('.')
            .unwrap_or(name)
            .eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_may_be_plaintext_other_hosts_may_not() {
        for ok in [
            "http://127.0.0.1:8080",
            "ws://127.9.0.1",
            "http://localhost:1",
            "ws://[::1]:9",
            "https://api.example.com",
            "wss://relay.example.com",
        ] {
            assert!(check_with(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://api.example.com",
            "ws://10.0.0.1:80",
            "http://localhost.example.com",
            "ftp://127.0.0.1",
            "not a url",
        ] {
            let e = check_with(refused, false).expect_err(refused);
            assert!(e.to_string().contains(refused), "{e}");
        }
        assert!(check_with("http://api.example.com", true).is_ok());
    }
}
