//! Test helpers: the sample binaries in `fixtures/bin/`.

use std::path::PathBuf;

/// Path of a sample binary.
pub fn fixture_path(name: &str) -> PathBuf {
    crate::flags::project_root().join("fixtures/bin").join(name)
}

/// Bytes of a sample binary.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
