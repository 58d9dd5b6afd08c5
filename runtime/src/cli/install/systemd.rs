//! The systemd units `tether host install` writes (contract section 10): one per org,
//! `tether-host` in the foreground, restarted on failure, `KillMode=process` so a
//! restart leaves `tether-ptyd` and its shells alone, and every setting (the credential
//! too) in an `EnvironmentFile`, never on `ExecStart`.

use std::path::Path;

use crate::OrgId;

/// First line of every unit tether writes: `uninstall` removes only files that carry it.
pub const MARKER: &str = "# Written by `tether host install`; `tether host uninstall` removes it.";

/// A user unit's file name: `tether-host@<org>.service`.
pub fn user_unit_name(org: &OrgId) -> String {
    format!("tether-host@{}.service", escape_instance(org))
}

/// A system unit's file name: `tether-host-<org>.service`.
pub fn system_unit_name(org: &OrgId) -> String {
    format!("tether-host-{}.service", escape_instance(org))
}

/// What varies between units.
#[derive(Debug, Clone)]
pub struct UnitSpec<'a> {
    /// Organization served.
    pub org: &'a OrgId,
    /// Absolute path of `tether-host`.
    pub host: &'a Path,
    /// The environment file.
    pub env_file: &'a Path,
    /// `Some(user)` for a system unit running as that user; `None` for a user unit.
    pub system_user: Option<&'a str>,
}

/// The unit file's text.
pub fn unit(spec: &UnitSpec<'_>) -> String {
    let (after, user, wanted_by) = match spec.system_user {
        Some(user) => (
            "After=network-online.target\nWants=network-online.target\n",
            format!("User={user}\n"),
            "multi-user.target",
        ),
        None => ("", String::new(), "default.target"),
    };
    format!(
        "{MARKER}
[Unit]
Description=tether host service for organization {org}
Documentation=https://github.com/tether-dev/tether
{after}
[Service]
Type=simple
{user}EnvironmentFile={env_file}
ExecStart={exec} --org {org_arg}
Restart=on-failure
RestartSec=2
KillMode=process

[Install]
WantedBy={wanted_by}
",
        org = spec.org.replace('%', "%%"),
        env_file = quote(&spec.env_file.to_string_lossy()),
        exec = quote(&spec.host.to_string_lossy()),
        org_arg = quote(spec.org),
    )
}

/// A word for a unit file: `%` doubled, and in double quotes when it holds a space, a
/// quote or a backslash.
fn quote(word: &str) -> String {
    let word = word.replace('%', "%%");
    if word.contains([' ', '"', '\\', '\'', '\t']) {
        format!("\"{}\"", word.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        word
    }
}

/// An org as a unit instance name (`systemd-escape`'s rules for the characters an org
/// id may hold: letters, digits, `_`, `.` and `:` stay; everything else is `\xNN`).
fn escape_instance(org: &str) -> String {
    org.bytes()
        .enumerate()
        .map(|(i, b)| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':' => (b as char).to_string(),
            b'.' if i > 0 => ".".to_string(),
            other => format!("\\x{other:02x}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> OrgId {
        OrgId::parse(id).expect("org")
    }

    #[test]
    fn user_unit() {
        let text = unit(&UnitSpec {
            org: &org("org_a"),
            host: Path::new("/opt/tether/lib/tether-host"),
            env_file: Path::new("/home/alice/.config/tether/service/host-org_a.env"),
            system_user: None,
        });
        insta::assert_snapshot!(text);
    }

    #[test]
    fn system_unit() {
        let text = unit(&UnitSpec {
            org: &org("org_a"),
            host: Path::new("/opt/tether dir/lib/tether-host"),
            env_file: Path::new("/etc/tether/host-org_a.env"),
            system_user: Some("alice"),
        });
        insta::assert_snapshot!(text);
    }

    #[test]
    fn org_ids_become_safe_instance_names() {
        assert_eq!(user_unit_name(&org("org_a")), "tether-host@org_a.service");
        assert_eq!(user_unit_name(&org("a:b.c")), "tether-host@a:b.c.service");
        assert_eq!(system_unit_name(&org("-x")), "tether-host-\\x2dx.service");
    }
}
