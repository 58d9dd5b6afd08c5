//! `verify` against archives built here, good and broken in each way it must catch.

use super::*;
use crate::bundle::archive::{pack, sidecar_line, BundleFile};
use crate::bundle::manifest::describe;
use crate::fixtures::fixture;

const NAME: &str = "tether-0.1.0-linux-x64.tar.gz";
const TOP: &str = "tether-0.1.0-linux-x64";

fn files_with(ptyd: Option<Vec<u8>>) -> Vec<BundleFile> {
    let bin = |path: &str, bytes: Vec<u8>| BundleFile {
        path: path.into(),
        bytes,
        executable: true,
    };
    let mut files = vec![
        bin("bin/tether", fixture("static-x86_64")),
        bin("lib/tether-host", fixture("static-x86_64")),
        BundleFile {
            path: "README.md".into(),
            bytes: b"# tether\n".to_vec(),
            executable: false,
        },
    ];
    if let Some(bytes) = ptyd {
        files.push(bin("lib/tether-ptyd", bytes));
    }
    files
}

/// Packs `files` with a manifest describing `described` (normally the same files).
fn archive(files: &[BundleFile], described: &[BundleFile]) -> Vec<u8> {
    let target = crate::targets::by_name("linux-x64").expect("target");
    let manifest = describe("0.1.0", &target, "abc123def456", described);
    let mut all = files.to_vec();
    all.push(BundleFile {
        path: "manifest.json".into(),
        bytes: serde_json::to_vec_pretty(&manifest).expect("json"),
        executable: false,
    });
    pack(TOP, &all, 1).expect("pack")
}

fn problems(bytes: &[u8]) -> String {
    verify_bytes(NAME, bytes, Some(&sidecar_line(bytes, NAME)))
        .problems
        .join("\n")
}

#[test]
fn a_good_bundle_passes_with_its_table() {
    let files = files_with(Some(fixture("static-x86_64")));
    let bytes = archive(&files, &files);
    let report = verify_bytes(NAME, &bytes, Some(&sidecar_line(&bytes, NAME)));
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let ptyd = report
        .rows
        .iter()
        .find(|r| r.path == "lib/tether-ptyd")
        .expect("ptyd row");
    assert_eq!(
        (ptyd.arch.as_str(), ptyd.linkage.as_str()),
        ("x86_64", "static")
    );
}

#[test]
fn missing_ptyd() {
    let files = files_with(None);
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn wrong_arch_binary() {
    let files = files_with(Some(fixture("static-aarch64")));
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn tampered_hash() {
    let files = files_with(Some(fixture("static-x86_64")));
    let mut tampered = files.clone();
    tampered[0].bytes.extend_from_slice(b"\0backdoor");
    insta::assert_snapshot!(problems(&archive(&tampered, &files)));
}

#[test]
fn extra_file() {
    let mut files = files_with(Some(fixture("static-x86_64")));
    files.push(BundleFile {
        path: "lib/libevil.so".into(),
        bytes: b"x".to_vec(),
        executable: false,
    });
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn dynamic_binary_over_the_glibc_floor() {
    let files = files_with(Some(fixture("dynamic-glibc-x86_64")));
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn unstripped_binary() {
    let files = files_with(Some(fixture("unstripped-x86_64")));
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn not_executable() {
    let mut files = files_with(Some(fixture("static-x86_64")));
    files[0].executable = false;
    insta::assert_snapshot!(problems(&archive(&files, &files)));
}

#[test]
fn sidecar_missing_or_wrong() {
    let files = files_with(Some(fixture("static-x86_64")));
    let bytes = archive(&files, &files);
    let missing = verify_bytes(NAME, &bytes, None).problems;
    assert_eq!(
        missing,
        [format!(
            "{NAME}: {NAME}.sha256: missing: every archive ships with its checksum"
        )]
    );
    let wrong = verify_bytes(NAME, &bytes, Some(&format!("{}  {NAME}\n", "0".repeat(64)))).problems;
    assert_eq!(wrong.len(), 1);
    assert!(wrong[0].contains("does not match the archive"), "{wrong:?}");
}

#[test]
fn not_an_archive() {
    insta::assert_snapshot!(problems(b"this is not a tarball"));
}
