//! Replacing the installed binaries (contract section 8): each new file is staged beside
//! its target under a unique name (`O_EXCL|O_NOFOLLOW`: a planted file or symlink is never
//! written through), the previous one is kept as `<name>.old` by a hard link, and the new
//! one takes the name by one rename — so at every instant the path holds the old or the
//! new binary, never nothing. A failure half-way puts back what was already swapped; two
//! updates at once are serialised by a lock beside the first file. `--rollback` swaps
//! every `.old` with the current file, the same way.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::ReleaseError;

/// `<path>.<suffix>`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// The previous version of `path`, kept by [`replace`].
pub fn old(path: &Path) -> PathBuf {
    beside(path, "old")
}

/// The lock that serialises updates of one installation: `<first file>.update-lock`.
fn lock(files: &[PathBuf]) -> Result<File, ReleaseError> {
    let Some(first) = files.first() else {
        return Err(ReleaseError::Nothing);
    };
    let path = beside(first, "update-lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(o_nofollow())
        .open(&path)
        .map_err(|e| files_error("open", &path, e))?;
    fs4::fs_std::FileExt::lock_exclusive(&file).map_err(|e| files_error("lock", &path, e))?;
    Ok(file)
}

fn o_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits()
}

/// Creates a new file beside `path` under a name nobody else has (`O_CREAT|O_EXCL|O_NOFOLLOW`),
/// mode 0755; its path and the open file.
fn create_unique(path: &Path, purpose: &str) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let candidate = beside(
            path,
            &format!(
                "{purpose}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
        );
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .custom_flags(o_nofollow())
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free staging name")))
}

/// Makes `old(path)` the file now at `path` (a hard link, placed by rename), leaving
/// `path` in place.
fn keep_old(path: &Path) -> std::io::Result<()> {
    let (spare, file) = create_unique(path, "tether-old")?;
    drop(file);
    std::fs::remove_file(&spare)?;
    // The name was ours a moment ago; link() fails rather than follow anything put there.
    std::fs::hard_link(path, &spare)?;
    std::fs::rename(&spare, old(path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&spare);
    })
}

/// Puts `bytes` at each path (mode 0755), keeping the replaced files as `.old`.
pub fn replace(files: &[(PathBuf, Vec<u8>)]) -> Result<(), ReleaseError> {
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let _lock = lock(&paths)?;
    let mut staged = Vec::new();
    for (path, bytes) in files {
        let written = create_unique(path, "tether-new").and_then(|(new, mut f)| {
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .map(|_| new.clone())
                .inspect_err(|_| {
                    let _ = std::fs::remove_file(&new);
                })
        });
        match written {
            Ok(new) => staged.push((path.clone(), new)),
            Err(e) => {
                discard(&staged);
                return Err(files_error("stage a new", path, e));
            }
        }
    }
    let mut swapped: Vec<&PathBuf> = Vec::new();
    for (path, new) in &staged {
        let swap = keep_old(path).and_then(|_| std::fs::rename(new, path));
        if let Err(e) = swap {
            // Back to where we started: what was swapped returns, the rest is discarded.
            for done in swapped {
                let _ = std::fs::rename(old(done), done);
            }
            if !path.exists() {
                let _ = std::fs::rename(old(path), path);
            }
            discard(&staged);
            return Err(files_error("replace", path, e));
        }
        swapped.push(path);
    }
    Ok(())
}

fn files_error(action: &'static str, path: &Path, source: std::io::Error) -> ReleaseError {
    ReleaseError::Files {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn discard(staged: &[(PathBuf, PathBuf)]) {
    for (_, new) in staged {
        let _ = std::fs::remove_file(new);
    }
}

/// Swaps each path with its `.old` (so a second rollback undoes the first); each path
/// holds one of the two at every instant.
pub fn rollback(paths: &[PathBuf]) -> Result<(), ReleaseError> {
    let _lock = lock(paths)?;
    if let Some(missing) = paths.iter().find(|p| !old(p).is_file()) {
        return Err(ReleaseError::NoPrevious(old(missing)));
    }
    for path in paths {
        let swap = || -> std::io::Result<()> {
            let (spare, file) = create_unique(path, "tether-rollback")?;
            drop(file);
            std::fs::remove_file(&spare)?;
            std::fs::hard_link(path, &spare)?;
            std::fs::rename(old(path), path)?;
            std::fs::rename(&spare, old(path))
        };
        swap().map_err(|e| files_error("roll back", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_old_and_rollback_swaps_back_and_forth() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("tether");
        let b = dir.path().join("tether-host");
        std::fs::write(&a, "a1").expect("write");
        std::fs::write(&b, "b1").expect("write");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();

        replace(&[(a.clone(), b"a2".to_vec()), (b.clone(), b"b2".to_vec())]).expect("replace");
        assert_eq!((read(&a), read(&old(&a))), ("a2".into(), "a1".into()));
        assert_eq!((read(&b), read(&old(&b))), ("b2".into(), "b1".into()));
        // The two, their .old, and the lock.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 5);

        rollback(&[a.clone(), b.clone()]).expect("rollback");
        assert_eq!((read(&a), read(&old(&a))), ("a1".into(), "a2".into()));
        rollback(&[a.clone(), b.clone()]).expect("again");
        assert_eq!(read(&b), "b2");
    }

    #[test]
    fn a_failure_half_way_puts_everything_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("tether");
        std::fs::write(&a, "a1").expect("write");
        // The second target's directory does not exist: its staging write fails.
        let b = dir.path().join("missing/tether-host");
        let failed = replace(&[(a.clone(), b"a2".to_vec()), (b, b"b2".to_vec())]);
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap_or_default(), "a1");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(
            left,
            ["tether", "tether.update-lock"],
            "staged files left behind"
        );
    }

    #[test]
    fn planted_symlinks_are_never_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").expect("write");
        let a = dir.path().join("tether");
        std::fs::write(&a, "a1").expect("write");
        for planted in ["tether.tether-new", "tether.old", "tether.tether-rollback"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(planted)).expect("symlink");
        }
        replace(&[(a.clone(), b"a2".to_vec())]).expect("replace");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        assert_eq!(std::fs::read_to_string(&a).expect("new"), "a2");
        let old_meta = std::fs::symlink_metadata(old(&a)).expect("old");
        assert!(old_meta.is_file(), "the .old is still the planted symlink");
        rollback(std::slice::from_ref(&a)).expect("rollback");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        assert_eq!(std::fs::read_to_string(&a).expect("back"), "a1");
    }

    #[test]
    fn the_path_holds_a_whole_binary_at_every_instant_and_updates_serialise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("tether");
        let one = vec![b'1'; 64 * 1024];
        let two = vec![b'2'; 64 * 1024];
        std::fs::write(&a, &one).expect("write");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (a, stop) = (a.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let bytes = std::fs::read(&a).expect("the path is missing");
                    assert_eq!(bytes.len(), 64 * 1024, "a torn binary");
                    seen += 1;
                }
                seen
            })
        };
        let writers: Vec<_> = [one, two]
            .into_iter()
            .map(|bytes| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        replace(&[(a.clone(), bytes.clone())]).expect("replace");
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("writer");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(watcher.join().expect("watcher") > 0);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["tether", "tether.old", "tether.update-lock"]);
    }

    #[test]
    fn rollback_without_a_previous_version_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("tether");
        std::fs::write(&a, "a1").expect("write");
        let refused = rollback(std::slice::from_ref(&a));
        assert!(
            matches!(&refused, Err(ReleaseError::NoPrevious(path)) if *path == old(&a)),
            "{refused:?}"
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap_or_default(), "a1");
    }
}
