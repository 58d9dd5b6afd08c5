//! The bundle's layout, declared once. The CLI and the host service read it to find
//! their siblings; `cargo xtask` stages, packages and verifies bundles by it.

/// One binary of the bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundleBinary {
    /// Its file name.
    pub name: &'static str,
    /// Where it sits, relative to the bundle's root.
    pub path: &'static str,
}

/// The CLI, the one binary meant to be on `PATH`.
pub const CLI: BundleBinary = BundleBinary {
    name: "tether",
    path: "bin/tether",
};
/// The host service, in `lib/`: the CLI finds it at `../lib/` from its own real path.
pub const HOST: BundleBinary = BundleBinary {
    name: "tether-host",
    path: "lib/tether-host",
};
/// The pty daemon, beside the host service and nowhere else.
pub const PTYD: BundleBinary = BundleBinary {
    name: "tether-ptyd",
    path: "lib/tether-ptyd",
};
/// Where `install.sh` puts the daemons under its prefix (`bin/tether` stays in `bin/`), so
/// that a prefix such as `~/.local` keeps tether's files in a folder of their own.
pub const INSTALLED_LIB_DIR: &str = "lib/tether";
/// Every binary of the bundle.
pub const BINARIES: [BundleBinary; 3] = [CLI, HOST, PTYD];
/// The manifest: version, target, commit, and each file's size and sha256.
pub const MANIFEST: &str = "manifest.json";
/// The directories a bundle holds.
pub const DIRECTORIES: [&str; 2] = ["bin", "lib"];
/// Files a bundle may hold besides the binaries and the manifest.
pub const OPTIONAL: [&str; 2] = ["README.md", "LICENSE"];
