//! `tether self-update` on an installed copy of the real binaries: a release signed by
//! another key or an archive that does not match changes nothing; a good one replaces the
//! files (keeping `.old`) and the host service restarts on them with its terminal alive.

use std::path::Path;

use minisign::KeyPair;
use serde_json::json;
use sha2::{Digest, Sha256};
use tether::release::{self, Installed, Offer, ReleaseError, Source};
use tether::settings::Settings;
use tether_contract::environment::HOME_ENV;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

const NEW_VERSION: &str = "9.9.9";

fn target() -> &'static str {
    tether::release::target_name(tether::version::TARGET).expect("a shipped target")
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A copy of the debug bundle as install.sh lays it out: `bin/tether`, `lib/tether/…`.
fn install_copy(root: &Path) -> Installed {
    let installed = Installed {
        cli: root.join("bin/tether"),
        host: root.join("lib/tether/tether-host"),
        ptyd: root.join("lib/tether/tether-ptyd"),
    };
    for (to, name) in installed
        .paths()
        .iter()
        .zip(["tether", "tether-host", "tether-ptyd"])
    {
        std::fs::create_dir_all(to.parent().expect("dir")).expect("mkdir");
        std::fs::copy(bin(name), to).expect("copy");
    }
    installed
}

/// `tether-<version>-<target>.tar.gz` holding the debug binaries and their manifest.
fn archive(version: &str) -> Vec<u8> {
    let top = format!("tether-{version}-{}", target());
    let files: Vec<(&str, Vec<u8>)> = [
        ("bin/tether", "tether"),
        ("lib/tether-host", "tether-host"),
        ("lib/tether-ptyd", "tether-ptyd"),
    ]
    .into_iter()
    .map(|(path, name)| (path, std::fs::read(bin(name)).expect("binary")))
    .collect();
    let manifest = json!({
        "name": "tether", "version": version, "target": target(),
        "files": files.iter().map(|(p, b)| json!({"path": p, "sha256": hex(b)})).collect::<Vec<_>>(),
    });
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        tar.append_data(&mut header, format!("{top}/{path}"), bytes)
            .expect("append");
    };
    for (path, bytes) in &files {
        add(path, bytes);
    }
    add("manifest.json", manifest.to_string().as_bytes());
    tar.into_inner().expect("tar").finish().expect("gzip")
}

/// Serves a release of `version`: `latest.json` naming `archive` (whose hash is `sha256`),
/// signed with `key`.
async fn serve_release(
    server: &MockServer,
    version: &str,
    archive: Vec<u8>,
    sha256: &str,
    key: &KeyPair,
) {
    let name = format!("tether-{version}-{}.tar.gz", target());
    let latest = json!({
        "version": version,
        "targets": {target(): {"url": format!("{}/{name}", server.uri()), "sha256": sha256}},
    })
    .to_string();
    let signature = minisign::sign(None, &key.sk, std::io::Cursor::new(&latest), None, None)
        .expect("sign")
        .to_string();
    for (file, body) in [
        ("/latest.json".to_string(), latest.into_bytes()),
        ("/latest.json.minisig".to_string(), signature.into_bytes()),
        (format!("/{name}"), archive),
    ] {
        Mock::given(method("GET"))
            .and(path(file))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(body))
            .mount(server)
            .await;
    }
}

fn unchanged(installed: &Installed) {
    for path in installed.paths() {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            std::fs::read(&path).map(|b| hex(&b)).ok(),
            std::fs::read(bin(&name)).map(|b| hex(&b)).ok(),
            "{} changed",
            path.display()
        );
        let old = tether::release::kept_old(&path);
        assert!(!old.exists(), "{} appeared", old.display());
    }
}

#[tokio::test]
async fn a_release_signed_by_another_key_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let installed = install_copy(root.path());
    let server = MockServer::start().await;
    // Never downloaded: the signature is refused first.
    let bytes = b"not an archive".to_vec();
    let sha = hex(&bytes);
    let stranger = KeyPair::generate_unencrypted_keypair().expect("keys");
    serve_release(&server, NEW_VERSION, bytes, &sha, &stranger).await;
    let home = tempfile::tempdir().expect("tempdir");
    for args in [&["self-update"][..], &["self-update", "--check"]] {
        let out = std::process::Command::new(&installed.cli)
            .args(args)
            .env(tether_contract::environment::DOWNLOAD_URL_ENV, server.uri())
            .env(HOME_ENV, home.path())
            .output()
            .expect("run tether");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not signed by the tether release key")
                && stderr.contains("nothing was changed"),
            "{args:?}: {stderr}"
        );
    }
    unchanged(&installed);
    let out = std::process::Command::new(&installed.cli)
        .args(["self-update", "--rollback"])
        .env(HOME_ENV, home.path())
        .output()
        .expect("run tether");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no previous version"));
}

#[tokio::test]
async fn an_archive_that_does_not_match_latest_json_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let installed = install_copy(root.path());
    // Refused on its hash before it is opened: a small archive does.
    let mut bytes = b"an archive".to_vec();
    let sha = hex(&bytes);
    bytes[0] ^= 0xff;
    let (_server, (version, url, sha256)) = offered(bytes, &sha, "0.1.0").await;
    let http = reqwest::Client::new();
    let refused = release::install(&http, &installed, target(), &version, &url, &sha256).await;
    assert!(
        matches!(refused, Err(ReleaseError::Checksum { .. })),
        "{refused:?}"
    );
    unchanged(&installed);
}

/// Serves `archive` as release [`NEW_VERSION`] (its `latest.json` naming `sha`, signed
/// with a fresh key) and returns the server and what it offers a build of `current`:
/// version, URL and sha256.
async fn offered(
    archive: Vec<u8>,
    sha: &str,
    current: &str,
) -> (MockServer, (String, String, String)) {
    let server = MockServer::start().await;
    let key = KeyPair::generate_unencrypted_keypair().expect("keys");
    serve_release(&server, NEW_VERSION, archive, sha, &key).await;
    let source = Source {
        url: server.uri(),
        public_key: key.pk.to_base64(),
    };
    let offer = release::offer(&reqwest::Client::new(), &source, target(), current, None).await;
    let Ok(Offer::Update {
        version,
        url,
        sha256,
    }) = offer
    else {
        panic!("no update offered: {offer:?}");
    };
    (server, (version, url, sha256))
}

/// Serves a good release of [`NEW_VERSION`] signed with a fresh key and installs it.
async fn update_to_new_version(installed: &Installed) {
    let bytes = archive(NEW_VERSION);
    let sha = hex(&bytes);
    let (_server, (version, url, sha256)) = offered(bytes, &sha, tether::version::VERSION).await;
    assert_eq!(version, NEW_VERSION);
    let http = reqwest::Client::new();
    release::install(&http, installed, target(), &version, &url, &sha256)
        .await
        .expect("install");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_restarts_the_host_on_the_new_files_and_keeps_its_terminal() {
    let api = Api::start().await;
    let mut relay = MiniRelay::start().await;
    let host = Host::new(&api.uri(), &relay.url);
    let root = tempfile::tempdir().expect("tempdir");
    let installed = install_copy(root.path());
    let start = host
        .command(&installed.cli)
        .args(["host", "start", "--daemon", "--org", ORG])
        .output()
        .expect("host start");
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    let mut conn = relay.accept().await;
    conn.expect_type("hello").await;
    conn.open_shell("s1").await;
    conn.input("s1", b"echo before-$((1+1))\n").await;
    conn.output_until("s1", "before-2").await;
    let before = host.status().await;

    update_to_new_version(&installed).await;
    for path in installed.paths() {
        assert!(
            tether::release::kept_old(&path).is_file(),
            "no .old for {}",
            path.display()
        );
    }

    let settings = Settings {
        home: host.home.path().to_path_buf(),
        api_url: host.api.clone(),
        relay_url: host.relay.clone(),
        api_key: None,
    };
    tether::cli::restart_hosts(&settings, &installed)
        .await
        .expect("restart");
    let mut conn = relay.accept().await;
    let hello = conn.expect_type("hello").await;
    assert_eq!(hello["sessions"][0]["sessionId"], "s1", "{hello}");
    let after = host.status().await;
    // Restarted in place: the same pid (what systemd and launchd watch), a new image.
    assert_eq!(
        after["pid"], before["pid"],
        "the host service was not restarted in place"
    );
    assert_ne!(
        after["startedAt"], before["startedAt"],
        "the host service did not restart"
    );
    assert_eq!(
        after["ptydPid"], before["ptydPid"],
        "the pty daemon was restarted"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", after["pid"])).expect("exe");
    assert_eq!(
        exe, installed.host,
        "the new host does not run from the installed files"
    );
    // The pty daemon was upgraded in place: same pid, now running the installed file.
    let ptyd_exe = std::fs::read_link(format!("/proc/{}/exe", after["ptydPid"])).expect("exe");
    assert_eq!(
        ptyd_exe, installed.ptyd,
        "tether-ptyd still runs the old binary"
    );
    conn.input("s1", b"echo after-$((2+2))\n").await;
    conn.output_until("s1", "after-4").await;

    let stop = host
        .command(&installed.cli)
        .args(["host", "stop", "--org", ORG])
        .output()
        .expect("host stop");
    assert!(stop.status.success());
}

#[tokio::test]
async fn a_symlink_planted_at_the_old_staging_name_is_not_written_through() {
    let root = tempfile::tempdir().expect("tempdir");
    let installed = install_copy(root.path());
    let victim = root.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    for planted in ["tether.tether-new", "tether.old"] {
        std::os::unix::fs::symlink(&victim, root.path().join("bin").join(planted))
            .expect("symlink");
    }
    update_to_new_version(&installed).await;
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );
    let cli = std::fs::symlink_metadata(&installed.cli).expect("cli");
    assert!(cli.is_file(), "bin/tether is not a regular file");
    assert_eq!(
        hex(&std::fs::read(&installed.cli).expect("cli")),
        hex(&std::fs::read(bin("tether")).expect("built")),
    );
}

#[tokio::test]
async fn restarting_skips_a_host_left_behind_by_a_crash() {
    let root = tempfile::tempdir().expect("tempdir");
    let installed = install_copy(root.path());
    let home = tempfile::tempdir().expect("tempdir");
    // A state file and a lock nobody holds: what `kill -9` leaves.
    let run = home.path().join("run");
    std::fs::create_dir_all(&run).expect("run");
    std::fs::write(run.join("host-org_a.lock"), "").expect("lock");
    std::fs::write(
        run.join("host-org_a.json"),
        json!({"pid": 999_999, "port": 9, "organizationId": "org_a", "hostId": "h", "version": "0.0.1"})
            .to_string(),
    )
    .expect("state");
    let settings = Settings {
        home: home.path().to_path_buf(),
        api_url: "http://127.0.0.1:9".into(),
        relay_url: "ws://127.0.0.1:9".into(),
        api_key: None,
    };
    tether::cli::restart_hosts(&settings, &installed)
        .await
        .expect("a stale host made the update fail");
}

#[tokio::test]
async fn the_download_follows_a_release_host_redirect() {
    // GitHub's …/releases/latest/download/<file> answers 302 to the file's storage.
    let bytes = b"an archive".to_vec();
    let sha = hex(&bytes);
    let (server, _) = offered(bytes, &sha, "0.1.0").await;
    for file in ["latest.json", "latest.json.minisig"] {
        Mock::given(method("GET"))
            .and(path(format!("/moved/{file}")))
            .respond_with(
                ResponseTemplate::new(302).insert_header("location", format!("/{file}").as_str()),
            )
            .mount(&server)
            .await;
    }
    // `offered` signed latest.json with a key it keeps; the redirect is what is tested, so
    // a signature refusal (not "the server answered 302") proves the document was fetched.
    let source = Source {
        url: format!("{}/moved", server.uri()),
        public_key: KeyPair::generate_unencrypted_keypair()
            .expect("keys")
            .pk
            .to_base64(),
    };
    let client = tether::net::download_client();
    let offer = release::offer(&client, &source, target(), "0.1.0", None).await;
    assert!(matches!(offer, Err(ReleaseError::Unsigned)), "{offer:?}");
    let plain = tether::net::http_client();
    let refused = release::offer(&plain, &source, target(), "0.1.0", None).await;
    assert!(
        refused.as_ref().is_err_and(
            |e| matches!(e, ReleaseError::Download { detail, .. } if detail.contains("302"))
        ),
        "the API client follows redirects: {refused:?}"
    );
}
