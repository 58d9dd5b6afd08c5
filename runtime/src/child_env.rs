//! The environment tether's processes hand to their children: the user's, minus every
//! credential (contract section 5). A remote user of a terminal can run `env`; a key seen
//! there works from anywhere. Proxy variables reach children without their `user:pass@`,
//! and the service-manager marker not at all (a terminal's shell was not started by systemd).

use std::ffi::OsString;

/// One change to a child's environment: remove the variable (`None`) or set it to a value.
pub type EnvChange = (OsString, Option<String>);

/// The changes that turn this process's environment into a child's.
pub fn changes() -> Vec<EnvChange> {
    changes_of(std::env::vars_os())
}

fn changes_of(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<EnvChange> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let Some(text) = name.to_str() else {
            out.push((name, None));
            continue;
        };
        if is_secret(text) || text == tether_contract::environment::SERVICE_MANAGER_ENV {
            out.push((name, None));
        } else if tether_contract::environment::PROXY_ENV.contains(&text) {
            let value = value.to_string_lossy();
            if let Some(bare) = without_credentials(&value) {
                out.push((name, Some(bare)));
            }
        }
    }
    out
}

/// A proxy URL without its `user:pass@`; `None` when it has none.
fn without_credentials(proxy: &str) -> Option<String> {
    let (scheme, rest) = proxy.split_once("://").unwrap_or(("", proxy));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    Some(format!("{prefix}{}", &rest[at + 1..]))
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
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<EnvChange> {
        changes_of(
            list.iter()
                .map(|(n, v)| (OsString::from(n), OsString::from(v))),
        )
    }

    #[test]
    fn children_get_proxies_without_passwords_and_no_secrets() {
        let got = vars(&[
            ("PATH", "/bin"),
            ("TETHER_API_KEY", "sk_live_x"),
            ("TETHER_SERVICE_MANAGER", "systemd"),
            ("HTTPS_PROXY", "http://user:p%40ss@proxy:3128"),
            ("http_proxy", "proxy:3128"),
            ("ALL_PROXY", "socks5://u@h:1/x@y"),
        ]);
        let want: Vec<EnvChange> = vec![
            ("TETHER_API_KEY".into(), None),
            ("TETHER_SERVICE_MANAGER".into(), None),
            ("HTTPS_PROXY".into(), Some("http://proxy:3128".into())),
            ("ALL_PROXY".into(), Some("socks5://h:1/x@y".into())),
        ];
        assert_eq!(got, want);
    }

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
