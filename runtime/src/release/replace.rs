//! Replacing the installed binaries: each new file is written beside its target and takes
//! its name by rename, the previous one kept as `<name>.old`; a failure half-way puts back
//! what was already swapped. `--rollback` swaps every `.old` with the current file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

/// Puts `bytes` at each path (mode 0755), keeping the replaced files as `.old`.
pub fn replace(files: &[(PathBuf, Vec<u8>)]) -> Result<(), String> {
    let mut staged = Vec::new();
    for (path, bytes) in files {
        let new = beside(path, "tether-new");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&new)
            .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()));
        if let Err(e) = written {
            discard(&staged);
            let _ = std::fs::remove_file(&new);
            return Err(format!("cannot write {}: {e}", new.display()));
        }
        staged.push((path.clone(), new));
    }
    let mut swapped: Vec<&PathBuf> = Vec::new();
    for (path, new) in &staged {
        let swap = std::fs::rename(path, old(path)).and_then(|_| std::fs::rename(new, path));
        if let Err(e) = swap {
            // Back to where we started: what was swapped returns, the rest is discarded.
            for done in swapped {
                let _ = std::fs::rename(old(done), done);
            }
            if !path.exists() {
                let _ = std::fs::rename(old(path), path);
            }
            discard(&staged);
            return Err(format!("cannot replace {}: {e}", path.display()));
        }
        swapped.push(path);
    }
    Ok(())
}

fn discard(staged: &[(PathBuf, PathBuf)]) {
    for (_, new) in staged {
        let _ = std::fs::remove_file(new);
    }
}

/// Swaps each path with its `.old` (so a second rollback undoes the first).
pub fn rollback(paths: &[PathBuf]) -> Result<(), String> {
    if let Some(missing) = paths.iter().find(|p| !old(p).is_file()) {
        return Err(format!(
            "no previous version to roll back to: {} is missing",
            old(missing).display()
        ));
    }
    for path in paths {
        let spare = beside(path, "tether-rollback");
        std::fs::rename(path, &spare)
            .and_then(|_| std::fs::rename(old(path), path))
            .and_then(|_| std::fs::rename(&spare, old(path)))
            .map_err(|e| format!("cannot roll back {}: {e}", path.display()))?;
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
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 4);

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
        assert_eq!(left, ["tether"], "staged files left behind");
    }

    #[test]
    fn rollback_without_a_previous_version_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("tether");
        std::fs::write(&a, "a1").expect("write");
        assert!(
            rollback(std::slice::from_ref(&a)).is_err_and(|e| e.contains("no previous version"))
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap_or_default(), "a1");
    }
}
