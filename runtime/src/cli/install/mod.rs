//! `tether host install | uninstall`: the host service as a system service (contract
//! section 10) — a systemd unit on Linux (user unit by default, system unit with
//! `--system --user NAME`), a launchd agent on macOS.

pub(crate) mod launchd;
mod layout;
pub(crate) mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use tether_contract::environment::SERVICE_MANAGER_ENV;

use crate::host::control::api::Manager;
use crate::host::instance::{self, InstancePaths};
use crate::settings::Settings;
use crate::OrgId;
use layout::{Kind, Layout};

/// The environment the service runs with: where its state is, which servers, the
/// credential, and the network settings (trust, proxies) `lookup` finds, as the CLI had them.
fn service_env(
    settings: &Settings,
    home: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let settings = Settings {
        home: home.to_path_buf(),
        ..settings.clone()
    };
    let mut env = vec![(
        SERVICE_MANAGER_ENV.to_string(),
        Manager::of_this_os().to_string(),
    )];
    env.extend(
        settings
            .to_env()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    for name in crate::net::TRUST_ENV
        .iter()
        .chain(tether_contract::environment::PROXY_ENV)
    {
        if let Some(value) = lookup(name).filter(|v| !v.is_empty()) {
            env.push((name.to_string(), value));
        }
    }
    env
}

/// `env` with every value replaced, for printing.
fn names_only(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(name, _)| (name.clone(), "(not shown)".to_string()))
        .collect()
}

/// A user name as `useradd` accepts it (`[a-z_][a-z0-9_-]*$?`, at most 32 bytes): it goes
/// into a unit file's `User=` line.
fn check_user_name(user: &str) -> anyhow::Result<()> {
    let body = user.strip_suffix('$').unwrap_or(user);
    let valid = !body.is_empty()
        && user.len() <= 32
        && body.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !valid {
        bail!(
            "invalid user name \"{}\" for --user: use a login name such as alice",
            user.escape_default()
        );
    }
    Ok(())
}

/// An `EnvironmentFile`: one `NAME="value"` a line, quoted for systemd.
fn env_file_text(env: &[(String, String)]) -> String {
    let mut out = String::from(systemd::MARKER);
    out.push('\n');
    for (name, value) in env {
        let value = value.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!("{name}=\"{value}\"\n"));
    }
    out
}

/// `tether host install`.
pub fn install(
    settings: &Settings,
    org: &OrgId,
    system_user: Option<&str>,
    print: bool,
) -> anyhow::Result<()> {
    if let Some(user) = system_user {
        check_user_name(user)?;
    }
    let layout = Layout::for_org(settings, org, Kind::chosen(system_user.is_some()))?;
    let host = crate::bundle::find_host()?;
    let state_home = match system_user {
        Some(user) => user_home(user)?.join(".config/tether"),
        None => settings.home.clone(),
    };
    let env = service_env(settings, &state_home, |name| std::env::var(name).ok());
    let text = match layout.kind {
        Kind::LaunchAgent => {
            let log = InstancePaths::new(&settings.home, org).log;
            // `--print` shows names only, as for systemd: the plist holds the credential.
            let shown = if print { names_only(&env) } else { env.clone() };
            launchd::plist(org, &host, &shown, &log)
        }
        Kind::UserUnit | Kind::SystemUnit => systemd::unit(&systemd::UnitSpec {
            org,
            host: &host,
            env_file: &layout.env_file,
            system_user,
        }),
    };
    if print {
        print_unit(&layout, &text, &env);
        return Ok(());
    }
    if layout.kind != Kind::SystemUnit
        && instance::is_running(&InstancePaths::new(&settings.home, org))
    {
        bail!("a host service for {org} is already running outside the service manager: stop it first (tether host stop --org {org})");
    }
    match layout.kind {
        Kind::LaunchAgent => bootstrap_agent(&layout, &text, org),
        Kind::UserUnit | Kind::SystemUnit => enable_unit(&layout, &text, &env, org),
    }
}

/// `--print`: the unit as it would be written, and the names (only) its env file would hold.
fn print_unit(layout: &Layout, text: &str, env: &[(String, String)]) {
    print!("# {}\n{text}", layout.unit.display());
    if layout.kind != Kind::LaunchAgent {
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        println!(
            "# {} (mode 0600) would hold {} (values not shown)",
            layout.env_file.display(),
            names.join(", ")
        );
    }
}

/// Writes the launchd agent and starts it for this login session.
fn bootstrap_agent(layout: &Layout, text: &str, org: &OrgId) -> anyhow::Result<()> {
    write_private(&layout.unit, text)?;
    let uid = nix::unistd::geteuid().as_raw();
    run(
        "launchctl",
        &[
            "bootstrap",
            &format!("gui/{uid}"),
            &layout.unit.to_string_lossy(),
        ],
    )?;
    println!(
        "installed {}: the host service for {org} runs now and at every login",
        layout.unit.display()
    );
    Ok(())
}

/// Writes the systemd unit and its private env file, then enables and starts the unit.
fn enable_unit(
    layout: &Layout,
    text: &str,
    env: &[(String, String)],
    org: &OrgId,
) -> anyhow::Result<()> {
    if let Some(dir) = layout.env_file.parent() {
        crate::private_file::private_dir(dir)
            .with_context(|| format!("cannot use {}", dir.display()))?;
    }
    write_private(&layout.env_file, &env_file_text(env))?;
    write_private(&layout.unit, text)?;
    layout.systemctl(&["daemon-reload"])?;
    layout.systemctl(&["enable", "--now", &layout.name])?;
    println!(
        "installed {}: the host service for {org} runs now under systemd",
        layout.unit.display()
    );
    if layout.kind == Kind::UserUnit {
        linger_hint()?;
    }
    Ok(())
}

/// `tether host uninstall`: stops, disables and removes what `install` wrote, nothing else.
pub fn uninstall(settings: &Settings, org: &OrgId, system: bool) -> anyhow::Result<()> {
    let layout = Layout::for_org(settings, org, Kind::chosen(system))?;
    match layout.installed(org) {
        None => {
            println!(
                "no host service is installed for {org} ({} does not exist)",
                layout.unit.display()
            );
            return Ok(());
        }
        Some(false) => bail!(
            "{} was not written by tether host install: leaving it alone",
            layout.unit.display()
        ),
        Some(true) => {}
    }
    let stopped = match layout.kind {
        Kind::LaunchAgent => {
            let uid = nix::unistd::geteuid().as_raw();
            run(
                "launchctl",
                &["bootout", &format!("gui/{uid}/{}", layout.name)],
            )
        }
        Kind::UserUnit | Kind::SystemUnit => layout.systemctl(&["disable", "--now", &layout.name]),
    };
    if let Err(e) = stopped {
        eprintln!("warning: {e:#}");
    }
    std::fs::remove_file(&layout.unit)
        .with_context(|| format!("cannot remove {}", layout.unit.display()))?;
    match std::fs::read_to_string(&layout.env_file) {
        Ok(env) if env.starts_with(systemd::MARKER) => std::fs::remove_file(&layout.env_file)
            .with_context(|| format!("cannot remove {}", layout.env_file.display()))?,
        _ => {}
    }
    if layout.kind != Kind::LaunchAgent {
        let _ = layout.systemctl(&["daemon-reload"]);
    }
    println!("uninstalled the host service for {org}");
    Ok(())
}

/// The journal of `org`'s installed systemd unit, user unit first; `None` when neither
/// was written by `install`.
pub fn journal(settings: &Settings, org: &OrgId, follow: bool) -> Option<Command> {
    [Kind::UserUnit, Kind::SystemUnit]
        .into_iter()
        .filter_map(|kind| Layout::for_org(settings, org, kind).ok())
        .find(|layout| layout.installed(org) == Some(true))
        .map(|layout| layout.journal(follow))
}

/// Without lingering, a user's services stop at logout and start only at login.
fn linger_hint() -> anyhow::Result<()> {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .context("cannot tell who you are (no passwd entry for this uid)")?;
    let linger = run(
        "loginctl",
        &["show-user", &user, "--property=Linger", "--value"],
    );
    if !linger.is_ok_and(|l| l.trim() == "yes") {
        println!("lingering is off for {user}: the host service stops when you log out and waits for your next login after a reboot. To keep it running, run: loginctl enable-linger {user}");
    }
    Ok(())
}

fn user_home(user: &str) -> anyhow::Result<PathBuf> {
    nix::unistd::User::from_name(user)
        .ok()
        .flatten()
        .map(|u| u.dir)
        .with_context(|| format!("no user named {user} on this machine"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    crate::private_file::write_atomically(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `program args…`; its stdout, or an error with what it printed.
fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_that_could_break_a_unit_are_refused() {
        for ok in ["alice", "_svc", "bob-2", "machine$"] {
            check_user_name(ok).unwrap();
        }
        for bad in [
            "",
            "root\nUser=root",
            "Alice",
            "a b",
            "1x",
            "$",
            &"a".repeat(33),
        ] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_service_gets_the_trust_and_proxy_settings_the_cli_had() {
        let settings = Settings {
            home: PathBuf::from("/h"),
            api_url: "https://api.example.com".into(),
            relay_url: "wss://relay.example.com".into(),
            api_key: None,
        };
        let env = service_env(&settings, Path::new("/h"), |name| match name {
            "SSL_CERT_FILE" => Some("/etc/corp-ca.pem".into()),
            "https_proxy" => Some("http://proxy:3128".into()),
            "NO_PROXY" => Some(String::new()),
            _ => None,
        });
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                SERVICE_MANAGER_ENV,
                "TETHER_HOME",
                "TETHER_API_URL",
                "TETHER_RELAY_URL",
                "SSL_CERT_FILE",
                "https_proxy",
            ]
        );
    }
}
