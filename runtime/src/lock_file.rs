//! Lock files: opened `0600`, created if missing and never truncated, so that a second
//! process opening one does not disturb the holder. The lock itself is an `flock`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (or creates) the lock file at `path`.
pub fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}
