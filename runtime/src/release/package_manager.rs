//! Whether a file belongs to a system package: `tether self-update` leaves files that
//! dpkg or rpm installed to their package manager (contract section 11).

use std::path::Path;
use std::process::{Command, Stdio};

/// The package manager that owns a file, and how to update through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// `dpkg` or `rpm`.
    pub manager: &'static str,
    /// The package the file belongs to.
    pub package: String,
}

impl Owner {
    /// The command a user runs instead of `tether self-update`.
    pub fn update_command(&self) -> String {
        match self.manager {
            "dpkg" => format!("apt-get install --only-upgrade {}", self.package),
            _ => format!("dnf upgrade {}", self.package),
        }
    }
}

/// The package manager owning `file`: dpkg asked with `dpkg-query -S`, then rpm with
/// `rpm -qf`, each when installed. `None` for files no package owns.
pub fn owner(file: &Path) -> Option<Owner> {
    dpkg_owner(file).or_else(|| rpm_owner(file))
}

/// The dpkg package owning `file` (dpkg's database is read only through dpkg-query).
fn dpkg_owner(file: &Path) -> Option<Owner> {
    let out = Command::new("dpkg-query")
        .arg("-S")
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let package = package_in_search(&String::from_utf8_lossy(&out.stdout), file.to_str()?)?;
    Some(Owner {
        manager: "dpkg",
        package,
    })
}

/// The package `dpkg-query -S <path>` names for exactly `path` (`tether:amd64: /usr/bin/tether`
/// → `tether`); diversion lines and other paths the pattern matched are skipped.
pub fn package_in_search(output: &str, path: &str) -> Option<String> {
    output.lines().find_map(|line| {
        if line.starts_with("diversion ") {
            return None;
        }
        let packages = line.strip_suffix(path)?.strip_suffix(": ")?;
        let first = packages.split(", ").next()?;
        let name = first.split(':').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// The rpm package owning `file`, by `rpm -qf` (rpm's database has no stable text form).
fn rpm_owner(file: &Path) -> Option<Owner> {
    let out = Command::new("rpm")
        .args(["-qf", "--queryformat", "%{NAME}"])
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let package = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !package.trim().is_empty()).then(|| Owner {
        manager: "rpm",
        package: package.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_dpkg_query_names_for_exactly_that_path() {
        let found = package_in_search("tether:amd64: /usr/bin/tether\n", "/usr/bin/tether");
        assert_eq!(found.as_deref(), Some("tether"));
        let owner = Owner {
            manager: "dpkg",
            package: "tether".into(),
        };
        assert_eq!(
            owner.update_command(),
            "apt-get install --only-upgrade tether"
        );
        // A longer path the pattern also matched, and a diversion line, name nobody.
        let other = "tether: /usr/bin/tether-old\ndiversion by x from: /usr/bin/tether\n";
        assert_eq!(package_in_search(other, "/usr/bin/tether"), None);
        assert_eq!(
            package_in_search("a, b: /usr/bin/tether\n", "/usr/bin/tether").as_deref(),
            Some("a")
        );
    }
}
