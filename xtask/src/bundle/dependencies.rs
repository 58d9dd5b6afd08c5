//! The dependency list every binary carries in its `.dep-v0` section (cargo-auditable's
//! format, read with its own `auditable-info`), checked against `Cargo.lock`, and the
//! CycloneDX SBOM beside each archive, checked to name the same crates.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::Context;
use serde::Deserialize;

/// Crates as `(name, version)`.
pub type Crates = BTreeSet<(String, String)>;

/// Largest decompressed `.dep-v0` accepted.
const MAX_JSON: usize = 8 * 1024 * 1024;

/// The crates a binary says it was built from; `Err` says why there is no usable list.
pub fn embedded(binary: &[u8]) -> Result<Crates, String> {
    let info = auditable_info::audit_info_from_slice(binary, MAX_JSON).map_err(|e| {
        format!("no readable .dep-v0 section ({e}): build it with `cargo auditable`")
    })?;
    Ok(info
        .packages
        .into_iter()
        .map(|p| (p.name, p.version.to_string()))
        .collect())
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Deserialize)]
struct LockedPackage {
    name: String,
    version: String,
}

/// The crates of the workspace's `Cargo.lock`, read once.
pub fn locked() -> anyhow::Result<&'static Crates> {
    static LOCK: OnceLock<Result<Crates, String>> = OnceLock::new();
    let read = || -> anyhow::Result<Crates> {
        let path = crate::flags::project_root().join("Cargo.lock");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let lock: Lock =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        Ok(lock
            .package
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect())
    };
    LOCK.get_or_init(|| read().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// What is wrong with a binary's list: crates `Cargo.lock` does not hold, or no `tether`.
pub fn against_lock(crates: &Crates, lock: &Crates) -> Vec<String> {
    let mut out = Vec::new();
    let strangers: Vec<String> = crates
        .difference(lock)
        .map(|(name, version)| format!("{name} {version}"))
        .collect();
    if !strangers.is_empty() {
        out.push(format!(
            ".dep-v0 lists crates Cargo.lock does not: {}",
            strangers.join(", ")
        ));
    }
    if !crates.iter().any(|(name, _)| name == "tether") {
        out.push(".dep-v0 does not name the tether package".into());
    }
    out
}

#[derive(Deserialize)]
struct Bom {
    #[serde(rename = "bomFormat")]
    format: String,
    #[serde(default)]
    metadata: Option<BomMetadata>,
    #[serde(default)]
    components: Vec<Component>,
}

#[derive(Deserialize)]
struct BomMetadata {
    component: Option<Component>,
}

#[derive(Deserialize)]
struct Component {
    name: String,
    #[serde(default)]
    version: String,
}

/// The crates a CycloneDX SBOM names (its main component and every other).
pub fn in_sbom(json: &str) -> Result<Crates, String> {
    let bom: Bom = serde_json::from_str(json).map_err(|e| format!("not CycloneDX JSON: {e}"))?;
    if bom.format != "CycloneDX" {
        return Err(format!("bomFormat is {:?}, not CycloneDX", bom.format));
    }
    let main = bom.metadata.and_then(|m| m.component);
    Ok(main
        .into_iter()
        .chain(bom.components)
        .map(|c| (c.name, c.version))
        .collect())
}

/// The SBOM's file name beside archive `name`: `tether-<v>-<target>.cdx.json`.
pub fn sbom_name(name: &str) -> String {
    format!("{}.cdx.json", name.strip_suffix(".tar.gz").unwrap_or(name))
}

/// What is wrong with the SBOM of archive `name`, given the crates its CLI lists.
pub fn sbom_problems(name: &str, sbom: Option<&str>, cli: Option<&Crates>) -> Vec<String> {
    let file = sbom_name(name);
    let Some(sbom) = sbom else {
        return vec![format!(
            "{name}: {file}: missing: every archive ships with its SBOM"
        )];
    };
    let named = match in_sbom(sbom) {
        Ok(named) => named,
        Err(e) => return vec![format!("{name}: {file}: {e}")],
    };
    match cli {
        Some(cli) if *cli != named => {
            let only = |a: &Crates, b: &Crates| -> String {
                let d: Vec<String> = a.difference(b).map(|(n, v)| format!("{n} {v}")).collect();
                if d.is_empty() {
                    "nothing".into()
                } else {
                    d.join(", ")
                }
            };
            vec![format!(
                "{name}: {file}: names other crates than bin/tether's .dep-v0 (only in the SBOM: {}; only in the binary: {})",
                only(&named, cli),
                only(cli, &named)
            )]
        }
        _ => vec![],
    }
}
