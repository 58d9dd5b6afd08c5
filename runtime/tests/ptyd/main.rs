//! Integration tests of the real `tether-ptyd` binary over its Unix socket.

mod isolation;
mod lifecycle;
mod limits;
mod replay;
mod upgrade;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use tether_contract::environment::LOG_ENV;

use tether::ptyd::encode_message;
use tether::ptyd::{encode_frame as raw_frame, read_frame};
use tether::ptyd::{Incoming, PtydClient};
use tether_contract::ptyd_protocol::{Event, Request, SessionInfo};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc::Receiver;

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Daemon {
    start_daemon_with(&[])
}

/// A daemon with extra environment variables.
fn start_daemon_with(env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("run/ptyd-test.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_tether-ptyd"))
        .arg("--socket")
        .arg(&socket)
        .env(LOG_ENV, "warn")
        .envs(env.iter().copied())
        .spawn()
        .expect("spawn tether-ptyd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "tether-ptyd did not create its socket"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Daemon {
        child,
        socket,
        _dir: dir,
    }
}

fn open(id: &str, command: &str, args: &[&str]) -> Request {
    Request::Open {
        id: id.into(),
        command: Some(command.into()),
        args: args.iter().map(|s| s.to_string()).collect(),
        cwd: None,
        env: [("PS1".to_string(), "$ ".to_string())].into(),
        cols: 80,
        rows: 24,
    }
}

/// Waits for an event matching `pred`, collecting output of `id` on the way.
async fn wait_for(
    rx: &mut Receiver<Incoming>,
    what: &str,
    mut pred: impl FnMut(&Event, &[u8]) -> bool,
) -> Event {
    let deadline = Duration::from_secs(10);
    tokio::time::timeout(deadline, async {
        loop {
            let (event, payload) = rx
                .recv()
                .await
                .unwrap_or_else(|| panic!("connection closed while waiting for {what}"));
            if pred(&event, &payload) {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until the output of `id` seen so far contains `needle`.
async fn wait_output(rx: &mut Receiver<Incoming>, id: &str, needle: &str) -> String {
    let mut seen = Vec::new();
    wait_for(rx, needle, |event, payload| {
        if matches!(event, Event::Output { id: got, .. } if got == id) {
            seen.extend_from_slice(payload);
        }
        String::from_utf8_lossy(&seen).contains(needle)
    })
    .await;
    String::from_utf8_lossy(&seen).into_owned()
}

/// The daemon's `list-reply`.
async fn list_sessions(client: &PtydClient, rx: &mut Receiver<Incoming>) -> Vec<SessionInfo> {
    client.send(&Request::List, &[]).expect("list");
    match wait_for(rx, "list-reply", |e, _| {
        matches!(e, Event::ListReply { .. })
    })
    .await
    {
        Event::ListReply { sessions } => sessions,
        _ => unreachable!("wait_for returned another event"),
    }
}

/// Subscribes to terminal `id` with everything its replay buffer holds.
fn subscribe(client: &PtydClient, id: &str) {
    let request = Request::Subscribe {
        id: id.into(),
        replay: true,
        from: None,
    };
    client.send(&request, &[]).expect("subscribe");
}

/// Types `line` into terminal `id`.
fn type_line(client: &PtydClient, id: &str, line: &str) {
    client
        .send(&Request::Input { id: id.into() }, line.as_bytes())
        .expect("input");
}

async fn shell(client: &PtydClient, rx: &mut Receiver<Incoming>, id: &str) -> u32 {
    client.send(&open(id, "sh", &[]), &[]).expect("open");
    let Event::OpenOk { pid, .. } =
        wait_for(rx, "open-ok", |e, _| matches!(e, Event::OpenOk { .. })).await
    else {
        unreachable!()
    };
    subscribe(client, id);
    pid
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[tokio::test]
async fn spawn_sh_echo_and_read_the_output() {
    let daemon = start_daemon();
    assert_eq!(mode(&daemon.socket), 0o600);
    assert_eq!(mode(daemon.socket.parent().expect("run dir")), 0o700);
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    assert_eq!(client.daemon_pid, daemon.child.id());
    shell(&client, &mut rx, "s1").await;
    type_line(&client, "s1", "echo tether-$((40+2))\n");
    wait_output(&mut rx, "s1", "tether-42").await;
}

#[tokio::test]
async fn resize_reaches_the_terminal() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    shell(&client, &mut rx, "s1").await;
    client
        .send(
            &Request::Resize {
                id: "s1".into(),
                cols: 132,
                rows: 43,
            },
            &[],
        )
        .expect("resize");
    type_line(&client, "s1", "stty size\n");
    wait_output(&mut rx, "s1", "43 132").await;
    let sessions = list_sessions(&client, &mut rx).await;
    assert_eq!((sessions[0].cols, sessions[0].rows), (132, 43));
}

#[tokio::test]
async fn close_signals_the_shell_and_reports_its_exit() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let pid = shell(&client, &mut rx, "s1").await;
    client
        .send(
            &Request::Close {
                id: "s1".into(),
                signal: Some("SIGKILL".into()),
            },
            &[],
        )
        .expect("close");
    // `closed` answers the request, `exit` comes from the shell's end: either may come first.
    let (mut closed, mut exit) = (false, None);
    wait_for(&mut rx, "closed and exit", |e, _| {
        match e {
            Event::Closed { id } if id == "s1" => closed = true,
            Event::Exit { .. } => exit = Some(e.clone()),
            _ => {}
        }
        closed && exit.is_some()
    })
    .await;
    let exit = exit.expect("exit");
    assert!(
        matches!(exit, Event::Exit { ref signal, .. } if signal.is_some()),
        "{exit:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err(),
        "shell {pid} still alive"
    );
    client.send(&Request::List, &[]).expect("list");
    let list = wait_for(&mut rx, "list-reply", |e, _| {
        matches!(e, Event::ListReply { .. })
    })
    .await;
    assert_eq!(list, Event::ListReply { sessions: vec![] });
}

#[tokio::test]
async fn a_shell_exiting_by_itself_reports_its_code() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    client
        .send(&open("s1", "sh", &["-c", "exit 7"]), &[])
        .expect("open");
    subscribe(&client, "s1");
    let exit = wait_for(&mut rx, "exit", |e, _| matches!(e, Event::Exit { .. })).await;
    assert_eq!(
        exit,
        Event::Exit {
            id: "s1".into(),
            code: Some(7),
            signal: None
        }
    );
}

/// Sends raw bytes as a fresh client after a valid hello; returns the first event and whether the socket then closed.
async fn send_garbage(socket: &Path, hello: bool, bytes: &[u8]) -> (Option<Event>, bool) {
    let mut stream = UnixStream::connect(socket).await.expect("connect");
    if hello {
        stream
            .write_all(&encode_message(&Request::Hello { protocols: vec![1] }, &[]))
            .await
            .expect("hello");
        read_frame(&mut stream).await.expect("hello-ack");
    }
    stream.write_all(bytes).await.expect("write");
    let _ = stream.shutdown().await;
    let first = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut stream))
        .await
        .expect("answer in time");
    let event = first
        .ok()
        .and_then(|f| serde_json::from_slice(&f.json).ok());
    let closed = matches!(
        tokio::time::timeout(Duration::from_secs(5), read_frame(&mut stream)).await,
        Ok(Err(_))
    );
    (event, closed)
}

fn is_error(event: &Option<Event>, code: &str) -> bool {
    matches!(event, Some(Event::Error { code: c, .. }) if c.as_str() == code)
}

#[tokio::test]
async fn garbage_closes_one_client_and_the_daemon_and_other_sessions_go_on() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    shell(&client, &mut rx, "s1").await;

    let oversized = (9u32 * 1024 * 1024).to_be_bytes();
    let bad_json = raw_frame(b"{not json", b"");
    let unknown_type = raw_frame(br#"{"type":"format-disk"}"#, b"");
    let mut inconsistent = 8u32.to_be_bytes().to_vec();
    inconsistent.extend_from_slice(&1000u32.to_be_bytes());
    inconsistent.extend_from_slice(b"abcd");
    let truncated = &raw_frame(br#"{"type":"list"}"#, b"")[..10];
    for (name, bytes) in [
        ("oversized", &oversized[..]),
        ("bad json", &bad_json[..]),
        ("unknown type", &unknown_type[..]),
        ("inconsistent lengths", &inconsistent[..]),
        ("truncated", truncated),
    ] {
        let (event, closed) = send_garbage(&daemon.socket, true, bytes).await;
        assert!(is_error(&event, "EPROTO"), "{name}: {event:?}");
        assert!(closed, "{name}: the client should have been closed");
    }
    let (event, closed) =
        send_garbage(&daemon.socket, false, &encode_message(&Request::List, &[])).await;
    assert!(is_error(&event, "EPROTO") && closed, "no hello: {event:?}");
    let (event, closed) = send_garbage(
        &daemon.socket,
        false,
        &encode_message(
            &Request::Hello {
                protocols: vec![99],
            },
            &[],
        ),
    )
    .await;
    assert!(
        is_error(&event, "EVERSION") && closed,
        "wrong version: {event:?}"
    );

    // The daemon and the first client's session are untouched.
    type_line(&client, "s1", "echo still-$((2+2))\n");
    wait_output(&mut rx, "s1", "still-4").await;
    assert!(PtydClient::connect(&daemon.socket).await.is_ok());
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("ptyd.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("stale"));
    assert!(socket.exists());
    let live = start_daemon();
    let second = Command::new(env!("CARGO_BIN_EXE_tether-ptyd"))
        .arg("--socket")
        .arg(&live.socket)
        .output()
        .expect("run");
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already serving"));
    let mut stale = Command::new(env!("CARGO_BIN_EXE_tether-ptyd"))
        .arg("--socket")
        .arg(&socket)
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(10);
    while PtydClient::connect(&socket).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "ptyd did not take over the stale socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stale.kill();
    let _ = stale.wait();
}

#[tokio::test]
async fn subscribing_after_the_shell_ended_still_reports_its_exit() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    client
        .send(&open("gone", "sh", &["-c", "echo bye; exit 3"]), &[])
        .expect("open");
    wait_for(&mut rx, "open-ok", |e, _| matches!(e, Event::OpenOk { .. })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    subscribe(&client, "gone");
    let exit = wait_for(&mut rx, "exit", |e, _| matches!(e, Event::Exit { .. })).await;
    assert_eq!(
        exit,
        Event::Exit {
            id: "gone".into(),
            code: Some(3),
            signal: None
        }
    );
}
