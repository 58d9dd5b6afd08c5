//! `tether host install | uninstall` with recording fakes of `systemctl` and `loginctl`
//! on PATH (contract section 10): the unit, the 0600 environment file, the calls made,
//! the lingering hint, `systemd-analyze verify`, and nothing left after uninstall.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tether_contract::environment::{API_KEY_ENV, API_URL_ENV, HOME_ENV, SERVICE_MANAGER_ENV};

const KEY: &str = "sk_live_installtestkey0123456789";

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = dir.path().join("fake-bin");
        std::fs::create_dir(&fake).expect("fake dir");
        let script = format!(
            "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> {}\n[ \"$(basename \"$0\")\" = loginctl ] && echo no\nexit 0\n",
            dir.path().join("calls").display()
        );
        for tool in ["systemctl", "loginctl"] {
            let path = fake.join(tool);
            std::fs::write(&path, &script).expect("fake");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        Machine { dir }
    }

    fn tether(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join("fake-bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("XDG_CONFIG_HOME")
            .env(HOME_ENV, self.dir.path().join("tether"))
            .env(API_URL_ENV, "http://127.0.0.1:9")
            .env(API_KEY_ENV, KEY)
            .env("PATH", path)
            .output()
            .expect("run tether")
    }

    fn unit(&self) -> PathBuf {
        self.dir
            .path()
            .join(".config/systemd/user/tether-host@org_a.service")
    }

    fn env_file(&self) -> PathBuf {
        self.dir.path().join("tether/service/host-org_a.env")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

#[test]
fn install_writes_a_unit_and_a_private_environment_then_enables_it() {
    let machine = Machine::new();
    let out = machine.tether(&["host", "install", "--org", "org_a"]);
    assert!(out.status.success(), "{}", text(&out));

    let unit = std::fs::read_to_string(machine.unit()).expect("unit written");
    assert!(
        unit.contains("KillMode=process") && unit.contains("Restart=on-failure"),
        "{unit}"
    );
    assert!(unit.contains("--org org_a"), "{unit}");
    assert!(!unit.contains(KEY), "the key is in the unit:\n{unit}");
    let env = std::fs::read_to_string(machine.env_file()).expect("env file");
    assert!(env.contains(&format!("TETHER_API_KEY=\"{KEY}\"")), "{env}");
    assert_eq!(mode(&machine.env_file()), 0o600);
    assert_eq!(mode(machine.env_file().parent().expect("dir")), 0o700);

    let calls = machine.calls();
    assert!(calls.contains("systemctl --user daemon-reload"), "{calls}");
    assert!(
        calls.contains("systemctl --user enable --now tether-host@org_a.service"),
        "{calls}"
    );
    let said = text(&out);
    assert!(said.contains("loginctl enable-linger "), "{said}");
    assert!(!said.contains(KEY), "{said}");

    let out = machine.tether(&["host", "uninstall", "--org", "org_a"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        machine
            .calls()
            .contains("systemctl --user disable --now tether-host@org_a.service"),
        "{}",
        machine.calls()
    );
    assert!(
        !machine.unit().exists() && !machine.env_file().exists(),
        "files left behind"
    );
}

#[test]
fn print_changes_nothing_and_shows_no_secret() {
    let machine = Machine::new();
    let out = machine.tether(&["host", "install", "--org", "org_a", "--print"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("[Service]") && said.contains(API_KEY_ENV),
        "{said}"
    );
    assert!(!said.contains(KEY), "--print showed the key:\n{said}");
    assert!(!machine.unit().exists() && machine.calls().is_empty());
}

#[test]
fn uninstall_leaves_a_unit_it_did_not_write_alone() {
    let machine = Machine::new();
    std::fs::create_dir_all(machine.unit().parent().expect("dir")).expect("mkdir");
    std::fs::write(machine.unit(), "[Service]\nExecStart=/bin/true\n").expect("foreign unit");
    let out = machine.tether(&["host", "uninstall", "--org", "org_a"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("was not written by tether host install"),
        "{}",
        text(&out)
    );
    assert!(machine.unit().exists());
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Ok(analyze) = which("systemd-analyze") else {
        if std::env::var_os("CI").is_some() {
            panic!("systemd-analyze is required in CI (`bash .ci/setup` installs systemd)");
        }
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    };
    let machine = Machine::new();
    let out = machine.tether(&["host", "install", "--org", "org_a"]);
    assert!(out.status.success(), "{}", text(&out));
    let verify = Command::new(analyze)
        .arg("verify")
        .arg(machine.unit())
        .output()
        .expect("systemd-analyze");
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify warned: {}",
        text(&verify)
    );
}

fn which(tool: &str) -> Result<PathBuf, ()> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn an_org_id_that_could_rewrite_a_unit_or_escape_tether_home_is_refused() {
    let machine = Machine::new();
    // Finding 1 of issue 25, as reproduced: a unit with its own [Service] section.
    let out = machine.tether(&[
        "host",
        "install",
        "--print",
        "--system",
        "--user",
        "alice",
        "--org",
        "a\n[Service]\nUser=root",
    ]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("a\\n[Service]\\nUser=root"),
        "not shown escaped: {shown}"
    );
    assert!(!shown.lines().any(|l| l == "User=root"), "{shown}");
    assert!(!shown.contains("[Unit]"), "a unit was printed: {shown}");

    // ... and a path that leaves TETHER_HOME: nothing is created or chmodded outside it.
    let victim = machine.dir.path().join("victim");
    std::fs::create_dir(&victim).expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = machine.tether(&["host", "install", "--org", "../../victim/x"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(mode(&victim), 0o755, "the directory outside was chmodded");
    assert!(
        !victim.join("x.env").exists(),
        "the key was written outside"
    );
    assert_eq!(machine.calls(), "", "systemctl was called");

    // A system unit's user name goes into User= too.
    let out = machine.tether(&[
        "host",
        "install",
        "--print",
        "--system",
        "--user",
        "root\nUser=x",
        "--org",
        "org_a",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("invalid user name"), "{}", text(&out));
}

#[test]
fn a_printed_unit_marks_the_manager_and_shows_no_secret() {
    let machine = Machine::new();
    let out = machine.tether(&["host", "install", "--print", "--org", "org_a"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(!shown.contains(KEY), "the key was printed: {shown}");
    assert!(shown.contains(SERVICE_MANAGER_ENV), "{shown}");
}
