//! The smoke on a clean OS container: the harness in a container of its own on a private
//! network, the bundle copied in, every step run with `docker exec`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use xshell::{cmd, Shell};

use super::installer::{self, TestKey};
use super::self_update::{self, UpdateRig};
use super::served::{parse_served, Served};
use super::steps::{checked, print_log_tail, run_steps, Relay};
use super::{StepResult, CA_IN_CONTAINER, INSTALL_DIR};
use crate::images::{self, Image};
use crate::targets::Target;
use tether_contract::bundle_layout as layout;

/// Containers and a network that are removed however the smoke ends.
pub(super) struct Docker<'a> {
    pub(super) sh: &'a Shell,
    pub(super) containers: Vec<String>,
    pub(super) network: Option<String>,
}

impl<'a> Docker<'a> {
    /// A new private network named `network`, removed with the containers.
    pub(super) fn on_new_network(sh: &'a Shell, network: &str) -> anyhow::Result<Docker<'a>> {
        cmd!(sh, "docker network create {network}")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(Docker {
            sh,
            containers: vec![],
            network: Some(network.to_string()),
        })
    }
}

impl Drop for Docker<'_> {
    fn drop(&mut self) {
        let sh = self.sh;
        for name in &self.containers {
            let _ = cmd!(sh, "docker rm -f {name}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
        if let Some(network) = &self.network {
            let _ = cmd!(sh, "docker network rm {network}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
    }
}

/// Smoke-tests a fresh container of `image`: tether installed by install.sh from the
/// harness container, which serves the release directories under `releases` — or, on the
/// scratch image (busybox's wget cannot complete a TLS handshake with the harness), the
/// unpacked `bundle` copied in.
pub(super) fn smoke_container(
    sh: &Shell,
    target: &Target,
    image: Image,
    ((releases, test_key), bundle): ((&Path, &TestKey), &Path),
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    ensure!(
        target.name == "linux-x64",
        "container smoke runs x86-64 images; {} is smoke-tested on the host",
        target.name
    );
    images::ensure(sh, &[Image::Harness, image])?;
    let id = std::process::id();
    let network = format!("tether-smoke-{id}");
    let mut docker = Docker::on_new_network(sh, &network)?;

    let (served, relay_http) = start_harness(&mut docker, &network, id, releases)?;

    let tag = image.tag();
    let os = format!("tether-smoke-{}-{id}", tag.replace([':', '.'], "-"));
    docker.containers.push(os.clone());
    let ca = start_os(sh, &os, &tag, &network, &served, releases)?;

    let place = tag.as_str();
    let installed = put_tether(sh, results, (image, &os), &test_key.public.base64, bundle)?;
    let tether_path = format!("{installed}/{}", layout::CLI.path);
    let exec = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.arg("exec").arg(&os).arg(&tether_path).args(args);
        checked(c, &format!("tether {} in {place}", args.join(" ")))
    };
    let relay = Relay {
        url: &served.relay,
        http: &relay_http,
        ca: &ca,
    };
    let outcome = run_steps(results, place, target, &exec, &relay, &|| {
        let mut c = Command::new("docker");
        c.args([
            "exec",
            &os,
            "/bin/sh",
            "-c",
            "cat /proc/[0-9]*/cmdline | tr '\\000' '\\n'",
        ]);
        let listing = checked(c, "process listing")?;
        let left: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("tether-host") || l.contains("tether-ptyd"))
            .collect();
        ensure!(left.is_empty(), "still running in {place}: {left:?}");
        Ok(())
    });
    let updated = outcome.is_ok()
        && (image == Image::Scratch
            || update_in(results, (place, &os), &relay, test_key, releases).is_ok());
    if !updated {
        let log = cmd!(
            sh,
            "docker exec {os} cat /root/.config/tether/logs/host-org_a.log"
        )
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
        print_log_tail(&log);
    }
    Ok(())
}

/// `tether self-update` in container `os` (when the smoke made a test build: see
/// [`self_update::prepare`]).
fn update_in(
    results: &mut Vec<StepResult>,
    (place, os): (&str, &str),
    relay: &Relay<'_>,
    test_key: &TestKey,
    releases: &Path,
) -> anyhow::Result<()> {
    if !releases.join("update").is_dir() {
        return Ok(());
    }
    let command = |argv: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new("docker");
        c.arg("exec");
        for (name, value) in env {
            c.arg("-e").arg(format!("{name}={value}"));
        }
        c.arg(os).args(argv);
        c
    };
    let rig = UpdateRig {
        place,
        command: &command,
        releases: "https://harness:8080/releases".into(),
        ca_there: CA_IN_CONTAINER.into(),
        script: "/install.sh".into(),
        prefix: "/opt/tether updated".into(),
        relay: (relay.http, relay.ca),
        key: test_key,
    };
    let checked = self_update::check(results, &rig);
    if checked.is_err() {
        rig.stop();
    }
    checked
}

/// Starts the harness container on `network` (as `harness`, the relay's port mapped to
/// loopback here); returns what it served and the relay's HTTPS base from this machine.
pub(super) fn start_harness(
    docker: &mut Docker<'_>,
    network: &str,
    id: u32,
    releases: &Path,
) -> anyhow::Result<(Served, String)> {
    let sh = docker.sh;
    let harness = format!("tether-smoke-harness-{id}");
    docker.containers.push(harness.clone());
    // The image's command, serving the release directories copied in before it starts.
    let serve = [
        "serve",
        "--api-listen",
        "0.0.0.0:8080",
        "--relay-listen",
        "0.0.0.0:8081",
        "--public-api-url",
        "https://harness:8080",
        "--public-relay-url",
        "wss://harness:8081",
        "--tls-name",
        "harness",
        "--ca-dir",
        "/ca",
        "--files",
        "/releases",
    ];
    cmd!(sh, "docker create --name {harness} --network {network} --network-alias harness -p 127.0.0.1::8081 tether-harness:latest {serve...}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let source = format!("{}/.", releases.display());
    let dest = format!("{harness}:/releases");
    cmd!(sh, "docker cp {source} {dest}").quiet().run()?;
    cmd!(sh, "docker start {harness}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let served = loop {
        let logs = cmd!(sh, "docker logs {harness}")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        if let Ok(served) = parse_served(logs.lines().map(str::to_string)) {
            break served;
        }
        ensure!(
            Instant::now() < deadline,
            "the harness container did not start: {logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mapped = cmd!(sh, "docker port {harness} 8081/tcp").read()?;
    let relay_http = format!(
        "https://{}",
        mapped
            .lines()
            .next()
            .context("no mapped relay port")?
            .trim()
    );

    Ok((served, relay_http))
}

/// Starts the OS container `os` from `tag` with the bundle and the harness CA copied in;
/// returns the CA's path on this machine.
pub(super) fn start_os(
    sh: &Shell,
    os: &str,
    tag: &str,
    network: &str,
    served: &Served,
    releases: &Path,
) -> anyhow::Result<PathBuf> {
    let env = [
        format!("TETHER_API_URL={}", served.api),
        format!("TETHER_RELAY_URL={}", served.relay),
        format!("TETHER_API_KEY={}", served.key),
        format!("SSL_CERT_FILE={CA_IN_CONTAINER}"),
        "HOME=/root".to_string(),
    ];
    let env_args: Vec<String> = env
        .iter()
        .flat_map(|e| ["-e".to_string(), e.clone()])
        .collect();
    cmd!(
        sh,
        "docker run -d --name {os} --network {network} {env_args...} {tag} /bin/sleep 86400"
    )
    .quiet()
    .ignore_stdout()
    .run()?;
    let script = crate::flags::project_root().join("install.sh");
    let script_dest = format!("{os}:/install.sh");
    cmd!(sh, "docker cp {script} {script_dest}").quiet().run()?;
    let ca_dir = releases.parent().unwrap_or(releases);
    let ca = served.write_ca(ca_dir)?;
    let ca_dest = format!("{os}:{CA_IN_CONTAINER}");
    cmd!(sh, "docker cp {ca} {ca_dest}").quiet().run()?;
    Ok(ca)
}

/// Installs tether in container `os` with install.sh (the scratch image: copies `bundle`
/// in); returns the install prefix.
fn put_tether(
    sh: &Shell,
    results: &mut Vec<StepResult>,
    (image, os): (Image, &str),
    test_key: &str,
    bundle: &Path,
) -> anyhow::Result<String> {
    if image != Image::Scratch {
        let place = image.tag();
        return installer::install_in_container(results, &place, (os, test_key), INSTALL_DIR);
    }
    let source = format!("{}/.", bundle.display());
    let dest = format!("{os}:{INSTALL_DIR}");
    cmd!(sh, "docker cp {source} {dest}").quiet().run()?;
    Ok(INSTALL_DIR.to_string())
}
