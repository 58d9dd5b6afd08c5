//! What a scenario runs in: the reference servers ([`World`]) and a user's machine
//! ([`Machine`]: its own `TETHER_HOME`, the real binaries, host services it started).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, HOME_ENV, LOG_ENV, RELAY_URL_ENV};

use super::diagnostics;
use super::runs::{describe, read_lines, run_recorded, wait_output, Running, URL_LIMIT};

use crate::authserver::AuthServer;
use crate::relay::Relay;

/// The reference authorization server and relay, wired together.
pub struct World {
    /// Authorization server (`TETHER_API_URL`).
    pub auth: AuthServer,
    /// Relay (`TETHER_RELAY_URL`).
    pub relay: Relay,
}

impl World {
    /// Starts both on free loopback ports.
    pub async fn start() -> anyhow::Result<World> {
        let auth = AuthServer::start().await?;
        let relay = Relay::start(&auth.uri()).await?;
        let callback = format!(
            "{}/oauth/callback/",
            tether_contract::relay_protocol::relay_http_url(&relay.url())
        );
        auth.state().extra_redirect_prefixes.push(callback);
        Ok(World { auth, relay })
    }

    /// A machine pointed at this world.
    pub fn machine(&self) -> anyhow::Result<Machine> {
        Machine::new(&self.auth.uri(), &self.relay.url())
    }

    /// A machine signed in with an API key of org_a whose host service (with `extra_env`)
    /// is connected to the relay; the machine and the host's id.
    pub async fn connected_host(
        &self,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<(Machine, String)> {
        let mut machine = self.machine()?;
        let host = self.connect(&mut machine, extra_env).await?;
        Ok((machine, host))
    }

    /// Signs `machine` in with an API key of org_a and starts its host service (with
    /// `extra_env`); the host's id once it is connected to the relay.
    pub async fn connect(
        &self,
        machine: &mut Machine,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        machine.api_key = Some(self.auth.state().issue_api_key("user_alice", "org_a"));
        machine.extra_env = extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        machine.start_host("org_a").await?;
        let (host, _) = self
            .relay
            .wait_host("org_a", Duration::from_secs(15))
            .await?;
        Ok(host)
    }

    /// Stops the relay (every connection drops), waits `down`, and starts it again on the same port.
    pub async fn restart_relay(&mut self, down: Duration) -> anyhow::Result<()> {
        let addr = self.relay.addr;
        self.relay.stop().await;
        tokio::time::sleep(down).await;
        let listener = crate::relay::bind_again(addr).await?;
        self.relay = Relay::start_on(listener, &self.auth.uri()).await?;
        Ok(())
    }
}

/// Where the real binaries are: `TETHER_BIN_DIR`, else the workspace's `target/debug`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("TETHER_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("debug")
        });
    for name in ["tether", "tether-host", "tether-ptyd"] {
        if !dir.join(name).is_file() {
            bail!("{} is missing: build the runtime first (`cargo test --workspace --no-run`, which `cargo xtask e2e` does) or set TETHER_BIN_DIR", dir.join(name).display());
        }
    }
    Ok(dir)
}

/// One user's machine: a state directory and the processes started in it.
pub struct Machine {
    /// `TETHER_HOME`'s parent (also `HOME`).
    pub dir: tempfile::TempDir,
    /// The binaries.
    pub bins: PathBuf,
    /// `TETHER_API_URL`.
    pub api: String,
    /// `TETHER_RELAY_URL`.
    pub relay: String,
    /// API key passed as `TETHER_API_KEY`, if any.
    pub api_key: Option<String>,
    /// More environment for every process started here (e.g. `TETHER_MAX_TERMINALS`).
    pub extra_env: Vec<(String, String)>,
}

impl Machine {
    /// A fresh machine.
    pub fn new(api: &str, relay: &str) -> anyhow::Result<Machine> {
        Ok(Machine {
            dir: tempfile::tempdir()?,
            bins: bin_dir()?,
            api: api.into(),
            relay: relay.into(),
            api_key: None,
            extra_env: Vec::new(),
        })
    }

    /// `TETHER_HOME`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("tether")
    }

    /// A command for one of the binaries with this machine's environment.
    pub fn command(&self, binary: &str, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bins.join(binary));
        cmd.args(args)
            .env(HOME_ENV, self.home())
            .env("HOME", self.dir.path())
            .env(API_URL_ENV, &self.api)
            .env(RELAY_URL_ENV, &self.relay)
            .env(LOG_ENV, "info")
            .stdin(Stdio::null());
        // The harness CA, as a user with a private CA would set it; no proxy unless a
        // scenario asks for one (this machine's own proxy settings must not leak in).
        // Against a deployment, the CA is the user's (SSL_CERT_FILE as given to the harness).
        if deployment().is_none() {
            if let Ok(pki) = crate::tls::pki() {
                cmd.env("SSL_CERT_FILE", pki.ca_file());
            }
        }
        for name in tether_contract::environment::PROXY_ENV {
            cmd.env_remove(name);
        }
        cmd.envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        match &self.api_key {
            Some(key) => cmd.env(API_KEY_ENV, key),
            None => cmd.env_remove(API_KEY_ENV),
        };
        cmd
    }

    /// Runs `tether ARGS` to completion; what it printed goes into the failure report.
    pub async fn tether(&self, args: &[&str]) -> anyhow::Result<Output> {
        run_recorded(
            self.command("tether", args),
            &format!("tether {}", args.join(" ")),
        )
        .await
    }

    /// Writes `config.json` as a signed-in CLI would have.
    pub fn write_config(&self, config: &Value) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.home())?;
        std::fs::write(
            self.home().join("config.json"),
            serde_json::to_vec_pretty(config)?,
        )?;
        Ok(())
    }

    /// Stores a sign-in for this machine's API in org_a, as `tether auth login` would have.
    pub fn store_sign_in(
        &self,
        access: &str,
        refresh: Option<&str>,
        expires_at_ms: i64,
    ) -> anyhow::Result<()> {
        let mut auth = serde_json::json!({
            "accessToken": access, "expiresAt": expires_at_ms, "scope": "openid profile email offline_access",
        });
        if let Some(refresh) = refresh {
            auth["refreshToken"] = refresh.into();
        }
        self.write_config(
            &serde_json::json!({"auth": auth, "apiUrl": self.api, "organizationId": "org_a"}),
        )
    }

    /// Each host log of this machine and its text.
    pub fn host_logs(&self) -> Vec<(PathBuf, String)> {
        std::fs::read_dir(self.home().join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|log| Some((log.path(), std::fs::read_to_string(log.path()).ok()?)))
            .collect()
    }

    /// Whether `config.json` holds tokens.
    pub fn has_stored_sign_in(&self) -> bool {
        self.read_config().is_ok_and(|c| !c["auth"].is_null())
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.home().join("config.json"),
        )?)?)
    }

    /// `tether host start --daemon --org ORG`; fails with the CLI's output.
    pub async fn start_host(&self, org: &str) -> anyhow::Result<()> {
        let out = self
            .tether(&["host", "start", "--daemon", "--org", org])
            .await?;
        if !out.status.success() {
            bail!(
                "host start failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `tether host status --json`'s line for `org`.
    pub async fn host_status(&self, org: &str) -> anyhow::Result<Value> {
        let out = self
            .tether(&["host", "status", "--json", "--org", org])
            .await?;
        let doc: Value = serde_json::from_slice(&out.stdout)
            .context("host status --json is not one JSON document")?;
        Ok(doc["hosts"][0].clone())
    }

    /// Polls `host status` until the relay state is `want`.
    pub async fn wait_relay_state(
        &self,
        org: &str,
        want: &str,
        limit: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.host_status(org).await?;
            if status["relay"] == want {
                return Ok(status);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("relay never became {want}: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Machine {
    /// Starts `tether ARGS` with piped output; returns it once it printed an `http…` URL
    /// on stderr, or fails with everything it printed if it exits (or stays silent) first.
    pub async fn spawn_with_url(&self, args: &[&str]) -> anyhow::Result<(Running, String)> {
        let what = format!("tether {}", args.join(" "));
        let mut child = self
            .command("tether", args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stderr = child.stderr.take().context("stderr")?;
        let printed = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(read_lines(stderr, printed.clone(), url_tx));
        let running = Running {
            child,
            printed,
            reader,
            what,
        };
        match tokio::time::timeout(URL_LIMIT, url_rx).await {
            Ok(Ok(url)) => Ok((running, url)),
            Ok(Err(_)) => {
                let out = wait_output(running).await?;
                bail!("tether exited without printing a URL\n{}", describe(&out))
            }
            Err(_) => {
                let printed = running.printed();
                bail!(
                    "{} printed no URL within {}s; stderr so far:\n{printed}",
                    running.what,
                    URL_LIMIT.as_secs()
                )
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // The host logs go into the failure report before the directory is removed.
        for (path, text) in self.host_logs() {
            let tail: Vec<&str> = text.lines().rev().take(LOG_TAIL_LINES).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            diagnostics::record(format!("tail of {}:\n{}", path.display(), tail.join("\n")));
            crate::transcript::record(crate::transcript::EventKind::Log {
                name: path.display().to_string(),
                tail: tail.join("\n"),
            });
        }
        // Everything still running from this machine's binaries with this home goes: a
        // signal each, nothing that blocks the scenario's runtime thread.
        for (pid, _) in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Lines of each host log kept for a failure report.
const LOG_TAIL_LINES: usize = 30;

/// Plays the browser: follows the authorize URL without redirects, then the redirect it
/// answered (to the CLI's loopback or to the relay), optionally rewritten.
pub async fn browse(url: &str, rewrite: impl Fn(String) -> String) -> anyhow::Result<u16> {
    let client = crate::tls::http_client(None);
    let answer = client.get(url).send().await?;
    if answer.status() != 302 {
        bail!(
            "authorize answered {} instead of a redirect: {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
    }
    let location = answer.headers()["location"].to_str()?.to_string();
    Ok(client
        .get(rewrite(location))
        .send()
        .await?
        .status()
        .as_u16())
}

/// The deployment named by `TETHER_E2E_API_URL`, `_RELAY_URL` and `_API_KEY`, if all are set.
pub fn deployment() -> Option<(String, String, String)> {
    let var = |name: &str| std::env::var(name).ok();
    Some((
        var("TETHER_E2E_API_URL")?,
        var("TETHER_E2E_RELAY_URL")?,
        var("TETHER_E2E_API_KEY")?,
    ))
}
