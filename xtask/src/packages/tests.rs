use std::collections::BTreeMap;

use super::check;
use super::contents::Facts;
use super::contents::{Completions, Source};
use super::*;
use crate::targets::Arch;

/// A bundle's worth of package input, with small stand-ins for the binaries.
fn source(git_sha: &str) -> Source {
    let mut binaries = BTreeMap::new();
    for (name, fill) in [("tether", 1u8), ("tether-host", 2), ("tether-ptyd", 3)] {
        binaries.insert(name, vec![fill; 4096]);
    }
    Source {
        version: "0.1.0".into(),
        target: "linux-x64".into(),
        arch: Arch::X86_64,
        git_sha: git_sha.into(),
        epoch: 1_790_000_000,
        binaries,
        license: b"MIT License\n\nCopyright (c) 2026 The tether developers\n".to_vec(),
        manpage: b".TH tether 1\n".to_vec(),
        completions: Completions {
            bash: b"complete -F _tether tether\n".to_vec(),
            zsh: b"#compdef tether\n".to_vec(),
            fish: b"complete -c tether\n".to_vec(),
        },
    }
}

fn built(format: Format, source: &Source) -> Vec<u8> {
    match format {
        Format::Deb => deb::build(source),
        Format::Rpm => rpm::build(source),
        Format::Oci => oci::build(source),
        Format::Tar => unreachable!("the archive is not a package"),
    }
    .expect("build")
}

#[test]
fn every_format_gives_the_same_bytes_twice_and_reads_back_right() {
    let source = source("0123456789ab");
    let dir = tempfile::tempdir().expect("dir");
    for format in [Format::Deb, Format::Rpm, Format::Oci] {
        let first = built(format, &source);
        assert_eq!(
            first,
            built(format, &source),
            "{format:?} is not reproducible"
        );
        let name = file_name(format, &source).expect("name");
        let path = dir.path().join(&name);
        std::fs::write(&path, &first).expect("write");
        let problems = check::problems(&path, &name, &source.binaries, &source.facts(format));
        assert!(problems.is_empty(), "{format:?}: {problems:?}");
    }
}

#[test]
fn a_package_of_other_binaries_or_another_commit_is_refused() {
    let source = source("0123456789ab");
    let dir = tempfile::tempdir().expect("dir");
    for format in [Format::Deb, Format::Rpm, Format::Oci] {
        let name = file_name(format, &source).expect("name");
        let path = dir.path().join(&name);
        std::fs::write(&path, built(format, &source)).expect("write");
        let mut other = source.binaries.clone();
        other.insert("tether-ptyd", vec![9; 4096]);
        let problems = check::problems(&path, &name, &other, &source.facts(format));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("tether-ptyd differs from the archive's")),
            "{format:?}: {problems:?}"
        );
        let facts = Facts {
            git_sha: "ba9876543210".into(),
            ..source.facts(format)
        };
        let problems = check::problems(&path, &name, &source.binaries, &facts);
        assert!(
            problems.iter().any(|p| p.contains("another commit")),
            "{format:?}: {problems:?}"
        );
    }
}

#[test]
fn the_image_runs_the_host_as_65532_with_its_state_in_var_lib_tether() {
    let source = source("0123456789ab");
    let layout = built(Format::Oci, &source);
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(layout.as_slice()).entries().expect("tar") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        files.insert(path, bytes);
    }
    let json = |digest: &serde_json::Value| -> serde_json::Value {
        let hex = digest
            .as_str()
            .expect("digest")
            .trim_start_matches("sha256:");
        serde_json::from_slice(&files[&format!("blobs/sha256/{hex}")]).expect("json")
    };
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index");
    let manifest = json(&index["manifests"][0]["digest"]);
    let config = json(&manifest["config"]["digest"]);
    assert_eq!(config["config"]["User"], "65532:65532");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/lib/tether/tether-host"])
    );
    let env = config["config"]["Env"].to_string();
    assert!(env.contains("TETHER_HOME=/var/lib/tether"), "{env}");
    // One layer: the three binaries, their directories and the state directory only.
    let hex = manifest["layers"][0]["digest"].as_str().expect("layer");
    let layer = &files[&format!("blobs/sha256/{}", hex.trim_start_matches("sha256:"))];
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(layer.as_slice()),
        &mut plain,
    )
    .expect("gunzip");
    let mut entries = Vec::new();
    for entry in tar::Archive::new(plain.as_slice()).entries().expect("tar") {
        let entry = entry.expect("entry");
        let owner = entry.header().uid().expect("uid");
        entries.push((entry.path().expect("path").display().to_string(), owner));
    }
    let names: Vec<&str> = entries.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "usr/",
            "usr/bin/",
            "usr/bin/tether",
            "usr/lib/",
            "usr/lib/tether/",
            "usr/lib/tether/tether-host",
            "usr/lib/tether/tether-ptyd",
            "var/",
            "var/lib/",
            "var/lib/tether/"
        ]
    );
    assert!(entries.contains(&("var/lib/tether/".to_string(), 65532)));
}
