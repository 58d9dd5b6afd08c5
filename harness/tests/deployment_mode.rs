//! `tether-harness e2e --black-box --target-profile server` against a deployment it knows
//! only by URL, API key and CA — here `tether-harness serve` in another process, with a
//! CA of its own — runs every server check: each passes or says why it does not apply.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const HARNESS: &str = env!("CARGO_BIN_EXE_tether-harness");

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_deployment_known_only_by_url_key_and_ca_gets_every_server_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut serve = Command::new(HARNESS)
        .args(["serve", "--ca-dir"])
        .arg(dir.path().join("deployment-ca"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = serve.stdout.take().expect("stdout");
    let _serve = Killed(serve);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut env = Vec::new();
    for line in lines.by_ref() {
        if let Some((name, value)) = line.split_once('=') {
            if name.starts_with("TETHER_") || name == "SSL_CERT_FILE" {
                env.push((
                    name.replacen("TETHER_", "TETHER_E2E_", 1),
                    value.to_string(),
                ));
            }
        }
        if line.starts_with("TETHER_API_KEY=") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert_eq!(env.len(), 4, "serve printed {env:?}");

    let out = Command::new(HARNESS)
        .args([
            "e2e",
            "--black-box",
            "--target-profile",
            "server",
            "--parallel",
            "4",
        ])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("TETHER_E2E_SESSION_TOKEN")
        .output()
        .expect("e2e");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("server.")).collect();
    assert!(
        rows.len() >= 26,
        "only {} server checks ran:\n{table}",
        rows.len()
    );
    let not_applicable: Vec<&str> = rows
        .iter()
        .filter(|r| r.split_whitespace().nth(1) == Some("n/a"))
        .filter_map(|r| r.split_whitespace().next())
        .collect();
    assert_eq!(
        not_applicable,
        [
            "server.relay_expired",
            "server.relay_resend_input",
            "server.session_shape",
            "server.session_mint",
            "server.refresh_reuse"
        ],
        "{table}"
    );
    assert!(
        table.contains("TETHER_E2E_SESSION_TOKEN"),
        "no reason given:\n{table}"
    );
}
