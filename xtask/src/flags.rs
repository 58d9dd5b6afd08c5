//! Every xtask command line, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// tether's build-and-release toolchain.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
pub struct Xtask {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// xtask commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The test command: fmt check, clippy with -D warnings, and every test in the workspace.
    Ci(CiArgs),
    /// Build per-target release bundles and verify them.
    Dist(DistArgs),
    /// Check finished archives: complete, untampered, right machine, stripped, in budget.
    Verify(VerifyArgs),
    /// Run the end-to-end conformance scenarios on the real binaries.
    E2e(E2eArgs),
    /// Loopback benchmarks of release binaries: start-up, echo latency, throughput, RSS.
    Bench(BenchArgs),
    /// The real binaries for N minutes with chaos on a seeded schedule; checks invariants.
    Soak(SoakArgs),
    /// Fuzz every decoder that reads another process's bytes, for a time per target.
    Fuzz(FuzzArgs),
    /// Time the README's main job cold and warm in a fresh clone; writes docs/BUILD_TIMES.md.
    Timings(TimingsArgs),
    /// Build the Docker images in docker/ that are missing or out of date.
    Images,
    /// Install a bundle on this machine and clean OS containers and run it end to end.
    Smoke(SmokeArgs),
    /// Check the house rules: file and function lengths, no #[path], LAYOUT.md, the façade.
    Tidy,
    /// Write SHA256SUMS and latest.json for the release files in a directory, and sign both.
    Sign(SignArgs),
}

/// `cargo xtask sign`
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The directory holding the archives (and their `.sha256`, SBOMs); `install.sh` is copied in.
    #[arg(long, default_value = "dist")]
    pub dir: PathBuf,
    /// Where the release's files will be downloaded from: `latest.json`'s URLs start with it.
    #[arg(long)]
    pub base_url: String,
    /// The public key the secret in `TETHER_SIGNING_KEY` must belong to.
    #[arg(long, default_value = "keys/release.pub")]
    pub public_key: PathBuf,
}

/// `cargo xtask smoke`
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// Target whose bundle to test.
    #[arg(long, default_value = "linux-x64")]
    pub target: String,
    /// The archive (default: dist/'s, built if absent).
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Where to install and run it.
    #[arg(long, value_enum, default_value = "all")]
    pub on: SmokeOn,
}

/// `cargo xtask soak`
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long, in minutes (CI runs 2; the release check 60).
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// The chaos schedule's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where soak.json and soak.svg go.
    #[arg(long, default_value = "target/soak")]
    pub report: PathBuf,
}

/// `cargo xtask bench`
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the throughput file, in MiB.
    #[arg(long, default_value_t = 100)]
    pub mib: usize,
    /// Keystroke echo samples.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Terminals in the burst (`session.open` every 2 ms); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    pub terminals: usize,
}

/// `cargo xtask e2e`
#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Only scenarios whose id contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the conformance report here (index.html, results.json, junit.xml).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run the black-box scenarios against this API instead of the reference server.
    #[arg(long, requires = "relay_url")]
    pub api_url: Option<String>,
    /// The deployment's relay, with --api-url.
    #[arg(long, requires = "api_url")]
    pub relay_url: Option<String>,
    /// Scenarios run at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Run the suite this many times; prints how many runs each scenario failed (CI: 3).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Which side of the contract to test.
    #[arg(long, value_enum, default_value = "all")]
    pub target_profile: TargetProfile,
}

/// `cargo xtask timings`
#[derive(Debug, Args)]
pub struct TimingsArgs {
    /// Remove the tether images first, so the cold run builds them too.
    #[arg(long)]
    pub drop_images: bool,
    /// Also time `cargo xtask ci`, cold, per step (about 15 minutes more).
    #[arg(long)]
    pub ci: bool,
    /// Where the table goes (default: docs/BUILD_TIMES.md).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// `cargo xtask fuzz`
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Seconds per target (CI: 30; run for hours with a larger number).
    #[arg(long, default_value_t = 30)]
    pub time: u64,
}

/// `cargo xtask dist`
#[derive(Debug, Args)]
pub struct DistArgs {
    /// Target name: linux-x64, linux-arm64, darwin-arm64, darwin-x64 (repeatable).
    #[arg(long)]
    pub target: Vec<String>,
    /// Every target.
    #[arg(long, conflicts_with = "target")]
    pub all: bool,
    /// Where archives go (default: `dist/` at the project root).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Then build each target again from an empty target directory and require identical bytes.
    #[arg(long)]
    pub check_reproducible: bool,
    /// What to make: tar (the archive, always made), deb, rpm, oci (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tar")]
    pub formats: Vec<Format>,
}

/// Where `cargo xtask smoke` installs a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmokeOn {
    /// This machine.
    Host,
    /// A clean Debian 12 container.
    Bookworm,
    /// A clean Debian 11 container.
    Bullseye,
    /// A `FROM scratch` container.
    Scratch,
    /// The `.deb` on Debian 12 and 11.
    Deb,
    /// The `.rpm` in an RPM root.
    Rpm,
    /// The OCI image, loaded and run.
    Oci,
    /// Every package.
    Packages,
    /// The host, every container and every package.
    All,
}

/// Which side of the contract `cargo xtask e2e` tests (the harness's `--target-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetProfile {
    /// The authorization server and relay (`server.*`).
    Server,
    /// tether itself, against the servers.
    Client,
    /// Both.
    All,
}

/// The word clap parses into `value`, to pass the flag on to another program.
pub fn flag_word(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// A release format (contract section 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The `.tar.gz` bundle.
    Tar,
    /// The Debian package.
    Deb,
    /// The RPM package.
    Rpm,
    /// The OCI image layout.
    Oci,
}

impl Format {
    /// Every format, as `--formats` spells them.
    pub const ALL: [Format; 4] = [Format::Tar, Format::Deb, Format::Rpm, Format::Oci];

    /// The name `--formats` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Deb => "deb",
            Format::Rpm => "rpm",
            Format::Oci => "oci",
        }
    }
}

/// `cargo xtask verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Archives to check (each needs its `.sha256` beside it), or packages and images
    /// (each checked against the archive of its version and target beside it).
    #[arg(required = true)]
    pub archives: Vec<PathBuf>,
    /// Also refuse a test build: `tether` must trust `keys/release.pub` and nothing else.
    #[arg(long)]
    pub release: bool,
}

/// `cargo xtask ci`
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Skip `cargo fmt --check` and clippy (tests only).
    #[arg(long)]
    pub tests_only: bool,
}

/// The workspace root (the parent of `xtask/`).
pub fn project_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.to_path_buf())
}
