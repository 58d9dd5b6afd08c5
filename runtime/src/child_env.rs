//! The environment tether's processes hand to their children: the user's, minus every
//! credential (contract section 5). A remote user of a terminal can run `env`; a key seen
//! there works from anywhere.

/// Names of the variables in this process's environment that may hold a secret.
pub fn secret_names() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_none_or(is_secret))
        .collect()
}

/// True for `TETHER_API_KEY` and every other `TETHER_*` name that can hold a secret.
pub fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("TETHER_")
        && ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"]
            .iter()
            .any(|word| upper.contains(word))
}

#[cfg(test)]
mod tests {
    use super::is_secret;

    #[test]
    fn credentials_are_secret_and_settings_are_not() {
        for name in [
            "TETHER_API_KEY",
            "TETHER_E2E_API_KEY",
            "TETHER_E2E_SESSION_TOKEN",
            "TETHER_SIGNING_KEY",
            "tether_api_key",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "TETHER_HOME",
            "TETHER_API_URL",
            "TETHER_LOG",
            "PATH",
            "API_KEY",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }
}
