//! `verify` against archives built here, good and broken in each way it must catch.

use super::*;
use crate::bundle::archive::{sidecar_line, BundleFile};
use crate::fixtures::{bundle_archive, bundle_files, fixture};

const NAME: &str = "tether-0.1.0-linux-x64.tar.gz";

fn files_with(ptyd: Option<Vec<u8>>) -> Vec<BundleFile> {
    bundle_files(ptyd)
}

/// Packs `files` with a manifest describing `described` (normally the same files).
fn archive(files: &[BundleFile], described: &[BundleFile]) -> Vec<u8> {
    bundle_archive("0.1.0", files, described)
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
    // The samples carry Cargo.lock's versions in .dep-v0, so their hashes move with it:
    // the expected text is computed, not a snapshot.
    let (a, b) = (&tampered[0].bytes, &files[0].bytes);
    let short = |bytes: &[u8]| crate::bundle::digest::sha256_hex(bytes)[..12].to_string();
    let expected = format!(
        "{NAME}: bin/tether: sha256 {} does not match manifest.json's {}\n\
         {NAME}: bin/tether: size {} does not match manifest.json's {}",
        short(a),
        short(b),
        a.len(),
        b.len()
    );
    assert_eq!(problems(&archive(&tampered, &files)), expected);
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

#[test]
fn a_release_check_refuses_a_test_build() {
    let key = crate::bundle::release_key::official().expect("keys/release.pub");
    let files = files_with(Some(fixture("static-x86_64")));
    // The manifest names the official id, but the CLI does not hold the key.
    let bytes = archive(&files, &files);
    let problems = crate::bundle::release_key::release_problems(NAME, &bytes, &key);
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("bin/tether: does not trust keys/release.pub"));

    // A CLI that holds the key, in a bundle whose manifest names it: a release.
    let mut cli = fixture("static-x86_64");
    cli.extend_from_slice(key.base64.as_bytes());
    let mut release = files.clone();
    release[0].bytes = cli;
    let bytes = archive(&release, &release);
    let none = crate::bundle::release_key::release_problems(NAME, &bytes, &key);
    assert_eq!(none, Vec::<String>::new());

    // The same CLI in a bundle whose manifest names a test key.
    let test = crate::fixtures::bundle_archive_with_key("0.1.0", "0123456789ABCDEF", &release);
    let problems = crate::bundle::release_key::release_problems(NAME, &test, &key);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a test build: its release key is 0123456789ABCDEF")),
        "{problems:#?}"
    );
}

#[test]
fn every_binary_must_carry_dependencies_cargo_lock_knows() {
    let mut files = files_with(Some(fixture("static-x86_64")));
    files[1].bytes = fixture("static-x86_64");
    let unlisted = problems(&archive(&files, &files));
    assert!(
        unlisted.contains("lib/tether-host: no readable .dep-v0 section"),
        "{unlisted}"
    );

    let mut files = files_with(Some(fixture("static-x86_64")));
    let forged = [("tether", "0.1.0"), ("left-pad", "9.9.9")];
    files[3].bytes = crate::fixtures::auditable_listing(&fixture("static-x86_64"), &forged);
    let strangers = problems(&archive(&files, &files));
    assert!(
        strangers
            .contains("lib/tether-ptyd: .dep-v0 lists crates Cargo.lock does not: left-pad 9.9.9"),
        "{strangers}"
    );
}

#[test]
fn the_sbom_must_be_there_and_name_the_cli_crates() {
    let files = files_with(Some(fixture("static-x86_64")));
    let report = verify_bytes(NAME, &archive(&files, &files), None);
    let cli = report.cli_crates.as_ref();
    assert!(cli.is_some_and(|c| c.iter().any(|(name, _)| name == "serde")));
    assert_eq!(
        sbom_problems(NAME, Some(&crate::fixtures::sbom()), cli),
        Vec::<String>::new()
    );
    let missing = sbom_problems(NAME, None, cli).join("\n");
    assert!(
        missing.contains("tether-0.1.0-linux-x64.cdx.json: missing"),
        "{missing}"
    );
    let other = crate::fixtures::sbom().replace("\"serde\"", "\"serde_json\"");
    let differs = sbom_problems(NAME, Some(&other), cli).join("\n");
    assert!(
        differs.contains("only in the SBOM: serde_json"),
        "{differs}"
    );
    let garbage = sbom_problems(NAME, Some("{}"), cli).join("\n");
    assert!(garbage.contains("not CycloneDX JSON"), "{garbage}");
}
