//! `tether doctor [--json]`: is the bundle whole and consistent, is the state directory
//! private, is the sign-in valid, are the API and the relay reachable, directly or through which proxy, and
//! with which TLS version and certificate issuer.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use crate::auth::discovery::discover;
use crate::bundle::{find_host, ptyd_path_beside};
use crate::net::http_client;
use crate::settings::Settings;
use crate::version::LONG_VERSION;

/// One check's verdict.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

fn check(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check {
            name,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name,
            ok: false,
            detail,
        },
    }
}

fn version_of(binary: &Path) -> Result<String, String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let version = text
        .split_once(' ')
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    if version == LONG_VERSION {
        Ok(format!("{} ({version})", binary.display()))
    } else {
        Err(format!(
            "{} is {version:?}, but tether is {LONG_VERSION:?}: reinstall the whole bundle",
            binary.display()
        ))
    }
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// How `url` is reached: the route, the TLS version and issuer, or the named failure.
async fn network(url: &str) -> Result<String, String> {
    let seen = crate::net::probe::probe(url).await;
    match (&seen.error, &seen.tls_version) {
        (Some(error), _) => Err(format!("{url} via {}: {error}", seen.route)),
        (None, Some(version)) => Ok(format!(
            "{url} via {}, {version}, issuer {}",
            seen.route,
            seen.issuer.as_deref().unwrap_or("unknown")
        )),
        (None, None) => Ok(format!("{url} via {}, plaintext (loopback)", seen.route)),
    }
}

/// Which host services run, and what runs them (systemd, launchd or `--daemon`).
async fn host_services(settings: &Settings) -> Result<String, String> {
    use crate::host::instance::{self, InstancePaths};
    let mut lines = Vec::new();
    for org in instance::known_orgs(&settings.home) {
        let paths = InstancePaths::new(&settings.home, &org);
        if !instance::is_running(&paths) {
            continue;
        }
        let status = crate::host::control::client::status(&paths.control_socket).await;
        lines.push(match status {
            Ok(doc) => {
                let ptyd = match (doc.ptyd_pid, &doc.ptyd_version, &doc.ptyd_exe) {
                    (Some(pid), Some(version), Some(exe)) => {
                        format!("; tether-ptyd {version} (pid {pid}, {exe})")
                    }
                    (Some(pid), ..) => format!("; tether-ptyd pid {pid}"),
                    _ => "; tether-ptyd not connected".into(),
                };
                format!(
                    "{org} runs under {} (pid {}, {}){ptyd}",
                    doc.manager, doc.pid, doc.version
                )
            }
            Err(e) => format!("{org} runs but does not answer: {e:#}"),
        });
    }
    if lines.is_empty() {
        Ok("no host service is running".into())
    } else {
        Ok(lines.join("; "))
    }
}

/// Runs every check.
pub async fn checks(settings: &Settings) -> Vec<Check> {
    let mut out = bundle_checks();
    out.push(check(
        "config: state directory",
        state_directory(&settings.home),
    ));
    out.push(check("config: config.json", config_file(&settings.home)));
    let plaintext = [&settings.api_url, &settings.relay_url]
        .into_iter()
        .find_map(|url| crate::net::plaintext::check(url).err());
    if let Some(refused) = plaintext {
        out.push(check("network: plaintext", Err(refused.to_string())));
        out.push(check("host: service", host_services(settings).await));
        return out;
    }
    out.push(check("auth: session", session(settings).await));
    out.push(check(
        "server: API",
        discover(&http_client(), &settings.api_url)
            .await
            .map(|_| format!("{} answers", settings.api_url))
            .map_err(|e| e.to_string()),
    ));
    out.push(check("network: API", network(&settings.api_url).await));
    out.push(check("network: relay", network(&settings.relay_url).await));
    out.push(check("host: service", host_services(settings).await));
    out
}

/// The bundle's daemons beside this binary, and their versions.
fn bundle_checks() -> Vec<Check> {
    let host = match find_host() {
        Ok(host) => host,
        Err(e) => {
            return vec![
                check("bundle: tether-host", Err(e.to_string())),
                check(
                    "bundle: tether-ptyd",
                    Err("not checked: tether-host is missing".into()),
                ),
            ]
        }
    };
    let mut out = vec![check("bundle: tether-host", Ok(host.display().to_string()))];
    let ptyd = ptyd_path_beside(&host);
    if ptyd.is_file() {
        out.push(check("bundle: tether-ptyd", Ok(ptyd.display().to_string())));
    } else {
        let why = format!(
            "pty daemon not found at {}: the bundle is incomplete",
            ptyd.display()
        );
        out.push(check("bundle: tether-ptyd", Err(why)));
    }
    out.push(check("versions: tether-host", version_of(&host)));
    if ptyd.is_file() {
        out.push(check("versions: tether-ptyd", version_of(&ptyd)));
    }
    out
}

/// The state directory is private (0700) or not there yet.
fn state_directory(home: &Path) -> Result<String, String> {
    match mode(home) {
        None => Ok(format!("{} does not exist yet", home.display())),
        Some(0o700) => Ok(format!("{} is 0700", home.display())),
        Some(m) => Err(format!(
            "{} is {m:04o}; run: chmod 700 {}",
            home.display(),
            home.display()
        )),
    }
}

/// `config.json` is private (0600) and parses, or is not there yet.
fn config_file(home: &Path) -> Result<String, String> {
    let config = home.join("config.json");
    match (
        mode(&config),
        crate::auth::config_store::ConfigStore::new(home).load(),
    ) {
        (None, _) => Ok("no config.json (not signed in)".into()),
        (Some(_), Err(e)) => Err(e.to_string()),
        (Some(0o600), Ok(_)) => Ok(format!("{} is 0600 and valid", config.display())),
        (Some(m), Ok(_)) => Err(format!(
            "{} is {m:04o}; run: chmod 600 {}",
            config.display(),
            config.display()
        )),
    }
}

/// Who the stored credential signs in as, and where.
async fn session(settings: &Settings) -> Result<String, String> {
    let report = super::status_report::current_status(settings)
        .await
        .map_err(|e| e.to_string())?;
    let who = report
        .user
        .map(|u| crate::auth::printable(&u.email.unwrap_or(u.id)))
        .unwrap_or_else(|| "(user not named by the server)".into());
    let org = report
        .organization_id
        .map_or_else(|| "(no organization)".into(), |org| org.to_string());
    Ok(format!("{who} via {} in {org}", report.method))
}

/// `tether doctor [--json]`: exits 1 when any check fails.
pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let checks = checks(settings).await;
    let ok = checks.iter().all(|c| c.ok);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"ok": ok, "checks": checks}))?
        );
    } else {
        for c in &checks {
            println!(
                "{} {:<24} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    if !ok {
        anyhow::bail!(
            "{} of {} checks failed",
            checks.iter().filter(|c| !c.ok).count(),
            checks.len()
        );
    }
    Ok(())
}
