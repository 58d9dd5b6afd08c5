//! The smoke on this machine: the static harness serving on loopback, the bundle run
//! from a path with spaces with a clean environment.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{ensure, Context};
use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, RELAY_URL_ENV};
use xshell::Shell;

use super::installer::{self, TestKey};
use super::self_update::{self, UpdateRig};
use super::served::{parse_served, Served};
use super::steps::{checked, print_log_tail, run_steps, Relay};
use super::StepResult;
use crate::images;
use crate::targets::Target;
use tether_contract::bundle_layout as layout;

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Smoke-tests the bundle here: installed by install.sh from the harness when this machine
/// runs the target natively, else (qemu-user) the unpacked `bundle` as it is.
pub(super) fn smoke_host(
    sh: &Shell,
    target: &Target,
    (releases, test_key): (&Path, &TestKey),
    bundle: &Path,
    staging: &Path,
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    let native = can_run(target)?;
    let (_server, served) = serve_harness(sh, releases)?;
    let ca = served.write_ca(staging)?;
    let home = staging.join("home dir");
    std::fs::create_dir_all(&home)?;
    let place = "host";
    let tether = if native {
        let url = format!("{}/releases", served.api);
        let prefix = staging.join("prefix with spaces");
        let key = test_key.public.base64.as_str();
        installer::install(results, place, (&url, key), &ca, &prefix)?
    } else {
        bundle.join(layout::CLI.path)
    };
    // What must be gone after `host stop`: anything run from the installed files.
    let installed_root = tether
        .parent()
        .and_then(Path::parent)
        .unwrap_or(bundle)
        .to_path_buf();
    let command_of = |cli: &Path, args: &[&str]| {
        let mut c = Command::new(cli);
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env(API_URL_ENV, &served.api)
            .env(RELAY_URL_ENV, &served.relay)
            .env(API_KEY_ENV, &served.key)
            .env("SSL_CERT_FILE", &ca);
        c
    };
    let command = |args: &[&str]| command_of(&tether, args);
    let relay_http = served.relay.replacen("wss://", "https://", 1);
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
        let root = installed_root.display().to_string();
        let running: Vec<&str> = listing.lines().filter(|l| l.contains(&root)).collect();
        ensure!(running.is_empty(), "still running: {running:?}");
        Ok(())
    });
    if outcome.is_err() {
        print_log_tail(
            &std::fs::read_to_string(home.join(".config/tether/logs/host-org_a.log"))
                .unwrap_or_default(),
        );
        let _ = command(&["host", "stop"]).output();
    } else if native {
        let relay = (relay_http.as_str(), ca.as_path());
        update_here(
            results,
            &command_of,
            (&served.api, relay),
            test_key,
            staging,
        );
    }
    Ok(())
}

/// `tether self-update` on this machine (see [`self_update::check`]); a failure is in the
/// table, with the host log.
fn update_here(
    results: &mut Vec<StepResult>,
    command_of: &dyn Fn(&Path, &[&str]) -> Command,
    (api, relay): (&str, (&str, &Path)),
    test_key: &TestKey,
    staging: &Path,
) {
    let script = crate::flags::project_root().join("install.sh");
    let command = |argv: &[&str], env: &[(&str, &str)]| {
        let mut c = command_of(Path::new(argv[0]), &argv[1..]);
        c.envs(env.iter().copied());
        c
    };
    let rig = UpdateRig {
        place: "host",
        command: &command,
        releases: format!("{api}/releases"),
        ca_there: relay.1.display().to_string(),
        script: script.display().to_string(),
        prefix: staging.join("updated prefix").display().to_string(),
        relay,
        key: test_key,
    };
    if self_update::check(results, &rig).is_err() {
        let log = staging.join("home dir/.config/tether/logs/host-org_a.log");
        print_log_tail(&std::fs::read_to_string(log).unwrap_or_default());
        rig.stop();
    }
}

/// True when this machine runs `target`'s binaries natively (not under qemu-user).
pub(super) fn native(target: &Target) -> bool {
    can_run(target).unwrap_or(false)
}

/// Fails unless this machine runs `target`'s binaries; true when natively, false under qemu-user.
fn can_run(target: &Target) -> anyhow::Result<bool> {
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
    Ok(target.arch == native)
}

/// Starts the static harness the image holds (it runs here too: one build for both),
/// serving the release directories under `releases`.
fn serve_harness(sh: &Shell, releases: &Path) -> anyhow::Result<(KillOnDrop, Served)> {
    let harness = images::static_harness(sh)?;
    let mut child = Command::new(harness)
        .arg("serve")
        .arg("--files")
        .arg(releases)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start tether-harness serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let server = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let served = parse_served(&mut lines)?;
    // Keep reading: a closed pipe would fail the harness's next line of output.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((server, served))
}
