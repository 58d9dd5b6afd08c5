//! OpenSSH on the same machine, for comparison: a private `sshd` on a loopback port with
//! throwaway keys, keystroke echo through `ssh -tt … 'stty -icanon; cat'` and `cat` of
//! the same file. Measured only when `sshd` is installed (`apt-get install openssh-server`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

/// What OpenSSH measured.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenSsh {
    /// `ssh -V`.
    pub version: String,
    /// Echo p50 / p99 in ms.
    pub echo_ms: (f64, f64),
    /// `cat` of the file through ssh, MiB/s.
    pub cat_mib_s: f64,
    /// Every echo sample in ms, sorted (for the report's distribution chart).
    #[serde(skip)]
    pub echo_samples_ms: Vec<f64>,
}

/// A private sshd; killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    [
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(name))
    .find(|p| p.is_file())
}

fn keygen(path: &Path) -> anyhow::Result<()> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .context("ssh-keygen")?;
    ensure!(status.success(), "ssh-keygen failed");
    Ok(())
}

impl Sshd {
    fn start() -> anyhow::Result<Sshd> {
        let sshd = which("sshd").context("sshd is not installed")?;
        let dir = tempfile::tempdir()?;
        let (host_key, key) = (dir.path().join("host_key"), dir.path().join("user_key"));
        keygen(&host_key)?;
        keygen(&key)?;
        std::fs::copy(
            dir.path().join("user_key.pub"),
            dir.path().join("authorized_keys"),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile none\nUsePAM no\nStrictModes no\nPermitRootLogin yes\nPasswordAuthentication no\nPrintMotd no\nPrintLastLog no\n",
                host_key.display(),
                dir.path().join("authorized_keys").display()
            ),
        )?;
        // sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sshd")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("sshd did not listen on 127.0.0.1:{port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Sshd {
            child,
            port,
            key,
            _dir: dir,
        })
    }

    fn ssh(&self, remote: &str) -> Command {
        let mut command = Command::new("ssh");
        command
            .args(["-tt", "-q", "-p", &self.port.to_string(), "-i"])
            .arg(&self.key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "127.0.0.1",
                remote,
            ]);
        command
    }
}

/// Runs the OpenSSH side, or says why not.
pub fn measure(samples: usize, file: &Path, bytes: usize) -> anyhow::Result<OpenSsh> {
    let sshd = Sshd::start()?;
    let version = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    let echoes = echo(&sshd, samples)?;
    let started = Instant::now();
    let mut cat = sshd
        .ssh(&format!("stty raw -echo; cat {}", file.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("ssh")?;
    let mut out = cat.stdout.take().context("ssh stdout")?;
    let mut seen = 0usize;
    let mut buffer = vec![0u8; 256 * 1024];
    while seen < bytes {
        let n = out.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        seen += n;
    }
    let elapsed = started.elapsed();
    let _ = cat.kill();
    let _ = cat.wait();
    ensure!(seen >= bytes, "ssh cat ended after {seen} of {bytes} bytes");
    let p = |q| super::percentile(&echoes, q).as_secs_f64() * 1000.0;
    Ok(OpenSsh {
        version,
        echo_ms: (p(0.5), p(0.99)),
        cat_mib_s: bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64(),
        echo_samples_ms: echoes.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
    })
}

/// One byte in, its echo out, `samples` times through `ssh -tt`; sorted.
fn echo(sshd: &Sshd, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let mut child = sshd
        .ssh("stty -icanon; echo ready; cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("ssh")?;
    let mut input = child.stdin.take().context("ssh stdin")?;
    let mut output = child.stdout.take().context("ssh stdout")?;
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        ensure!(
            output.read(&mut byte)? == 1,
            "ssh ended before the shell was ready"
        );
        seen.push(byte[0]);
    }
    // The rest of the "ready" line.
    std::thread::sleep(Duration::from_millis(300));
    let mut echoes = Vec::with_capacity(samples);
    for i in 0..samples {
        let sent = b'a' + (i % 26) as u8;
        let started = Instant::now();
        input.write_all(&[sent])?;
        input.flush()?;
        // The first copy (the pty's echo) is timed; `cat`'s copy is waited for, as for tether.
        for copy in 0..2 {
            loop {
                ensure!(output.read(&mut byte)? == 1, "ssh ended mid-echo");
                if byte[0] == sent {
                    break;
                }
            }
            if copy == 0 {
                echoes.push(started.elapsed());
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    echoes.sort();
    Ok(echoes)
}
