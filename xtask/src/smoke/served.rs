//! What `tether-harness serve` prints: the URLs, an API key, and the CA its
//! certificates chain to.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};

/// The harness's `serve` output: URLs, an API key, and the CA its certificates chain to.
pub(super) struct Served {
    pub(super) api: String,
    pub(super) relay: String,
    pub(super) key: String,
    pub(super) ca_pem: String,
}

impl Served {
    /// Writes the CA to `dir/ca.pem` and returns its path.
    pub(super) fn write_ca(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        ensure!(
            !self.ca_pem.is_empty(),
            "tether-harness serve printed no CA: it is not serving TLS"
        );
        let path = dir.join("harness-ca.pem");
        std::fs::write(&path, &self.ca_pem)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Reads the lines up to the API key (the CA comes before it).
pub(super) fn parse_served(lines: impl Iterator<Item = String>) -> anyhow::Result<Served> {
    let (mut api, mut relay, mut key) = (None, None, None);
    let mut ca_pem = String::new();
    let mut in_pem = false;
    for line in lines {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            in_pem = true;
        }
        if in_pem {
            ca_pem.push_str(&line);
            ca_pem.push('\n');
            in_pem = !line.starts_with("-----END CERTIFICATE-----");
            continue;
        }
        if let Some(v) = line.strip_prefix("TETHER_API_URL=") {
            api = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("TETHER_RELAY_URL=") {
            relay = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("TETHER_API_KEY=") {
            key = Some(v.to_string());
        }
        if let (Some(api), Some(relay), Some(key)) = (&api, &relay, &key) {
            return Ok(Served {
                api: api.clone(),
                relay: relay.clone(),
                key: key.clone(),
                ca_pem,
            });
        }
    }
    bail!("tether-harness serve did not print its URLs and key")
}
