//! A string that must never reach logs, errors or `--json` output.

use serde::{Deserialize, Serialize};

/// A secret value (access token, refresh token, API key). `Debug` shows only a prefix.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that sends it over the wire or stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A prefix safe to show a person, such as `sk_live_ab…`.
    pub fn redacted(&self) -> String {
        let shown = (self.0.chars().count() / 4).min(10);
        let prefix: String = self.0.chars().take(shown).collect();
        format!("{prefix}…")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// For command-line flags: `--api-key` parses straight into a `Secret`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(value))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_shows_at_most_its_prefix() {
        let key = Secret::new("sk_live_abcdefghijklmnopqrstuvwxyz0123456789");
        assert_eq!(key.redacted(), "sk_live_ab…");
        assert!(!format!("{key:?}").contains("cdefgh"));
    }

    #[test]
    fn short_secrets_show_almost_nothing() {
        assert_eq!(Secret::new("abc").redacted(), "…");
    }
}
