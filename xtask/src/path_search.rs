//! Finding a program on `PATH`, for the steps that need a tool the machine may lack.

use std::path::PathBuf;

/// Where `tool` is on `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}
