//! bundle: the host service refuses to guess where its pty daemon is.

use anyhow::ensure;
use tether_contract::environment::{API_KEY_ENV, HOME_ENV};

use super::env::{bin_dir, Machine};
use super::runs::text;
use super::scenario;
use super::Scenario;

pub fn scenarios() -> Vec<Scenario> {
    vec![scenario!("bundle.missing_ptyd", "tether-host without tether-ptyd beside it names the exact path and says the bundle is incomplete", "contract §5, §8", missing_ptyd)]
}

async fn missing_ptyd() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lonely = dir.path().join("lib");
    std::fs::create_dir_all(&lonely)?;
    std::fs::copy(bin_dir()?.join("tether-host"), lonely.join("tether-host"))?;
    let machine = Machine::new("http://127.0.0.1:9", "ws://127.0.0.1:9")?;
    let mut cmd = tokio::process::Command::new(lonely.join("tether-host"));
    cmd.args(["--org", "org_a"])
        .env(HOME_ENV, machine.home())
        .env_remove(API_KEY_ENV);
    let out = super::runs::run_recorded(cmd, "tether-host without its pty daemon").await?;
    let (_, stderr) = text(&out);
    let expected = lonely.canonicalize()?.join("tether-ptyd");
    ensure!(
        !out.status.success(),
        "tether-host started without its pty daemon"
    );
    ensure!(
        stderr.contains(&format!("pty daemon not found at {}", expected.display())),
        "{stderr}"
    );
    ensure!(stderr.contains("the bundle is incomplete"), "{stderr}");
    Ok(())
}
