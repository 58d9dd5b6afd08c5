//! Where an installed host service's files go: the unit (or agent), its env file, and
//! how its manager is asked about it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

use super::{launchd, run, systemd};
use crate::settings::Settings;
use crate::OrgId;

/// What manages an installed host service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A systemd user unit (the default on Linux).
    UserUnit,
    /// A systemd system unit (`--system`).
    SystemUnit,
    /// A launchd agent (the default on macOS).
    LaunchAgent,
}

impl Kind {
    /// The kind `install`/`uninstall` act on, given `--system`.
    pub fn chosen(system: bool) -> Kind {
        if system {
            Kind::SystemUnit
        } else if cfg!(target_os = "macos") {
            Kind::LaunchAgent
        } else {
            Kind::UserUnit
        }
    }
}

/// Where an installation's files go.
#[derive(Debug, Clone)]
pub struct Layout {
    /// What manages it.
    pub kind: Kind,
    /// The unit (or plist) file.
    pub unit: PathBuf,
    /// The environment file (systemd only; the plist holds its environment).
    pub env_file: PathBuf,
    /// The unit's name for `systemctl`, or the launchd label.
    pub name: String,
}

impl Layout {
    /// The layout of `kind` for `org`.
    pub fn for_org(settings: &Settings, org: &OrgId, kind: Kind) -> anyhow::Result<Layout> {
        let user_env_file = || {
            settings
                .home
                .join("service")
                .join(format!("host-{org}.env"))
        };
        Ok(match kind {
            Kind::SystemUnit => {
                let name = systemd::system_unit_name(org);
                Layout {
                    kind,
                    unit: PathBuf::from("/etc/systemd/system").join(&name),
                    env_file: PathBuf::from("/etc/tether").join(format!("host-{org}.env")),
                    name,
                }
            }
            Kind::LaunchAgent => {
                let name = launchd::label(org);
                Layout {
                    kind,
                    unit: home_dir()?
                        .join("Library/LaunchAgents")
                        .join(format!("{name}.plist")),
                    env_file: user_env_file(),
                    name,
                }
            }
            Kind::UserUnit => {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map_or_else(|| home_dir().map(|h| h.join(".config")), Ok)?;
                let name = systemd::user_unit_name(org);
                Layout {
                    kind,
                    unit: config.join("systemd/user").join(&name),
                    env_file: user_env_file(),
                    name,
                }
            }
        })
    }

    /// True when `install` wrote this layout's unit (it carries the marker).
    pub fn installed(&self, org: &OrgId) -> Option<bool> {
        let text = std::fs::read_to_string(&self.unit).ok()?;
        Some(text.starts_with(systemd::MARKER) || text.contains(&launchd::label(org)))
    }

    /// Runs `systemctl` for this unit's manager (`--user` for a user unit).
    pub(super) fn systemctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let user: &[&str] = if self.kind == Kind::UserUnit {
            &["--user"]
        } else {
            &[]
        };
        run("systemctl", &[user, args].concat())
    }

    /// `journalctl` showing this unit's log.
    pub fn journal(&self, follow: bool) -> Command {
        let mut journal = Command::new("journalctl");
        if self.kind == Kind::UserUnit {
            journal.arg("--user");
        }
        journal.args(["--unit", &self.name, "--no-pager", "--output", "cat"]);
        if follow {
            journal.arg("--follow");
        }
        journal
    }
}

fn home_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .context("HOME is not set: cannot tell where the service files go")
}
