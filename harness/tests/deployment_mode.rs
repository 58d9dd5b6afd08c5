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
    let (_serve, env) = serve_deployment(dir.path());
    let report = tempfile::tempdir().expect("dir");
    let out = Command::new(HARNESS)
        .args([
            "e2e",
            "--black-box",
            "--target-profile",
            "server",
            "--parallel",
            "4",
            "--report",
        ])
        .arg(report.path())
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
    // The report holds what the harness's own client sent the deployment and got back,
    // and not the deployment's API key.
    deployment_exchange_recorded(report.path());
    let key = &env
        .iter()
        .find(|(k, _)| k == "TETHER_E2E_API_KEY")
        .expect("key")
        .1;
    for file in ["results.json", "index.html", "junit.xml"] {
        let text = std::fs::read_to_string(report.path().join(file)).expect("file");
        assert!(!text.contains(key.as_str()), "{file} holds the API key");
    }
}

/// `tether-harness serve` as a stand-in deployment: the process, and the environment it
/// printed, renamed to what `e2e` reads for a deployment (`TETHER_E2E_*`).
fn serve_deployment(dir: &std::path::Path) -> (Killed, Vec<(String, String)>) {
    let mut serve = Command::new(HARNESS)
        .args(["serve", "--ca-dir"])
        .arg(dir.join("deployment-ca"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = serve.stdout.take().expect("stdout");
    let killed = Killed(serve);
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

    (killed, env)
}

/// results.json records an exchange of the harness's own client with the deployment.
fn deployment_exchange_recorded(report: &std::path::Path) {
    let results = std::fs::read_to_string(report.join("results.json")).expect("results");
    let doc: serde_json::Value = serde_json::from_str(&results).expect("json");
    let minted = doc["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["id"] == "server.mint_api_key")
        .expect("server.mint_api_key");
    let exchange = minted["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .find(|e| e["kind"] == "http" && e["server"] == "deployment")
        .unwrap_or_else(|| panic!("no deployment exchange recorded: {minted}"));
    assert!(exchange["status"].is_u64(), "{exchange}");
}
