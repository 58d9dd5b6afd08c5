//! The `.deb` on clean Debian containers (contract section 11): installed with apt, run end
//! to end, self-update refused, and purged without a trace.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};
use xshell::{cmd, Shell};

use super::container::start_os;
use super::packages::{exec, world};
use super::steps::{checked, run_steps, Relay};
use super::{record, StepResult};
use crate::images::{self, Image};
use crate::packages::contents;
use crate::targets::Target;

/// The `.deb` on a clean container of `image`: installed with `apt-get install ./…`, the
/// steps of every place, self-update refused, the unit aimed at /usr/lib/tether, then
/// purged with nothing of it left.
pub(super) fn smoke_deb(
    sh: &Shell,
    target: &Target,
    image: Image,
    deb: &Path,
    results: &mut Vec<StepResult>,
) -> anyhow::Result<()> {
    images::ensure(sh, &[image])?;
    let mut world = world(sh, image.short_name())?;
    let tag = image.tag();
    let os = format!(
        "tether-smoke-deb-{}-{}",
        image.short_name(),
        std::process::id()
    );
    world.docker.containers.push(os.clone());
    let ca = start_os(
        sh,
        &os,
        &tag,
        &world.network,
        &world.served,
        &world.scratch.path().join("releases"),
    )?;
    let place = format!("deb {}", image.short_name());
    let name = deb
        .file_name()
        .context("deb name")?
        .to_string_lossy()
        .to_string();
    let inside = format!("/tmp/{name}");
    cmd!(sh, "docker cp {deb} {os}:{inside}").quiet().run()?;
    record(results, &place, "apt-get install ./tether.deb", || {
        let mut c = Command::new("docker");
        c.args(["exec", "-e", "DEBIAN_FRONTEND=noninteractive", &os])
            .args([
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                &inside,
            ]);
        checked(c, "apt-get install").map(drop)
    })?;
    let listed = exec(&os, &["dpkg-query", "-L", "tether"])?;
    let tether = |args: &[&str]| {
        let mut argv = vec!["/usr/bin/tether"];
        argv.extend_from_slice(args);
        exec(&os, &argv)
    };
    let relay = Relay {
        url: &world.served.relay,
        http: &world.relay_http,
        ca: &ca,
    };
    run_steps(results, &place, target, &tether, &relay, &|| {
        no_daemon_left(&os)
    })?;
    record(results, &place, "host install: /usr/lib/tether", || {
        let unit = tether(&["host", "install", "--print", "--org", super::ORG])?;
        ensure!(
            unit.contains(&format!("{}/tether-host", contents::LIB_DIR)),
            "the unit does not start /usr/lib/tether/tether-host:\n{unit}"
        );
        Ok(())
    })?;
    record(results, &place, "self-update refused", || {
        self_update_refused(&os)
    })?;
    record(results, &place, "apt-get remove --purge", || {
        let mut c = Command::new("docker");
        c.args(["exec", "-e", "DEBIAN_FRONTEND=noninteractive", &os])
            .args(["apt-get", "remove", "--purge", "-y", "tether"]);
        checked(c, "apt-get remove --purge")?;
        left_behind(&os, &listed)
    })
}

/// The package's paths still there after a purge: none of its files, and none of its
/// own directories (those only tether uses).
fn left_behind(os: &str, listed: &str) -> anyhow::Result<()> {
    let own_dirs = ["/usr/lib/tether", "/usr/share/doc/tether"];
    let paths: BTreeSet<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('/'))
        .collect();
    let mut script = String::from("for p in");
    for path in &paths {
        script.push_str(&format!(" '{path}'"));
    }
    script.push_str("; do if [ -f \"$p\" ] || [ -L \"$p\" ]; then echo \"$p\"; fi; done");
    for dir in own_dirs {
        script.push_str(&format!("; [ -e '{dir}' ] && echo '{dir}'"));
    }
    script.push_str("; true");
    let left = exec(os, &["/bin/sh", "-c", &script])?;
    ensure!(
        left.trim().is_empty(),
        "left behind after apt-get remove --purge:\n{left}"
    );
    ensure!(
        paths.contains("/usr/bin/tether"),
        "dpkg listed no /usr/bin/tether: {listed}"
    );
    Ok(())
}

/// `tether self-update` on a dpkg install: refused (exit 1) naming apt; nothing changed.
fn self_update_refused(os: &str) -> anyhow::Result<()> {
    let out = Command::new("docker")
        .args([
            "exec",
            "-e",
            "TETHER_DOWNLOAD_URL=https://harness:8080/releases",
            os,
        ])
        .args(["/usr/bin/tether", "self-update"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && stderr.contains("dpkg package `tether`")
            && stderr.contains("apt-get install --only-upgrade tether"),
        "tether self-update on a dpkg install: {} {stderr}",
        out.status
    );
    // dpkg's own check: every file as the package installed it.
    let verify = exec(os, &["dpkg", "--verify", "tether"])?;
    ensure!(verify.trim().is_empty(), "dpkg --verify tether: {verify}");
    Ok(())
}

/// No tether daemon runs in the container any more.
fn no_daemon_left(os: &str) -> anyhow::Result<()> {
    let listing = exec(
        os,
        &[
            "/bin/sh",
            "-c",
            "cat /proc/[0-9]*/cmdline | tr '\\000' '\\n'",
        ],
    )?;
    ensure!(
        !listing.contains("tether-host") && !listing.contains("tether-ptyd"),
        "a daemon is still running"
    );
    Ok(())
}
