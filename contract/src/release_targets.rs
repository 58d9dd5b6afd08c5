//! The release targets (contract section 8): each name, its Rust triple, its OS and CPU.
//! `cargo xtask dist` builds them, `tether self-update` names its own, and `install.sh`'s
//! table is checked against this one by a test.

/// Operating system of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Linux: ELF binaries.
    Linux,
    /// macOS: Mach-O binaries.
    Darwin,
}

/// CPU architecture of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// x86-64.
    X86_64,
    /// AArch64 / arm64.
    Aarch64,
}

impl Arch {
    /// The name used in the manifest and the summary table.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

/// One release target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The `--target` name, e.g. `linux-x64`.
    pub name: &'static str,
    /// The Rust target triple.
    pub triple: &'static str,
    /// Operating system.
    pub os: Os,
    /// CPU architecture.
    pub arch: Arch,
}

/// Every target tether ships.
pub const TARGETS: [Target; 4] = [
    Target {
        name: "linux-x64",
        triple: "x86_64-unknown-linux-musl",
        os: Os::Linux,
        arch: Arch::X86_64,
    },
    Target {
        name: "linux-arm64",
        triple: "aarch64-unknown-linux-musl",
        os: Os::Linux,
        arch: Arch::Aarch64,
    },
    Target {
        name: "darwin-arm64",
        triple: "aarch64-apple-darwin",
        os: Os::Darwin,
        arch: Arch::Aarch64,
    },
    Target {
        name: "darwin-x64",
        triple: "x86_64-apple-darwin",
        os: Os::Darwin,
        arch: Arch::X86_64,
    },
];

/// The target a Rust triple builds for (any libc), if tether ships one for it.
pub fn of_triple(triple: &str) -> Option<&'static Target> {
    let (arch, rest) = triple.split_once('-')?;
    let arch = match arch {
        "x86_64" => Arch::X86_64,
        "aarch64" => Arch::Aarch64,
        _ => return None,
    };
    let os = if rest.contains("linux") {
        Os::Linux
    } else if rest.contains("apple-darwin") {
        Os::Darwin
    } else {
        return None;
    };
    TARGETS.iter().find(|t| t.os == os && t.arch == arch)
}
