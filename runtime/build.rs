//! Bakes into the binaries the git commit and the target triple (for `--version`) and
//! the release public key `self-update` trusts: `keys/release.pub`, or the minisign public
//! key file named by `TETHER_RELEASE_PUBKEY` (test builds; `manifest.json` records its id).
use std::path::{Path, PathBuf};
use std::process::Command;

use tether_contract::key_file;

fn main() {
    bake_release_key();
    println!("cargo:rerun-if-env-changed=TETHER_GIT_SHA");
    let git_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.git");
    for watched in ["HEAD", "refs/heads"] {
        let path = git_dir.join(watched);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let sha = std::env::var("TETHER_GIT_SHA").ok().unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string())
    });
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=TETHER_GIT_SHA={sha}");
    println!("cargo:rustc-env=TETHER_TARGET={target}");
}

fn bake_release_key() {
    println!("cargo:rerun-if-env-changed=TETHER_DEFAULT_DOWNLOAD_URL");
    let download = std::env::var("TETHER_DEFAULT_DOWNLOAD_URL").unwrap_or_default();
    println!("cargo:rustc-env=TETHER_DEFAULT_DOWNLOAD_URL={download}");
    println!("cargo:rerun-if-env-changed=TETHER_RELEASE_PUBKEY");
    let path = std::env::var_os("TETHER_RELEASE_PUBKEY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../keys/release.pub"));
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the release public key {}: {e}", path.display()));
    let key = key_file::key_line(&text)
        .filter(|line| key_file::key_id(line).is_some())
        .unwrap_or_else(|| panic!("{} is not a minisign public key", path.display()));
    println!("cargo:rustc-env=TETHER_RELEASE_PUBKEY={key}");
    let id = key_file::key_id(key).unwrap_or_default();
    println!("cargo:rustc-env=TETHER_RELEASE_KEY_ID={id}");
}
