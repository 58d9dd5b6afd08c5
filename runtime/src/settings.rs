//! Where tether keeps its state and which servers it talks to, resolved from
//! the environment (contract section 1).

use std::path::PathBuf;

use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, HOME_ENV, RELAY_URL_ENV};

use crate::auth::secret::Secret;

/// The API URL used when `TETHER_API_URL` is unset.
pub const DEFAULT_API_URL: &str = "https://api.tether.invalid";

/// Resolved environment of one tether process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// State directory (`TETHER_HOME`).
    pub home: PathBuf,
    /// Base URL of the API / authorization server, without a trailing slash.
    pub api_url: String,
    /// Base URL of the relay (`ws://` or `wss://`), without a trailing slash.
    pub relay_url: String,
    /// API key from `--api-key` or `TETHER_API_KEY`.
    pub api_key: Option<Secret>,
}

impl Settings {
    /// Reads the settings from the process environment; `api_key` is the `--api-key` flag
    /// (clap already merged `TETHER_API_KEY` into it).
    pub fn from_env(api_key: Option<Secret>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var(HOME_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(default_home);
        let api_url = normalize_base(&var(API_URL_ENV).unwrap_or_else(|| DEFAULT_API_URL.into()));
        let relay_url = var(RELAY_URL_ENV)
            .map(|u| normalize_base(&u))
            .unwrap_or_else(|| relay_url_for(&api_url));
        Settings {
            home,
            api_url,
            relay_url,
            api_key: api_key.filter(|k| !k.expose().is_empty()),
        }
    }

    /// The environment that gives a child process these settings (`from_env` reads it
    /// back): home, API and relay URL, and the API key when there is one.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (HOME_ENV, self.home.display().to_string()),
            (API_URL_ENV, self.api_url.clone()),
            (RELAY_URL_ENV, self.relay_url.clone()),
        ];
        if let Some(key) = &self.api_key {
            env.push((API_KEY_ENV, key.expose().to_string()));
        }
        env
    }
}

fn default_home() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("tether");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".config").join("tether")
}

/// Strips trailing slashes so that `{api}/path` joins cleanly and issuer comparison is exact.
pub fn normalize_base(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// Derives the relay URL from the API URL: `http`→`ws`, `https`→`wss`, and a leading
/// `api.` in the host becomes `relay.` (docs/PROTOCOL.md).
pub fn relay_url_for(api_url: &str) -> String {
    let (scheme, rest) = match api_url.split_once("://") {
        Some(("http", rest)) => ("ws", rest),
        Some((_, rest)) => ("wss", rest),
        None => ("wss", api_url),
    };
    let rest = rest
        .strip_prefix("api.")
        .map(|r| format!("relay.{r}"))
        .unwrap_or_else(|| rest.to_string());
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_every_setting_and_the_key_only_when_there_is_one() {
        let mut settings = Settings {
            home: PathBuf::from("/h"),
            api_url: "https://api.example.com".into(),
            relay_url: "wss://relay.example.com".into(),
            api_key: None,
        };
        assert_eq!(
            settings.to_env(),
            [
                ("TETHER_HOME", "/h".to_string()),
                ("TETHER_API_URL", "https://api.example.com".to_string()),
                ("TETHER_RELAY_URL", "wss://relay.example.com".to_string()),
            ]
        );
        settings.api_key = Some(Secret::new("sk_live_x"));
        assert_eq!(
            settings.to_env().last(),
            Some(&("TETHER_API_KEY", "sk_live_x".to_string()))
        );
    }

    #[test]
    fn relay_url_is_derived_from_the_api_host() {
        assert_eq!(
            relay_url_for("https://api.example.com"),
            "wss://relay.example.com"
        );
        assert_eq!(
            relay_url_for("http://127.0.0.1:8080"),
            "ws://127.0.0.1:8080"
        );
    }

    #[test]
    fn trailing_slashes_are_dropped() {
        assert_eq!(normalize_base("http://x/ "), "http://x");
    }
}
