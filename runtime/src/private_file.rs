//! Files only this user may read: lock files (opened `0600`, never truncated, so a second
//! opener does not disturb the holder) and files replaced atomically (a `0600` temp file,
//! fsync, rename, fsync of the directory), so a crash or `kill -9` never leaves one torn.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens (or creates) the lock file at `path`.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// Replaces the file at `path` with `bytes`, atomically. The temp file is created new
/// (`O_EXCL`, `O_NOFOLLOW`: never a file or link someone placed there) and removed on any
/// error; temp files that interrupted writers left behind are removed first.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.tmp-");
    remove_abandoned_temps(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes `<prefix><pid>` files in `dir` whose writer process is gone (they hold tokens).
fn remove_abandoned_temps(dir: &Path, prefix: &str) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = pid > 0
            && pid != std::process::id() as i32
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `dir` (and its parents) with mode `0700`; an existing one must be this user's,
/// and is narrowed to `0700` if group or others could reach it.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "it belongs to uid {}, not to you (uid {me}): it would hold your credentials; use a directory of your own (TETHER_HOME)",
                meta.uid()
            ),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", meta.mode() & 0o777),
            "the state directory was open to other users: narrowing it to 0700"
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn abandoned_temp_files_go_and_a_failed_write_leaves_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        // A writer that died (no such pid) left its temp file with tokens in it.
        let abandoned = dir.path().join(".config.json.tmp-2147483646");
        std::fs::write(&abandoned, "tokens").expect("plant");
        write_atomically(&path, b"{}").expect("write");
        assert!(
            !abandoned.exists(),
            "the abandoned temp file is still there"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"{}");

        // The rename cannot replace a directory: the write fails and leaves no temp file.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).expect("dir");
        std::fs::write(blocked.join("x"), "x").expect("fill");
        assert!(write_atomically(&blocked, b"{}").is_err());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_link_planted_at_the_temp_path_is_never_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").expect("victim");
        let tmp = dir
            .path()
            .join(format!(".config.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).expect("link");
        write_atomically(&dir.path().join("config.json"), b"{}").expect("write");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "untouched");
    }

    #[test]
    fn a_state_directory_open_to_others_is_narrowed_and_anothers_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("tether");
        std::fs::create_dir(&home).expect("mkdir");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        private_dir(&home).expect("narrowed");
        assert_eq!(
            std::fs::metadata(&home).expect("meta").mode() & 0o777,
            0o700
        );
        if nix::unistd::geteuid().is_root() {
            let theirs = dir.path().join("theirs");
            std::fs::create_dir(&theirs).expect("mkdir");
            nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(4242)), None)
                .expect("chown");
            let err = private_dir(&theirs).expect_err("another user's directory");
            assert!(err.to_string().contains("uid 4242"), "{err}");
        }
    }
}
