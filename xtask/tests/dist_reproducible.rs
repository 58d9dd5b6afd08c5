//! `cargo xtask dist --target linux-x64` twice, from two empty target directories:
//! both archives verify, and they are byte-identical.

use std::path::Path;
use std::process::Command;

fn dist(out: &Path, target_dir: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["dist", "--target", "linux-x64", "--out-dir"])
        .arg(out)
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .status()
        .expect("run xtask dist");
    assert!(
        status.success(),
        "cargo xtask dist --target linux-x64 failed (run `bash .ci/setup` first)"
    );
}

#[test]
fn two_dist_runs_of_one_commit_give_identical_archives() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    dist(&a, &tmp.path().join("target-a"));
    dist(&b, &tmp.path().join("target-b"));

    let archives: Vec<_> = std::fs::read_dir(&a)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let name = &archives[0];
    assert!(
        name.starts_with("tether-") && name.ends_with("-linux-x64.tar.gz"),
        "{name}"
    );
    let bytes_a = std::fs::read(a.join(name)).expect("archive a");
    let bytes_b = std::fs::read(b.join(name)).expect("archive b");
    assert!(bytes_a == bytes_b, "two builds of the same commit differ");
    assert_eq!(
        std::fs::read_to_string(a.join(format!("{name}.sha256"))).expect("sidecar a"),
        std::fs::read_to_string(b.join(format!("{name}.sha256"))).expect("sidecar b"),
    );
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{name}.sha256"))
        .current_dir(&a)
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&check.stdout)
    );
}
