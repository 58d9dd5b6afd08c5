//! The smoke of the packages and the image (contract section 11): the `.deb` (`deb.rs`);
//! the `.rpm` listed and installed into an empty root with rpm; the OCI image loaded into
//! Docker and run against the harness relay.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context};
use xshell::{cmd, Shell};

use super::container::{start_harness, Docker};
use super::served::Served;
use super::steps::{checked, poll_relay_connected, terminal_echo};
use super::{record, StepResult, CA_IN_CONTAINER};
use crate::flags::Format;
use crate::images::{self, Image};
use crate::packages::{self, check, contents};

/// The package files of a bundle.
pub(super) struct Packages {
    pub(super) deb: PathBuf,
    pub(super) rpm: PathBuf,
    pub(super) oci: PathBuf,
}

/// The packages beside `archive` when all are there and match it, else built from it into
/// `scratch`.
pub(super) fn packages_of(archive: &Path, scratch: &Path) -> anyhow::Result<Packages> {
    let source = contents::Source::from_archive(archive)?;
    let dir = archive.parent().context("the archive has no directory")?;
    let named = |format: Format, dir: &Path| {
        packages::file_name(format, &source).map(|name| dir.join(name))
    };
    let beside = [Format::Deb, Format::Rpm, Format::Oci].map(|f| named(f, dir));
    let usable = beside.iter().all(|path| {
        path.as_deref()
            .is_some_and(|p| check::beside_archive(p).is_ok_and(|problems| problems.is_empty()))
    });
    let dir = if usable {
        dir.to_path_buf()
    } else {
        eprintln!(
            "==> no packages of this archive beside it: building them into {}",
            scratch.display()
        );
        std::fs::create_dir_all(scratch)?;
        // The checks compare with the archive beside them: put a copy there.
        let copy = scratch.join(archive.file_name().context("archive name")?);
        std::fs::copy(archive, &copy)?;
        let sbom = crate::bundle::dependencies::sbom_name(
            &archive.file_name().unwrap_or_default().to_string_lossy(),
        );
        std::fs::copy(dir.join(&sbom), scratch.join(&sbom))
            .with_context(|| format!("{sbom} is not beside the archive"))?;
        packages::build(&copy, &[Format::Deb, Format::Rpm, Format::Oci], scratch)?;
        scratch.to_path_buf()
    };
    let path = |format| named(format, &dir).context("package name");
    Ok(Packages {
        deb: path(Format::Deb)?,
        rpm: path(Format::Rpm)?,
        oci: path(Format::Oci)?,
    })
}

/// lintian on the `.deb` (no error, no warning: each override in the package says why)
/// and rpmlint on the `.rpm` (no error, with the filters of `packages/rpmlint.toml`).
pub(super) fn lint(packages: &Packages, results: &mut Vec<StepResult>) {
    let place = "package lint";
    let _ = record(results, place, "lintian", || {
        if crate::path_search::which("lintian").is_none() {
            bail!("lintian is not installed: run `apt-get install lintian` (or `bash .ci/setup`)");
        }
        let mut c = Command::new("lintian");
        c.args(["--fail-on", "error,warning"]).arg(&packages.deb);
        let out = checked(c, "lintian")?;
        // Info tags are printed, not failed on.
        ensure!(
            !out.lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W:")),
            "{out}"
        );
        Ok(())
    });
    let _ = record(results, place, "rpmlint", || {
        if crate::path_search::which("rpmlint").is_none() {
            bail!("rpmlint is not installed: run `apt-get install rpmlint` (or `bash .ci/setup`)");
        }
        let config = crate::flags::project_root().join("xtask/src/packages/rpmlint.toml");
        let mut c = Command::new("rpmlint");
        c.arg("-c").arg(config).arg(&packages.rpm);
        let out = checked(c, "rpmlint")?;
        ensure!(out.contains(" 0 errors"), "{out}");
        Ok(())
    });
}

/// A network with the harness on it, for a container to reach.
pub(super) struct World<'a> {
    pub(super) docker: Docker<'a>,
    pub(super) network: String,
    pub(super) served: Served,
    pub(super) relay_http: String,
    pub(super) scratch: tempfile::TempDir,
}

/// The harness started on a new network named for `name`.
pub(super) fn world<'a>(sh: &'a Shell, name: &str) -> anyhow::Result<World<'a>> {
    images::ensure(sh, &[Image::Harness])?;
    let network = format!("tether-smoke-{name}-{}", std::process::id());
    let mut docker = Docker::on_new_network(sh, &network)?;
    let scratch = tempfile::tempdir()?;
    let releases = scratch.path().join("releases");
    std::fs::create_dir_all(&releases)?;
    let (served, relay_http) = start_harness(&mut docker, &network, std::process::id(), &releases)?;
    Ok(World {
        docker,
        network,
        served,
        relay_http,
        scratch,
    })
}

/// `docker exec <container> argv…`, its stdout, failing with its output.
pub(super) fn exec(container: &str, argv: &[&str]) -> anyhow::Result<String> {
    let mut c = Command::new("docker");
    c.arg("exec").arg(container).args(argv);
    checked(c, &format!("{} in {container}", argv.join(" ")))
}

/// The `.rpm` on this machine: `rpm -qlp` lists what section 11 says, `rpm -i --root`
/// into an empty root puts the archive's binaries there, `rpm -e` takes every file away.
pub(super) fn smoke_rpm(rpm: &Path, results: &mut Vec<StepResult>) -> anyhow::Result<()> {
    let place = "rpm";
    if crate::path_search::which("rpm").is_none() {
        bail!("rpm is not installed: run `apt-get install rpm` (or `bash .ci/setup`)");
    }
    let name = rpm
        .file_name()
        .context("rpm name")?
        .to_string_lossy()
        .to_string();
    let package = check::read(rpm, &name)?;
    record(results, place, "rpm -qlp", || {
        let mut c = Command::new("rpm");
        c.arg("-qlp").arg(rpm);
        let listed: BTreeSet<String> = checked(c, "rpm -qlp")?
            .lines()
            .map(str::to_string)
            .collect();
        for (_, path) in contents::installed_binaries() {
            ensure!(
                listed.contains(&path),
                "rpm -qlp does not list {path}: {listed:?}"
            );
        }
        for path in [
            "/usr/share/man/man1/tether.1.gz",
            "/usr/share/licenses/tether/LICENSE",
            contents::LIB_DIR,
        ] {
            ensure!(
                listed.contains(path),
                "rpm -qlp does not list {path}: {listed:?}"
            );
        }
        Ok(())
    })?;
    let root = tempfile::Builder::new()
        .prefix("tether-rpm-root-")
        .tempdir()?;
    let root_arg = root.path().display().to_string();
    record(results, place, "rpm -i --root (empty root)", || {
        let mut c = Command::new("rpm");
        c.args(["--root", &root_arg, "--initdb"]);
        checked(c, "rpm --initdb")?;
        let mut c = Command::new("rpm");
        c.args(["-i", "--root", &root_arg]).arg(rpm);
        checked(c, "rpm -i")?;
        for (binary, path) in contents::installed_binaries() {
            let there = std::fs::read(root.path().join(path.trim_start_matches('/')))
                .with_context(|| format!("rpm -i put no {path} into the root"))?;
            ensure!(
                Some(&there) == package.files.get(&path),
                "{binary} at {path} is not the package's"
            );
        }
        let mut c = Command::new("rpm");
        c.args(["-V", "--root", &root_arg, "tether"]);
        checked(c, "rpm -V").map(drop)
    })?;
    record(results, place, "rpm -e leaves nothing", || {
        let mut c = Command::new("rpm");
        c.args(["-e", "--root", &root_arg, "tether"]);
        checked(c, "rpm -e")?;
        let left: Vec<String> = package
            .files
            .keys()
            .chain(
                [
                    contents::LIB_DIR.to_string(),
                    "/usr/share/licenses/tether".to_string(),
                ]
                .iter(),
            )
            .filter(|p| root.path().join(p.trim_start_matches('/')).exists())
            .cloned()
            .collect();
        ensure!(left.is_empty(), "left behind by rpm -e: {left:?}");
        Ok(())
    })
}

/// The image: `docker load`, its configuration, then `docker run` with only the
/// environment of section 1 against the harness: relay connected, a terminal answers.
pub(super) fn smoke_oci(
    sh: &Shell,
    oci: &Path,
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    let place = "oci image";
    let mut image = String::new();
    record(results, place, "docker load", || {
        let out = cmd!(sh, "docker load -i {oci}").read()?;
        image = out
            .lines()
            .find_map(|l| l.strip_prefix("Loaded image: "))
            .with_context(|| format!("docker load named no image: {out}"))?
            .trim()
            .to_string();
        Ok(())
    })?;
    let _remove = RemoveImage {
        sh,
        image: image.clone(),
    };
    record(results, place, "user, entrypoint, TETHER_HOME", || {
        let format = "{{json .Config}}";
        let config: serde_json::Value = serde_json::from_str(
            &cmd!(sh, "docker image inspect --format {format} {image}").read()?,
        )?;
        ensure!(config["User"] == "65532:65532", "user: {}", config["User"]);
        ensure!(
            config["Entrypoint"] == serde_json::json!([packages::oci::entrypoint()]),
            "entrypoint: {}",
            config["Entrypoint"]
        );
        let env = config["Env"].to_string();
        ensure!(env.contains("TETHER_HOME=/var/lib/tether"), "env: {env}");
        Ok(())
    })?;
    let mut world = world(sh, "oci")?;
    let ca = world.served.write_ca(world.scratch.path())?;
    let container = format!("tether-smoke-oci-{}", std::process::id());
    world.docker.containers.push(container.clone());
    record(results, place, "docker run", || {
        let ca_mount = format!("{}:{CA_IN_CONTAINER}:ro", ca.display());
        let api = format!("TETHER_API_URL={}", world.served.api);
        let relay = format!("TETHER_RELAY_URL={}", world.served.relay);
        let key = format!("TETHER_API_KEY={}", world.served.key);
        let cert = format!("SSL_CERT_FILE={CA_IN_CONTAINER}");
        let network = &world.network;
        // The image holds no shell (its one layer is the three binaries); a terminal needs
        // one, so the smoke lends busybox's.
        let shell = "/bin/busybox:/bin/sh:ro";
        cmd!(sh, "docker run -d --name {container} --network {network} -e {api} -e {relay} -e {key} -e {cert} -v {ca_mount} -v {shell} {image}")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    })?;
    let outcome = record(results, place, "health: relay connected", || {
        poll_relay_connected(|| exec(&container, &["/usr/bin/tether", "host", "status", "--json"]))
    })
    .and_then(|()| {
        record(results, place, "terminal runs echo", || {
            terminal_echo(&world.relay_http, &ca)
        })
    });
    if outcome.is_err() {
        // The host logs to stderr.
        if let Ok(out) = Command::new("docker").args(["logs", &container]).output() {
            super::steps::print_log_tail(&String::from_utf8_lossy(&out.stderr));
        }
    }
    outcome
}

/// Removes a loaded image however the smoke ends.
struct RemoveImage<'a> {
    sh: &'a Shell,
    image: String,
}

impl Drop for RemoveImage<'_> {
    fn drop(&mut self) {
        if self.image.is_empty() {
            return;
        }
        let (sh, image) = (self.sh, &self.image);
        let _ = cmd!(sh, "docker rmi -f {image}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
    }
}
