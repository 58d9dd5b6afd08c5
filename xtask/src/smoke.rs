//! `cargo xtask smoke`: installs a bundle the way a user would — unpacked under a path
//! with spaces, far from the source tree — on this machine and on clean OS containers,
//! and runs it end to end against the reference servers.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use xshell::{cmd, Shell};

use crate::archive::{self, EntryKind};
use crate::flags::SmokeArgs;
use crate::images::{self, Image};
use crate::targets::{self, Target};
use crate::{dist, verify};

/// Where the bundle is installed inside containers.
const INSTALL_DIR: &str = "/opt/tether smoke";
/// Where the container smoke puts the harness CA (a path every image has: `/`).
const CA_IN_CONTAINER: &str = "/harness-ca.pem";
/// The organization the harness's API key is bound to.
const ORG: &str = "org_a";

/// A place to smoke-test on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// This machine.
    Host,
    /// A clean container of this image.
    Container(Image),
}

impl Place {
    fn name(self) -> String {
        match self {
            Place::Host => "host".into(),
            Place::Container(image) => image.tag(),
        }
    }
}

/// The places named by `--on`.
pub fn places(on: &str) -> anyhow::Result<Vec<Place>> {
    Ok(match on {
        "host" => vec![Place::Host],
        "bookworm" => vec![Place::Container(Image::Debian("bookworm"))],
        "bullseye" => vec![Place::Container(Image::Debian("bullseye"))],
        "scratch" => vec![Place::Container(Image::Scratch)],
        "all" => vec![
            Place::Host,
            Place::Container(Image::Debian("bookworm")),
            Place::Container(Image::Debian("bullseye")),
            Place::Container(Image::Scratch),
        ],
        other => bail!("unknown --on {other:?}: host, bookworm, bullseye, scratch or all"),
    })
}

/// One step's verdict.
struct StepResult {
    place: String,
    step: &'static str,
    elapsed: Duration,
    failure: Option<String>,
}

/// Runs the smoke test.
pub fn run(sh: &Shell, args: &SmokeArgs) -> anyhow::Result<()> {
    let target = targets::by_name(&args.target)?;
    let archive = match &args.archive {
        Some(path) => path.clone(),
        None => {
            let (version, _) = dist::workspace_facts(sh)?;
            let path = crate::flags::project_root()
                .join("dist")
                .join(format!("tether-{version}-{}.tar.gz", target.name));
            let head = cmd!(sh, "git rev-parse --short=12 HEAD")
                .read()
                .unwrap_or_default();
            if !path.exists() {
                eprintln!("==> {} is absent: building it", path.display());
                dist::dist_one(sh, &target, path.parent().context("dist dir")?)?;
            } else if built_from(&path).as_deref() != Some(head.as_str()) {
                eprintln!(
                    "==> {} was built from another commit: building it again",
                    path.display()
                );
                dist::dist_one(sh, &target, path.parent().context("dist dir")?)?;
            }
            path
        }
    };
    let report = verify::verify_path(&archive)?;
    if !report.problems.is_empty() {
        for line in &report.problems {
            eprintln!("{line}");
        }
        bail!(
            "{} failed verification: not smoke-testing it",
            archive.display()
        );
    }
    let places = places(&args.on)?;
    let staging = tempfile::Builder::new().prefix("tether smoke ").tempdir()?;
    let bundle = unpack(&archive, &staging.path().join("opt dir with spaces"))?;
    eprintln!(
        "==> unpacked {} into {}",
        archive.display(),
        bundle.display()
    );

    let mut results = Vec::new();
    for place in places {
        let outcome = match place {
            Place::Host => smoke_host(sh, &target, &bundle, staging.path(), &mut results),
            Place::Container(image) => smoke_container(sh, &target, image, &bundle, &mut results),
        };
        if let Err(e) = outcome {
            results.push(StepResult {
                place: place.name(),
                step: "setup",
                elapsed: Duration::ZERO,
                failure: Some(format!("{e:#}")),
            });
        }
    }

    println!(
        "\n{:<22} {:<26} {:<6} {:>8}",
        "place", "step", "result", "time"
    );
    for r in &results {
        println!(
            "{:<22} {:<26} {:<6} {:>7.2}s",
            r.place,
            r.step,
            if r.failure.is_none() { "ok" } else { "FAIL" },
            r.elapsed.as_secs_f64()
        );
    }
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    for r in &failed {
        eprintln!(
            "\n{} failed at `{}`:\n{}",
            r.place,
            r.step,
            r.failure.as_deref().unwrap_or_default()
        );
    }
    println!(
        "{} passed, {} failed",
        results.len() - failed.len(),
        failed.len()
    );
    ensure!(failed.is_empty(), "smoke failed");
    Ok(())
}

/// The commit an archive's manifest names.
fn built_from(archive: &Path) -> Option<String> {
    let bytes = std::fs::read(archive).ok()?;
    let manifest = archive::read(&bytes)
        .ok()?
        .into_iter()
        .find(|e| e.path.ends_with("/manifest.json"))?;
    let manifest: crate::manifest::Manifest = serde_json::from_slice(&manifest.bytes).ok()?;
    Some(manifest.git_sha)
}

/// Unpacks the archive's top directory into `into`; returns the bundle root.
fn unpack(archive: &Path, into: &Path) -> anyhow::Result<PathBuf> {
    let bytes = std::fs::read(archive)?;
    let top = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .context("archive name")?;
    for entry in archive::read(&bytes)? {
        let rel = entry
            .path
            .strip_prefix(top)
            .unwrap_or(&entry.path)
            .trim_start_matches('/');
        let path = into.join(rel);
        match entry.kind {
            EntryKind::Dir => std::fs::create_dir_all(&path)?,
            EntryKind::File => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&path, &entry.bytes)?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))?;
            }
            EntryKind::Other => bail!("{} holds a link or device", archive.display()),
        }
    }
    Ok(into.to_path_buf())
}

/// Runs a step, recording its verdict; `Err` stops the place.
fn step(
    results: &mut Vec<StepResult>,
    place: &str,
    name: &'static str,
    f: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    eprintln!("--> {place}: {name}");
    let outcome = f();
    let failure = outcome.as_ref().err().map(|e| format!("{e:#}"));
    results.push(StepResult {
        place: place.into(),
        step: name,
        elapsed: started.elapsed(),
        failure,
    });
    outcome.map_err(|_| anyhow::anyhow!("stopped at {name}"))
}

/// The harness's `serve` output: URLs, an API key, and the CA its certificates chain to.
struct Served {
    api: String,
    relay: String,
    key: String,
    ca_pem: String,
}

impl Served {
    /// Writes the CA to `dir/ca.pem` and returns its path.
    fn write_ca(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        ensure!(
            !self.ca_pem.is_empty(),
            "tether-harness serve printed no CA: it is not serving TLS"
        );
        let path = dir.join("harness-ca.pem");
        std::fs::write(&path, &self.ca_pem)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

fn parse_served(lines: impl Iterator<Item = String>) -> anyhow::Result<Served> {
    let (mut api, mut relay, mut key) = (None, None, None);
    let mut ca_pem = String::new();
    let mut in_pem = false;
    for line in lines {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            in_pem = true;
        }
        if in_pem {
            ca_pem.push_str(&line);
            ca_pem.push('\n');
            in_pem = !line.starts_with("-----END CERTIFICATE-----");
            continue;
        }
        if let Some(v) = line.strip_prefix("TETHER_API_URL=") {
            api = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("TETHER_RELAY_URL=") {
            relay = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("TETHER_API_KEY=") {
            key = Some(v.to_string());
        }
        if let (Some(api), Some(relay), Some(key)) = (&api, &relay, &key) {
            return Ok(Served {
                api: api.clone(),
                relay: relay.clone(),
                key: key.clone(),
                ca_pem,
            });
        }
    }
    bail!("tether-harness serve did not print its URLs and key")
}

/// Runs a command to completion, failing with its output when it fails.
fn checked(mut command: Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// Asks the relay to run `echo` in a terminal on the org's host; checks the answer.
fn terminal_echo(relay_http: &str, ca: &Path) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"organizationId":"{ORG}","input":"echo smoke-$((40+2))","expect":"smoke-42","timeoutMs":10000}}"#
    );
    let mut curl = Command::new("curl");
    curl.arg("--cacert")
        .arg(ca)
        .args([
            "-sS",
            "--max-time",
            "20",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
            &body,
        ])
        .arg(format!("{relay_http}/debug/exec"));
    let answer = checked(curl, "curl to the relay")?;
    ensure!(
        answer.contains("smoke-42"),
        "the terminal did not answer: {answer}"
    );
    Ok(())
}

fn poll_relay_connected(mut status: impl FnMut() -> anyhow::Result<String>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let doc: serde_json::Value =
            serde_json::from_str(&status()?).context("host status --json")?;
        let host = &doc["hosts"][0];
        if host["state"] == "running" && host["relay"] == "connected" && host["ptyd"] == "running" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the host never reported relay connected: {doc}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smoke_host(
    sh: &Shell,
    target: &Target,
    bundle: &Path,
    staging: &Path,
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    let native = match std::env::consts::ARCH {
        "x86_64" => crate::targets::Arch::X86_64,
        _ => crate::targets::Arch::Aarch64,
    };
    let os_matches = (target.os == crate::targets::Os::Linux) == cfg!(target_os = "linux");
    let emulated = target.arch == crate::targets::Arch::Aarch64
        && cfg!(target_os = "linux")
        && std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64")
            .is_ok_and(|s| s.starts_with("enabled"));
    ensure!(
        os_matches && (target.arch == native || emulated),
        "host smoke of {} needs a {} machine, or qemu-user registered with binfmt_misc (`bash .ci/setup`)",
        target.name,
        target.name
    );
    if emulated && target.arch != native {
        eprintln!(
            "==> {} binaries run under qemu-user (binfmt_misc)",
            target.name
        );
    }
    // The static harness the image holds runs here too: one build for both.
    let harness = images::static_harness(sh)?;
    let mut child = Command::new(harness)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start tether-harness serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let _server = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let served = parse_served(&mut lines)?;
    // Keep reading: a closed pipe would fail the harness's next line of output.
    std::thread::spawn(move || lines.for_each(drop));
    let ca = served.write_ca(staging)?;
    let home = staging.join("home dir");
    std::fs::create_dir_all(&home)?;
    let tether = bundle.join("bin/tether");
    let command = |args: &[&str]| {
        let mut c = Command::new(&tether);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("TETHER_API_URL", &served.api)
            .env("TETHER_RELAY_URL", &served.relay)
            .env("TETHER_API_KEY", &served.key)
            .env("SSL_CERT_FILE", &ca);
        c
    };
    let relay_http = served.relay.replacen("wss://", "https://", 1);
    let place = "host";
    let tether_run = |args: &[&str]| checked(command(args), &format!("tether {}", args.join(" ")));
    let relay = Relay {
        url: &served.relay,
        http: &relay_http,
        ca: &ca,
    };
    let outcome = run_steps(results, place, target, &tether_run, &relay, &|| {
        let mut ps = Command::new("ps");
        ps.args(["-axo", "command"]);
        let listing = checked(ps, "ps")?;
        let bundle = bundle.display().to_string();
        let running: Vec<&str> = listing.lines().filter(|l| l.contains(&bundle)).collect();
        ensure!(running.is_empty(), "still running: {running:?}");
        Ok(())
    });
    if outcome.is_err() {
        print_log_tail(
            &std::fs::read_to_string(home.join(".config/tether/logs/host-org_a.log"))
                .unwrap_or_default(),
        );
        let _ = command(&["host", "stop"]).output();
    }
    Ok(())
}

fn print_log_tail(log: &str) {
    let lines: Vec<&str> = log.lines().collect();
    eprintln!("last lines of the host log:");
    for line in &lines[lines.len().saturating_sub(30)..] {
        eprintln!("  {line}");
    }
}

/// The relay as the smoke reaches it.
struct Relay<'a> {
    /// `TETHER_RELAY_URL` of the place.
    url: &'a str,
    /// Its HTTPS base as reached from this machine (for `/debug/exec`).
    http: &'a str,
    /// The harness CA, on this machine.
    ca: &'a Path,
}

/// The steps every place runs; `tether` runs the CLI there, `gone` checks no process is left.
fn run_steps(
    results: &mut Vec<StepResult>,
    place: &str,
    target: &Target,
    tether: &dyn Fn(&[&str]) -> anyhow::Result<String>,
    relay: &Relay<'_>,
    gone: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    step(results, place, "relay over wss://", || {
        ensure!(
            relay.url.starts_with("wss://"),
            "the relay is {}",
            relay.url
        );
        Ok(())
    })?;
    step(results, place, "tether --version", || {
        let out = tether(&["--version"])?;
        ensure!(
            out.starts_with("tether ") && out.contains(target.triple),
            "{out}"
        );
        Ok(())
    })?;
    step(results, place, "tether doctor --json", || {
        let doc: serde_json::Value = serde_json::from_str(&tether(&["doctor", "--json"])?)?;
        ensure!(doc["ok"] == true, "doctor is not green: {doc}");
        Ok(())
    })?;
    step(results, place, "tether auth status", || {
        tether(&["auth", "status"]).map(drop)
    })?;
    step(results, place, "tether host start --daemon", || {
        tether(&["host", "start", "--daemon"]).map(drop)
    })?;
    step(results, place, "health: relay connected", || {
        poll_relay_connected(|| tether(&["host", "status", "--json"]))
    })?;
    step(results, place, "terminal runs echo", || {
        terminal_echo(relay.http, relay.ca)
    })?;
    step(results, place, "tether host status", || {
        tether(&["host", "status"]).map(drop)
    })?;
    step(results, place, "tether host stop", || {
        tether(&["host", "stop"]).map(drop)
    })?;
    step(results, place, "no process left", || {
        std::thread::sleep(Duration::from_millis(300));
        gone()
    })
}

/// Containers and a network that are removed however the smoke ends.
struct Docker<'a> {
    sh: &'a Shell,
    containers: Vec<String>,
    network: Option<String>,
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

fn smoke_container(
    sh: &Shell,
    target: &Target,
    image: Image,
    bundle: &Path,
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    ensure!(
        target.name == "linux-x64",
        "container smoke runs x86-64 images; {} is smoke-tested on the host",
        target.name
    );
    images::ensure(sh, &[Image::Harness, image])?;
    let id = std::process::id();
    let mut docker = Docker {
        sh,
        containers: vec![],
        network: None,
    };
    let network = format!("tether-smoke-{id}");
    cmd!(sh, "docker network create {network}")
        .quiet()
        .ignore_stdout()
        .run()?;
    docker.network = Some(network.clone());

    let harness = format!("tether-smoke-harness-{id}");
    docker.containers.push(harness.clone());
    cmd!(sh, "docker run -d --name {harness} --network {network} --network-alias harness -p 127.0.0.1::8081 tether-harness:latest")
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

    let tag = image.tag();
    let os = format!("tether-smoke-{}-{id}", tag.replace([':', '.'], "-"));
    docker.containers.push(os.clone());
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
    let source = format!("{}/.", bundle.display());
    let dest = format!("{os}:{INSTALL_DIR}");
    cmd!(sh, "docker cp {source} {dest}").quiet().run()?;
    let ca_dir = bundle.parent().unwrap_or(bundle);
    let ca = served.write_ca(ca_dir)?;
    let ca_dest = format!("{os}:{CA_IN_CONTAINER}");
    cmd!(sh, "docker cp {ca} {ca_dest}").quiet().run()?;

    let place = tag.as_str();
    let tether_path = format!("{INSTALL_DIR}/bin/tether");
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
    if outcome.is_err() {
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
