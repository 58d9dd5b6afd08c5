//! `install.sh` under dash and busybox ash against a release served over loopback HTTP:
//! it installs, upgrades in place, and refuses a tampered archive, a missing file and an
//! unknown platform with one line and nothing installed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::bundle::archive::{sidecar_line, BundleFile};
use crate::bundle::digest::sha256_hex;
use crate::fixtures::{bundle_archive, bundle_files, fixture};
use crate::flags::project_root;
use crate::path_search::which;

/// Serves the files of `dir` over HTTP/1.0 on loopback until the test ends; returns the base
/// URL. A file `<name>.redirect` makes `<name>` answer `302` to the URL it holds.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let name = path.trim_start_matches('/');
            let body = (!name.contains("..")).then(|| std::fs::read(dir.join(name)).ok());
            let mut stream = &stream;
            if let Ok(to) = std::fs::read_to_string(dir.join(format!("{name}.redirect"))) {
                let _ = stream.write_all(
                    format!("HTTP/1.0 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
                        .as_bytes(),
                );
                continue;
            }
            let _ = match body.flatten() {
                Some(bytes) => stream
                    .write_all(
                        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", bytes.len())
                            .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(&bytes)),
                None => stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            };
        }
    });
    url
}

/// A release directory of `version` whose CLI is `cli`.
fn release(dir: &Path, version: &str, cli: Vec<u8>) {
    let mut files = bundle_files(Some(fixture("static-x86_64")));
    files[0] = BundleFile {
        path: "bin/tether".into(),
        bytes: cli,
        executable: true,
    };
    let bytes = bundle_archive(version, &files, &files);
    let name = format!("tether-{version}-linux-x64.tar.gz");
    std::fs::write(dir.join(&name), &bytes).expect("write");
    std::fs::write(
        dir.join(format!("{name}.sha256")),
        sidecar_line(&bytes, &name),
    )
    .expect("write");
    let sums = format!("{}  {name}\n", sha256_hex(&bytes));
    std::fs::write(dir.join("SHA256SUMS"), sums).expect("write");
}

/// The tools install.sh may use, found on this machine's PATH.
const TOOLS: [&str; 16] = [
    "curl",
    "sha256sum",
    "cut",
    "mktemp",
    "rm",
    "sed",
    "head",
    "gzip",
    "tar",
    "mkdir",
    "cp",
    "chmod",
    "mv",
    "cat",
    "minisign",
    "uname",
];

/// A directory of links to [`TOOLS`] (a fake `uname` when `uname` is given; minisign only
/// when `minisign`): the whole PATH install.sh runs with, so it can use nothing else.
fn tools(dir: &Path, uname: (&str, &str), minisign: bool) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    for tool in TOOLS {
        if tool == "minisign" && !minisign || tool == "uname" {
            continue;
        }
        let found =
            which(tool).unwrap_or_else(|| panic!("{tool} is not installed (bash .ci/setup)"));
        std::os::unix::fs::symlink(found, dir.join(tool)).expect("symlink");
    }
    let (system, machine) = uname;
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in -s) echo {system};; -m) echo {machine};; *) echo {system};; esac\n"
    );
    let path = dir.join("uname");
    std::fs::write(&path, script).expect("write");
    let mut mode = std::fs::metadata(&path).expect("uname").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&path, mode).expect("chmod");
}

/// Runs install.sh with `shell` (`dash` or `busybox sh`) and only `bin` on PATH.
fn install(shell: &[&str], url: &str, prefix: &Path, bin: &Path) -> Output {
    installer(shell, url, bin)
        .args(["--prefix", &prefix.to_string_lossy()])
        .env("HOME", prefix)
        .output()
        .expect("run install.sh")
}

/// install.sh under `shell` with an empty environment but for the URL and PATH.
fn installer(shell: &[&str], url: &str, bin: &Path) -> Command {
    let program =
        which(shell[0]).unwrap_or_else(|| panic!("{} is not installed (bash .ci/setup)", shell[0]));
    let mut command = Command::new(program);
    command
        .args(&shell[1..])
        .arg(project_root().join("install.sh"))
        .env_clear()
        .env(tether_contract::environment::DOWNLOAD_URL_ENV, url)
        .env("PATH", bin);
    command
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const LINUX: (&str, &str) = ("Linux", "x86_64");

const SHELLS: [&[&str]; 2] = [&["dash"], &["busybox", "sh"]];

#[test]
fn installs_and_upgrades_in_place_under_dash_and_busybox() {
    for shell in SHELLS {
        let served = tempfile::tempdir().expect("tempdir");
        let prefix = tempfile::tempdir().expect("tempdir");
        let bin = tempfile::tempdir().expect("tempdir");
        tools(bin.path(), ("Linux", "x86_64"), false);
        release(served.path(), "0.1.0", b"first cli".to_vec());
        let url = serve(served.path().to_path_buf());

        let out = install(shell, &url, prefix.path(), bin.path());
        assert!(out.status.success(), "{shell:?}: {}", stderr(&out));
        let read = |rel: &str| std::fs::read(prefix.path().join(rel)).unwrap_or_default();
        assert_eq!(read("bin/tether"), b"first cli");
        // Where the runtime looks first (runtime/src/bundle/layout.rs).
        let lib = tether_contract::bundle_layout::INSTALLED_LIB_DIR;
        let sample = crate::fixtures::auditable(&fixture("static-x86_64"));
        assert_eq!(read(&format!("{lib}/tether-host")), sample);
        assert_eq!(read(&format!("{lib}/tether-ptyd")), sample);
        let mode = std::fs::metadata(prefix.path().join("bin/tether")).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        });
        assert_eq!(mode.ok(), Some(0o755));

        // A newer release at the same URL: the second run replaces the files.
        release(served.path(), "0.1.1", b"second cli".to_vec());
        let out = install(shell, &url, prefix.path(), bin.path());
        assert!(out.status.success(), "{shell:?}: {}", stderr(&out));
        assert_eq!(read("bin/tether"), b"second cli");
        let left: Vec<_> = std::fs::read_dir(prefix.path().join("bin"))
            .expect("bin")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["tether"], "{shell:?}: temporary files left");
        // minisign is not on PATH: the last line says the signature was not checked.
        let last = stderr(&out).lines().last().unwrap_or_default().to_string();
        assert!(
            last.contains("signature of SHA256SUMS was not checked"),
            "{shell:?}: {last}"
        );
    }
}

#[test]
fn a_symlink_planted_at_a_staging_name_is_not_written_through() {
    let served = tempfile::tempdir().expect("tempdir");
    let prefix = tempfile::tempdir().expect("tempdir");
    let bin = tempfile::tempdir().expect("tempdir");
    tools(bin.path(), LINUX, false);
    release(served.path(), "0.1.0", b"cli".to_vec());
    let url = serve(served.path().to_path_buf());
    let victim = prefix.path().join("victim");
    std::fs::write(&victim, "precious").expect("write");
    std::fs::create_dir_all(prefix.path().join("bin")).expect("bin");
    // The name the installer used to stage at.
    std::os::unix::fs::symlink(&victim, prefix.path().join("bin/tether.tether-new"))
        .expect("symlink");
    let out = install(&["dash"], &url, prefix.path(), bin.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );
    assert_eq!(
        std::fs::read(prefix.path().join("bin/tether")).expect("cli"),
        b"cli"
    );
}

#[test]
fn plain_http_and_downgrading_redirects_are_refused_and_home_is_required() {
    let bin = tempfile::tempdir().expect("tempdir");
    tools(bin.path(), LINUX, false);
    for shell in SHELLS {
        // Plain http to another machine: refused before any download.
        let prefix = tempfile::tempdir().expect("tempdir");
        let out = install(shell, "http://192.0.2.1/r", prefix.path(), bin.path());
        assert!(!out.status.success(), "{shell:?}: http accepted");
        assert!(
            stderr(&out).contains("plain http://"),
            "{shell:?}: {}",
            stderr(&out)
        );

        // A redirect to plain http (loopback even): curl refuses to follow it.
        let served = tempfile::tempdir().expect("tempdir");
        release(served.path(), "0.1.0", b"cli".to_vec());
        let url = serve(served.path().to_path_buf());
        std::fs::write(
            served.path().join("SHA256SUMS.redirect"),
            format!("{url}/moved/SHA256SUMS"),
        )
        .expect("write");
        std::fs::create_dir(served.path().join("moved")).expect("mkdir");
        std::fs::copy(
            served.path().join("SHA256SUMS"),
            served.path().join("moved/SHA256SUMS"),
        )
        .expect("copy");
        let out = install(shell, &url, prefix.path(), bin.path());
        assert!(
            !out.status.success(),
            "{shell:?}: followed a redirect to http"
        );
        assert!(
            stderr(&out).contains("cannot download"),
            "{shell:?}: {}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_dir(prefix.path()).expect("prefix").count(), 0);

        // No HOME and no --prefix: refused, nothing written to /.local.
        let out = installer(shell, &url, bin.path())
            .output()
            .expect("run install.sh");
        assert!(!out.status.success(), "{shell:?}: installed without HOME");
        assert!(
            stderr(&out).contains("--prefix"),
            "{shell:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn refusals_are_one_line_and_install_nothing() {
    for shell in SHELLS {
        let bin = tempfile::tempdir().expect("tempdir");
        let refused = |served: &Path, uname: (&str, &str), minisign: bool, needle: &str| {
            let prefix = tempfile::tempdir().expect("tempdir");
            tools(bin.path(), uname, minisign);
            let url = serve(served.to_path_buf());
            let out = install(shell, &url, prefix.path(), bin.path());
            let err = stderr(&out);
            assert!(!out.status.success(), "{shell:?}: {needle}: it succeeded");
            assert_eq!(err.lines().count(), 1, "{shell:?}: not one line: {err}");
            assert!(err.contains(needle), "{shell:?}: {err}");
            assert!(err.contains("nothing was installed"), "{shell:?}: {err}");
            let installed = std::fs::read_dir(prefix.path()).expect("prefix").count();
            assert_eq!(installed, 0, "{shell:?}: {needle}: something was installed");
        };

        // A tampered archive: SHA256SUMS and the sidecar name the original's hash.
        let served = tempfile::tempdir().expect("tempdir");
        release(served.path(), "0.1.0", b"cli".to_vec());
        let archive = served.path().join("tether-0.1.0-linux-x64.tar.gz");
        let mut bytes = std::fs::read(&archive).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&archive, bytes).expect("write");
        refused(served.path(), LINUX, false, "does not match SHA256SUMS");

        // A download that fails: the sidecar is missing.
        let served = tempfile::tempdir().expect("tempdir");
        release(served.path(), "0.1.0", b"cli".to_vec());
        std::fs::remove_file(served.path().join("tether-0.1.0-linux-x64.tar.gz.sha256"))
            .expect("rm");
        refused(served.path(), LINUX, false, "cannot download");

        // A machine tether does not ship for.
        let served = tempfile::tempdir().expect("tempdir");
        release(served.path(), "0.1.0", b"cli".to_vec());
        // (busybox sh runs its own `uname` applet, whatever PATH says: dash only.)
        if shell == ["dash"] {
            let needle = "unsupported platform: Plan9 mips";
            refused(served.path(), ("Plan9", "mips"), false, needle);
        }

        // With minisign installed, a SHA256SUMS signed by another key.
        let served = tempfile::tempdir().expect("tempdir");
        release(served.path(), "0.1.0", b"cli".to_vec());
        sign_with_another_key(served.path());
        refused(
            served.path(),
            LINUX,
            true,
            "not signed by the tether release key",
        );
    }
}

#[test]
fn the_installer_trusts_the_release_key() {
    let script = std::fs::read_to_string(project_root().join("install.sh")).expect("install.sh");
    let key = crate::bundle::release_key::official().expect("keys/release.pub");
    assert!(
        script.contains(&format!("RELEASE_KEY=\"{}\"", key.base64)),
        "install.sh's RELEASE_KEY is not keys/release.pub's"
    );
}

/// Signs `dir/SHA256SUMS` with a fresh key users do not trust.
fn sign_with_another_key(dir: &Path) {
    let minisign::KeyPair { sk, .. } =
        minisign::KeyPair::generate_unencrypted_keypair().expect("keys");
    let sums = std::fs::read(dir.join("SHA256SUMS")).expect("sums");
    let signature =
        minisign::sign(None, &sk, std::io::Cursor::new(sums), None, None).expect("sign");
    std::fs::write(dir.join("SHA256SUMS.minisig"), signature.to_string()).expect("write");
}

/// `install.sh`'s platform table: each `uname -s uname -m` pair and the target it picks.
fn install_sh_table(script: &str) -> Vec<(String, String, String)> {
    let start = script
        .find("case \"$(uname -s) $(uname -m)\" in")
        .expect("install.sh picks its target from uname");
    let mut rows = Vec::new();
    for line in script[start..].lines().skip(1) {
        let line = line.trim();
        if line == "esac" {
            break;
        }
        let Some((patterns, action)) = line.split_once(')') else {
            continue;
        };
        let Some(target) = action.trim().strip_prefix("target=") else {
            continue;
        };
        let target = target.trim_end_matches(";;").trim();
        for pattern in patterns.split('|') {
            let pair = pattern.trim().trim_matches('"');
            let (os, arch) = pair.split_once(' ').expect("\"OS ARCH\"");
            rows.push((os.to_string(), arch.to_string(), target.to_string()));
        }
    }
    rows
}

#[test]
fn install_sh_knows_every_target_the_contract_names_and_no_other() {
    use crate::targets::{Arch, Os, TARGETS};
    let script = std::fs::read_to_string(project_root().join("install.sh")).expect("install.sh");
    let rows = install_sh_table(&script);
    for (os, arch, name) in &rows {
        let target = TARGETS
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("install.sh picks {name}, which is not a release target"));
        let os_ok = match target.os {
            Os::Linux => os == "Linux",
            Os::Darwin => os == "Darwin",
        };
        let arch_ok = match target.arch {
            Arch::X86_64 => matches!(arch.as_str(), "x86_64" | "amd64"),
            Arch::Aarch64 => matches!(arch.as_str(), "aarch64" | "arm64"),
        };
        assert!(os_ok && arch_ok, "install.sh maps {os} {arch} to {name}");
    }
    for target in TARGETS {
        assert!(
            rows.iter().any(|(_, _, name)| name == target.name),
            "install.sh cannot install {}",
            target.name
        );
    }
    assert!(
        script.contains(&format!(
            "tether ships {}",
            TARGETS.map(|t| t.name).join(", ")
        )),
        "install.sh's 'unsupported platform' message does not list the targets"
    );
}

#[test]
fn the_install_sh_table_reader_reads_every_pattern() {
    let rows = install_sh_table(
        "case \"$(uname -s) $(uname -m)\" in\n    \"Linux x86_64\" | \"Linux amd64\") target=linux-x64 ;;\n    *) die x ;;\nesac\n",
    );
    assert_eq!(
        rows,
        [
            ("Linux".into(), "x86_64".into(), "linux-x64".into()),
            ("Linux".into(), "amd64".into(), "linux-x64".into())
        ]
    );
}
