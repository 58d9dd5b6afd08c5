//! `cargo xtask images`: builds the images in `docker/` that are missing or out of date.
//! Nothing is pulled: `FROM scratch` images from static binaries, Debian roots from
//! `debootstrap` + `docker import`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use xshell::{cmd, Shell};

use crate::bundle::digest::sha256_hex;

/// The images xtask knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// `tether-harness:latest`.
    Harness,
    /// `tether-os:<suite>` from debootstrap.
    Debian(&'static str),
    /// `tether-os:<suite>-systemd`: the same with systemd as PID 1 (the service scenario).
    DebianSystemd(&'static str),
    /// `tether-os:<suite>-squid`: the same with Debian's squid (the proxy scenario).
    DebianSquid(&'static str),
    /// `tether-os:scratch`.
    Scratch,
}

impl Image {
    /// Every image: the harness and the clean OS images the smoke installs on.
    pub const ALL: [Image; 6] = [
        Image::Harness,
        Image::Debian("bookworm"),
        Image::Debian("bullseye"),
        Image::Scratch,
        Image::DebianSystemd("bookworm"),
        Image::DebianSquid("bookworm"),
    ];

    /// Every image but the harness's.
    pub const OS: [Image; 5] = [
        Image::Debian("bookworm"),
        Image::Debian("bullseye"),
        Image::Scratch,
        Image::DebianSystemd("bookworm"),
        Image::DebianSquid("bookworm"),
    ];

    /// The clean OS images the smoke installs on.
    pub const SMOKE: [Image; 3] = [
        Image::Debian("bookworm"),
        Image::Debian("bullseye"),
        Image::Scratch,
    ];

    /// The name `--on` takes: the suite, or `scratch`.
    pub fn short_name(self) -> &'static str {
        match self {
            Image::Harness => "harness",
            Image::Debian(suite) | Image::DebianSystemd(suite) | Image::DebianSquid(suite) => suite,
            Image::Scratch => "scratch",
        }
    }

    /// The image tag.
    pub fn tag(self) -> String {
        match self {
            Image::Harness => "tether-harness:latest".into(),
            Image::Debian(suite) => format!("tether-os:{suite}"),
            Image::DebianSystemd(suite) => format!("tether-os:{suite}-systemd"),
            Image::DebianSquid(suite) => format!("tether-os:{suite}-squid"),
            Image::Scratch => "tether-os:scratch".into(),
        }
    }
}

/// The label value an image was built from, if it exists.
fn built_from(sh: &Shell, tag: &str) -> Option<String> {
    let format = "{{index .Config.Labels \"tether.input\"}}";
    cmd!(sh, "docker image inspect --format {format} {tag}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
}

fn work_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = crate::flags::project_root()
        .join("target/docker")
        .join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Builds `images` where missing or stale: the OS images side by side (debootstrap
/// waits on the network and the disk far more than on the CPU), then the harness.
pub fn ensure(sh: &Shell, images: &[Image]) -> anyhow::Result<()> {
    let format = "{{.ServerVersion}}";
    if cmd!(sh, "docker info --format {format}")
        .quiet()
        .ignore_stderr()
        .read()
        .is_err()
    {
        bail!("the Docker engine is not reachable: start it (CI's .ci/run does) and try again");
    }
    let (harness, os): (Vec<Image>, Vec<Image>) =
        images.iter().partition(|i| **i == Image::Harness);
    std::thread::scope(|scope| {
        let builds: Vec<_> = os
            .iter()
            .map(|&image| scope.spawn(move || ensure_one(&Shell::new()?, image)))
            .collect();
        builds.into_iter().try_for_each(|build| {
            build
                .join()
                .map_err(|_| anyhow::anyhow!("an image build panicked"))?
        })
    })?;
    harness.iter().try_for_each(|&image| ensure_one(sh, image))
}

/// Builds one image where missing or stale, and says so.
fn ensure_one(sh: &Shell, image: Image) -> anyhow::Result<()> {
    let started = Instant::now();
    let built = match image {
        Image::Harness => harness(sh)?,
        // With what a user who runs `curl … | sh` has: curl and the CA bundle.
        Image::Debian(suite) => debian(
            sh,
            image,
            suite,
            Some("curl,ca-certificates"),
            r#"CMD ["/bin/sleep", "86400"]"#,
        )?,
        Image::DebianSystemd(suite) => debian(
            sh,
            image,
            suite,
            Some("systemd,systemd-sysv,dbus"),
            r#"CMD ["/lib/systemd/systemd"]"#,
        )?,
        Image::DebianSquid(suite) => debian(
            sh,
            image,
            suite,
            Some("squid"),
            r#"CMD ["/usr/sbin/squid", "-N"]"#,
        )?,
        Image::Scratch => scratch(sh)?,
    };
    eprintln!(
        "    image {} {} ({:.1}s)",
        image.tag(),
        if built { "built" } else { "up to date" },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn build(
    sh: &Shell,
    dockerfile: &Path,
    context: &Path,
    tag: &str,
    input: &str,
) -> anyhow::Result<()> {
    let label = format!("tether.input={input}");
    cmd!(
        sh,
        "docker build --quiet --label {label} --file {dockerfile} --tag {tag} {context}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("docker build of {tag} failed"))
}

/// Builds the static (x86_64 musl) `tether-harness`, the one binary that serves the
/// host smoke, the image and the container scenarios; returns its path.
pub fn static_harness(sh: &Shell) -> anyhow::Result<PathBuf> {
    let target = crate::targets::by_name("linux-x64")?;
    let dir = crate::dist::release_build(
        sh,
        &target,
        &["--package", "tether-harness", "--bin", "tether-harness"],
    )
    .context("building the static harness (needs `bash .ci/setup`)")?;
    let (_, target_dir) = crate::dist::workspace_facts(sh)?;
    Ok(target_dir.join(dir).join("tether-harness"))
}

/// The static harness in a `FROM scratch` image.
fn harness(sh: &Shell) -> anyhow::Result<bool> {
    let root = crate::flags::project_root();
    let binary = static_harness(sh)?;
    let bytes =
        std::fs::read(&binary).with_context(|| format!("{} was not built", binary.display()))?;
    let dockerfile = root.join("docker/harness.Dockerfile");
    let input = sha256_hex(&[bytes.as_slice(), &std::fs::read(&dockerfile)?].concat());
    if built_from(sh, "tether-harness:latest").as_deref() == Some(input.as_str()) {
        return Ok(false);
    }
    let context = work_dir("harness")?;
    std::fs::copy(&binary, context.join("tether-harness"))?;
    build(sh, &dockerfile, &context, "tether-harness:latest", &input)?;
    Ok(true)
}

/// A clean Debian root: `debootstrap --variant=minbase` (plus `include`d packages),
/// then `docker import` as `image` running `cmd`.
fn debian(
    sh: &Shell,
    image: Image,
    suite: &str,
    include: Option<&str>,
    cmd: &str,
) -> anyhow::Result<bool> {
    let tag = image.tag();
    let input = match include {
        None => format!("debootstrap-minbase-{suite}-v1"),
        Some(packages) => format!("debootstrap-minbase-{suite}-{packages}-v1"),
    };
    if built_from(sh, &tag).as_deref() == Some(input.as_str()) {
        return Ok(false);
    }
    if !Path::new("/usr/sbin/debootstrap").exists() {
        bail!("building {tag} needs debootstrap: run `apt-get install debootstrap` (or `bash .ci/setup`)");
    }
    let rootfs = work_dir(&format!("rootfs-{}", tag.replace([':', '.'], "-")))?;
    let include_flag = include.map(|p| format!("--include={p}"));
    cmd!(
        sh,
        "debootstrap --variant=minbase {include_flag...} {suite} {rootfs} http://deb.debian.org/debian"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("debootstrap of {suite} failed"))?;
    let label = format!("LABEL tether.input={input}");
    let archive = rootfs.with_extension("tar");
    cmd!(sh, "tar --numeric-owner -C {rootfs} -cf {archive} .").run()?;
    cmd!(
        sh,
        "docker import --change {label} --change {cmd} {archive} {tag}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .with_context(|| format!("docker import of {tag} failed"))?;
    std::fs::remove_dir_all(&rootfs).ok();
    std::fs::remove_file(&archive).ok();
    Ok(true)
}

/// `FROM scratch` with Debian's static busybox as the only userland.
fn scratch(sh: &Shell) -> anyhow::Result<bool> {
    let busybox = Path::new("/bin/busybox");
    let bytes = std::fs::read(busybox)
        .context("the scratch image needs Debian's static busybox: run `apt-get install busybox-static` (or `bash .ci/setup`)")?;
    let root = crate::flags::project_root();
    let dockerfile = root.join("docker/scratch.Dockerfile");
    let input = sha256_hex(&[bytes.as_slice(), &std::fs::read(&dockerfile)?].concat());
    if built_from(sh, "tether-os:scratch").as_deref() == Some(input.as_str()) {
        return Ok(false);
    }
    let context = work_dir("scratch")?;
    std::fs::write(context.join("busybox"), &bytes)?;
    std::fs::set_permissions(
        context.join("busybox"),
        std::fs::Permissions::from_mode(0o755),
    )?;
    std::fs::write(context.join("keep"), b"")?;
    build(sh, &dockerfile, &context, "tether-os:scratch", &input)?;
    Ok(true)
}
