//! `config.json` as the CLI leaves it: private, atomic, lossless, and never clobbered when corrupt.

use std::os::unix::fs::PermissionsExt;

use wiremock::MockServer;

use crate::support::*;

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test]
async fn a_refresh_writes_a_private_file_and_keeps_unknown_fields() {
    let server = MockServer::start().await;
    mount_session(&server, "org_a", &["org_a"]).await;
    mount_rotating_token_endpoint(&server).await;
    let home = Home::new();
    home.sign_in(&server.uri(), &jwt(&server.uri(), 60, &["org_a"]), 60);
    let mut config = home.read_config();
    config["theme"] = "dark".into();
    config["auth"]["deviceName"] = "laptop".into();
    home.write_config(&config);

    let out = tether(&home, &server.uri(), &["auth", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = home.read_config();
    assert_eq!(
        after["auth"]["refreshToken"], "rt_rotated_1",
        "the refresh happened"
    );
    assert_eq!(after["theme"], "dark");
    assert_eq!(after["auth"]["deviceName"], "laptop");
    assert_eq!(after["organizationId"], "org_a");
    assert_eq!(mode(&home.config_path()), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(home.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
}

#[test]
fn a_corrupt_config_is_reported_and_left_untouched() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).expect("mkdir");
    std::fs::write(home.config_path(), b"{\"auth\": {\"accessToken\": ").expect("write");

    let out = tether(&home, "http://127.0.0.1:9", &["auth", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&home.config_path().display().to_string()),
        "{err}"
    );
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read(home.config_path()).expect("read"),
        b"{\"auth\": {\"accessToken\": "
    );
}

#[test]
fn login_moves_a_corrupt_config_aside_before_anything_else() {
    let home = Home::new();
    std::fs::create_dir_all(home.path()).expect("mkdir");
    std::fs::write(home.config_path(), b"garbage").expect("write");

    // The server is unreachable, so login stops right after moving the file aside.
    let out = tether(&home, &refused_url(), &["auth", "login", "--no-browser"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let aside: Vec<_> = std::fs::read_dir(home.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("config.json.corrupt-"))
        })
        .collect();
    assert_eq!(aside.len(), 1, "{}", stderr(&out));
    assert_eq!(std::fs::read(&aside[0]).expect("read"), b"garbage");
    assert!(stderr(&out).contains("moved it to"), "{}", stderr(&out));
}
