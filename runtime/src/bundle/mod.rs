//! Where the binaries find each other: the CLI finds `tether-host` in `../lib/tether/`
//! (as `install.sh` lays it out) or `../lib/` (as the archive does) relative to its real
//! path (symlinks resolved), or beside it in a development build; the host service finds
//! `tether-ptyd` beside itself and nowhere else (contract sections 5 and 8).

use tether_contract::bundle_layout as layout;

use std::path::{Path, PathBuf};

const HOST_NAME: &str = layout::HOST.name;
const PTYD_NAME: &str = layout::PTYD.name;

/// The one place the pty daemon may be: beside `exe`.
pub fn ptyd_path_beside(exe: &Path) -> PathBuf {
    exe.parent()
        .map(|dir| dir.join(PTYD_NAME))
        .unwrap_or_else(|| PathBuf::from(PTYD_NAME))
}

/// The places `tether-host` may be, in order, for a CLI at `cli` (already resolved).
pub fn host_candidates(cli: &Path) -> Vec<PathBuf> {
    let Some(bin_dir) = cli.parent() else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(root) = bin_dir.parent() {
        out.push(root.join(layout::INSTALLED_LIB_DIR).join(HOST_NAME));
        out.push(root.join("lib").join(HOST_NAME));
    }
    out.push(bin_dir.join(HOST_NAME));
    out
}

/// Finds `tether-host` for this CLI; the error names every path looked at.
pub fn find_host() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let candidates = host_candidates(&exe);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<_> = candidates.iter().map(|p| p.display().to_string()).collect();
            anyhow::anyhow!(
                "host service not found at {}: the bundle is incomplete",
                looked.join(" or ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_layout_then_the_archive_then_the_dev_layout() {
        let found = host_candidates(Path::new("/opt/tether/bin/tether"));
        assert_eq!(
            found,
            [
                PathBuf::from("/opt/tether/lib/tether/tether-host"),
                PathBuf::from("/opt/tether/lib/tether-host"),
                PathBuf::from("/opt/tether/bin/tether-host")
            ]
        );
    }
}
