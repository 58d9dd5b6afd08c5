//! The reference servers and a host service as containers on a user-defined Docker
//! network (images built by `cargo xtask images`, never pulled), so a scenario can cut the
//! relay off for real. Containers go when their handles drop, also when a test fails.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use testcontainers::core::{AccessMode, ExecCommand, IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, RELAY_URL_ENV};

/// The images a container scenario needs.
pub const IMAGES: [&str; 4] = [
    "tether-harness:latest",
    "tether-os:bookworm",
    "tether-os:bookworm-systemd",
    "tether-os:bookworm-squid",
];

/// Why container scenarios cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    let info = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !info.is_ok_and(|o| o.status.success()) {
        return Some("no Docker engine is reachable".into());
    }
    for image in IMAGES {
        let found = Command::new("docker")
            .args(["image", "inspect", image])
            .output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Some(format!(
                "image {image} is missing: run `cargo xtask images`"
            ));
        }
    }
    None
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// What the host container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostImage {
    /// `tether-os:bookworm`, idle: the host service is started with `host start --daemon`.
    Plain,
    /// `tether-os:bookworm-systemd`, systemd as PID 1.
    Systemd,
    /// `tether-os:bookworm`, idle, on an internal network whose only way out is squid.
    BehindProxy,
}

/// squid as a corporate proxy would run it: CONNECT to the harness's ports only, from
/// the private ranges Docker networks use, nothing cached, every request logged.
const SQUID_CONF: &str = "\
http_port 3128
acl localnet src 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16
acl harness_ports port 8080 8081
acl CONNECT method CONNECT
http_access deny CONNECT !harness_ports
http_access allow localnet
http_access deny all
cache deny all
access_log stdio:/var/log/squid/access.log squid
pid_filename none
";

/// The squid container and the internal network it is the only way out of; the network
/// is removed after the containers (fields drop in order).
pub struct Proxy {
    /// The squid container.
    pub container: ContainerAsync<GenericImage>,
    network: InternalNetwork,
}

struct InternalNetwork(String);

impl InternalNetwork {
    fn create(name: &str) -> anyhow::Result<Self> {
        let out = Command::new("docker")
            .args(["network", "create", "--internal", name])
            .output()?;
        if !out.status.success() {
            bail!(
                "cannot create the internal network {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(InternalNetwork(name.to_string()))
    }
}

impl Drop for InternalNetwork {
    fn drop(&mut self) {
        // Containers may still be attached while their removal runs in the background.
        let attached = Command::new("docker")
            .args([
                "network",
                "inspect",
                "--format",
                "{{range .Containers}}{{.Name}} {{end}}",
                &self.0,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for name in attached.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", name]).output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// A harness container and a host container on their own network.
pub struct Deployment {
    /// The reference servers.
    pub harness: ContainerAsync<GenericImage>,
    /// The machine running the bundle.
    pub host: ContainerAsync<GenericImage>,
    /// Trusts the harness container's CA.
    client: reqwest::Client,
    /// The proxy, for [`Deployment::start_behind_proxy`] (dropped after the host).
    pub proxy: Option<Proxy>,
    /// The harness container's name (its host name on the network).
    pub harness_name: String,
}

/// The PEM block `tether-harness serve` printed.
fn ca_pem_in(logs: &str) -> Option<String> {
    let start = logs.find("-----BEGIN CERTIFICATE-----")?;
    let end_marker = "-----END CERTIFICATE-----";
    let end = logs[start..].find(end_marker)? + start + end_marker.len();
    Some(format!("{}\n", &logs[start..end]))
}

impl Deployment {
    /// Starts both, installs the binaries from `bins` as a bundle in the host container,
    /// and starts the host service there with the harness's API key.
    pub async fn start(bins: &Path) -> anyhow::Result<Deployment> {
        let deployment = Self::start_on(bins, HostImage::Plain).await?;
        let (code, out) = deployment
            .tether(&["host", "start", "--daemon", "--org", "org_a"])
            .await?;
        if code != 0 {
            bail!("host start failed in the container: {out}");
        }
        Ok(deployment)
    }

    /// Like [`Deployment::start`], but the host container boots systemd as PID 1 and the
    /// host service is not started: a scenario installs it as a system service.
    pub async fn start_with_systemd(bins: &Path) -> anyhow::Result<Deployment> {
        let deployment = Self::start_on(bins, HostImage::Systemd).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, state) = deployment.exec(&["systemctl", "is-system-running"]).await?;
            if matches!(state.trim(), "running" | "degraded") {
                return Ok(deployment);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("systemd did not finish booting in the container: {state}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Like [`Deployment::start`], but the host container sits on an internal network and
    /// reaches the harness only through squid (`HTTPS_PROXY`); the host service is not started.
    pub async fn start_behind_proxy(bins: &Path) -> anyhow::Result<Deployment> {
        Self::start_on(bins, HostImage::BehindProxy).await
    }

    async fn start_on(bins: &Path, image: HostImage) -> anyhow::Result<Deployment> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}-{n}", std::process::id());
        let network = format!("tether-test-{tag}");
        let harness_name = format!("tether-harness-{tag}");
        let (harness, key, ca_pem) = start_harness(&network, &harness_name).await?;
        let (tag_name, cmd) = match image {
            HostImage::Plain | HostImage::BehindProxy => ("bookworm", vec!["/bin/sleep", "86400"]),
            HostImage::Systemd => ("bookworm-systemd", vec!["/lib/systemd/systemd"]),
        };
        let (host_network, proxy) = match image {
            HostImage::BehindProxy => {
                let (proxy, proxy_name) = start_proxy(&network, &tag).await?;
                (proxy.network.0.clone(), Some((proxy, proxy_name)))
            }
            _ => (network.clone(), None),
        };
        let mut host = GenericImage::new("tether-os", tag_name)
            .with_network(&host_network)
            .with_container_name(format!("tether-host-{tag}"))
            .with_env_var("HOME", "/root")
            .with_env_var(API_URL_ENV, format!("https://{harness_name}:8080"))
            .with_env_var(RELAY_URL_ENV, format!("wss://{harness_name}:8081"))
            .with_env_var(API_KEY_ENV, key)
            .with_env_var("SSL_CERT_FILE", "/etc/tether-harness-ca.pem")
            .with_copy_to("/etc/tether-harness-ca.pem", ca_pem.clone().into_bytes())
            .with_copy_to("/opt/tether/bin/tether", bins.join("tether"))
            .with_copy_to("/opt/tether/lib/tether-host", bins.join("tether-host"))
            .with_copy_to("/opt/tether/lib/tether-ptyd", bins.join("tether-ptyd"))
            .with_cmd(cmd);
        if let Some((_, proxy_name)) = &proxy {
            host = host.with_env_var("HTTPS_PROXY", format!("http://{proxy_name}:3128"));
        }
        if image == HostImage::Systemd {
            // What systemd as PID 1 needs in an unprivileged container (the engine here
            // refuses --privileged): its runtime directories and a view of the cgroups.
            host = host
                .with_mount(Mount::tmpfs_mount("/run"))
                .with_mount(Mount::tmpfs_mount("/run/lock"))
                .with_mount(
                    Mount::bind_mount("/sys/fs/cgroup", "/sys/fs/cgroup")
                        .with_access_mode(AccessMode::ReadOnly),
                );
        }
        let host = host
            .start()
            .await
            .context("cannot start the host container")?;
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
            .no_proxy()
            .build()?;
        Ok(Deployment {
            harness,
            host,
            client,
            proxy: proxy.map(|(proxy, _)| proxy),
            harness_name,
        })
    }

    /// Runs `argv` in the host container; returns its exit code and output.
    pub async fn exec(&self, argv: &[&str]) -> anyhow::Result<(i64, String)> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let mut result = self.host.exec(ExecCommand::new(argv)).await?;
        let stdout = String::from_utf8_lossy(&result.stdout_to_vec().await?).into_owned();
        let stderr = String::from_utf8_lossy(&result.stderr_to_vec().await?).into_owned();
        let code = result.exit_code().await?.unwrap_or(-1);
        Ok((code, format!("{stdout}{stderr}")))
    }

    /// Runs the CLI in the host container; returns its exit code and output.
    pub async fn tether(&self, args: &[&str]) -> anyhow::Result<(i64, String)> {
        let mut argv = vec!["/opt/tether/bin/tether"];
        argv.extend_from_slice(args);
        self.exec(&argv).await
    }

    /// The host service's relay state, from `tether host status --json` in the container.
    pub async fn relay_state(&self) -> anyhow::Result<Value> {
        let (_, out) = self
            .tether(&["host", "status", "--json", "--org", "org_a"])
            .await?;
        let doc: Value = serde_json::from_str(
            out.lines()
                .take_while(|l| !l.starts_with("error"))
                .collect::<Vec<_>>()
                .join("\n")
                .as_str(),
        )
        .with_context(|| format!("host status --json: {out}"))?;
        Ok(doc["hosts"][0].clone())
    }

    /// Polls until the host reports relay `want`.
    pub async fn wait_relay(&self, want: &str, limit: Duration) -> anyhow::Result<Value> {
        self.wait_state(&format!("relay {want}"), limit, |state| {
            state["relay"] == want
        })
        .await
    }

    /// Polls `host status` until `ready` holds for the org's line; `what` names it in errors.
    pub async fn wait_state(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let state = self.relay_state().await?;
            if ready(&state) {
                return Ok(state);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the host never reported {what}: {state}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Types into the terminal `session` on the host through the relay (opened on first use).
    pub async fn terminal(
        &self,
        session: &str,
        input: &str,
        expect: &str,
    ) -> anyhow::Result<String> {
        let port = self.harness.get_host_port_ipv4(8081.tcp()).await?;
        let answer: Value = self
            .client
            .post(format!("https://127.0.0.1:{port}/debug/exec"))
            .json(&json!({"organizationId": "org_a", "input": input, "expect": expect, "sessionId": session, "timeoutMs": 15000}))
            .send()
            .await?
            .json()
            .await?;
        answer["output"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the terminal did not answer: {answer}"))
    }

    /// The relay's record of handshakes (token fingerprints, not tokens).
    pub async fn relay_connections(&self) -> anyhow::Result<Value> {
        let port = self.harness.get_host_port_ipv4(8081.tcp()).await?;
        Ok(self
            .client
            .get(format!("https://127.0.0.1:{port}/debug/connections"))
            .send()
            .await?
            .json()
            .await?)
    }
}

/// Starts squid on `outer` (where the harness is) and connects it to a new internal
/// network, the one the host will sit on; returns it and its name.
async fn start_proxy(outer: &str, tag: &str) -> anyhow::Result<(Proxy, String)> {
    let inner = InternalNetwork::create(&format!("tether-inner-{tag}"))?;
    let name = format!("tether-squid-{tag}");
    let container = GenericImage::new("tether-os", "bookworm-squid")
        .with_network(outer)
        .with_container_name(&name)
        .with_copy_to("/etc/squid/tether.conf", SQUID_CONF.as_bytes().to_vec())
        .with_cmd(["/usr/sbin/squid", "-N", "-f", "/etc/squid/tether.conf"])
        .start()
        .await
        .context("cannot start the squid container")?;
    let out = Command::new("docker")
        .args(["network", "connect", &inner.0, &name])
        .output()?;
    if !out.status.success() {
        bail!(
            "cannot connect squid to {}: {}",
            inner.0,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((
        Proxy {
            container,
            network: inner,
        },
        name,
    ))
}

impl Proxy {
    /// squid's access log.
    pub async fn access_log(&self) -> anyhow::Result<String> {
        let mut result = self
            .container
            .exec(ExecCommand::new(["cat", "/var/log/squid/access.log"]))
            .await?;
        Ok(String::from_utf8_lossy(&result.stdout_to_vec().await?).into_owned())
    }
}

/// Starts the harness container serving HTTPS/WSS as `name` on `network`; returns it with
/// the API key and the CA certificate it printed.
async fn start_harness(
    network: &str,
    name: &str,
) -> anyhow::Result<(ContainerAsync<GenericImage>, String, String)> {
    let harness = GenericImage::new("tether-harness", "latest")
        .with_exposed_port(8081.tcp())
        .with_wait_for(WaitFor::message_on_stdout("TETHER_API_KEY="))
        .with_network(network)
        .with_container_name(name)
        .with_cmd([
            "serve".to_string(),
            "--api-listen".into(),
            "0.0.0.0:8080".into(),
            "--relay-listen".into(),
            "0.0.0.0:8081".into(),
            "--public-api-url".into(),
            format!("https://{name}:8080"),
            "--public-relay-url".into(),
            format!("wss://{name}:8081"),
            "--tls-name".into(),
            name.to_string(),
            "--ca-dir".into(),
            "/ca".into(),
        ])
        .start()
        .await
        .context("cannot start the harness container")?;
    let logs =
        String::from_utf8_lossy(&harness.stdout_to_vec().await.unwrap_or_default()).into_owned();
    let key = logs
        .lines()
        .find_map(|l| l.strip_prefix("TETHER_API_KEY="))
        .context("the harness printed no API key")?
        .to_string();
    let ca_pem = ca_pem_in(&logs).context("the harness printed no CA")?;
    Ok((harness, key, ca_pem))
}
