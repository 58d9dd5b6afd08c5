//! Upgrading tether-ptyd in place (contract section 6): the same pid, the same shells,
//! every byte of output once; and every way it can be refused leaves the old daemon serving.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tether::ptyd::PtydClient;
use tether_contract::ptyd_protocol::{Event, Request};

use super::{list_sessions, open, start_daemon, subscribe, wait_for, wait_output, Daemon};

fn upgrade(path: &Path) -> Request {
    Request::Upgrade {
        path: path.display().to_string(),
    }
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn proc_exe(pid: u32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe")
}

/// A shell printing a numbered line every 10 ms, subscribed from the start.
async fn counting(
    daemon: &Daemon,
) -> (
    PtydClient,
    tokio::sync::mpsc::Receiver<tether::ptyd::Incoming>,
    u32,
) {
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let counter = "i=1; while [ $i -le 300 ]; do echo C$i; i=$((i+1)); sleep 0.01; done; echo FIN";
    client
        .send(&open("c1", "sh", &["-c", counter]), &[])
        .expect("open");
    let Event::OpenOk { pid, .. } =
        wait_for(&mut rx, "open-ok", |e, _| matches!(e, Event::OpenOk { .. })).await
    else {
        unreachable!()
    };
    subscribe(&client, "c1");
    wait_output(&mut rx, "c1", "C20\r\n").await;
    (client, rx, pid)
}

#[tokio::test]
async fn an_upgrade_keeps_the_pid_the_shells_and_every_byte() {
    let daemon = start_daemon();
    let (client, mut rx, shell) = counting(&daemon).await;
    // Everything seen before the upgrade, by offset.
    let mut seen = Vec::new();
    client
        .send(&upgrade(Path::new(env!("CARGO_BIN_EXE_tether-ptyd"))), &[])
        .expect("upgrade");
    // The old image drops every client at execve.
    while let Some((event, payload)) = rx.recv().await {
        if let Event::Output {
            offset: Some(offset),
            ..
        } = event
        {
            if offset as usize == seen.len() {
                seen.extend_from_slice(&payload);
            }
        }
        assert!(!matches!(event, Event::Error { .. }), "refused: {event:?}");
    }
    let (again, mut rx2) = PtydClient::connect(&daemon.socket)
        .await
        .expect("reconnect");
    assert_eq!(again.daemon_pid, daemon.child.id(), "not the same process");
    let sessions = list_sessions(&again, &mut rx2).await;
    assert_eq!((sessions[0].id.as_str(), sessions[0].pid), ("c1", shell));
    again
        .send(
            &Request::Subscribe {
                id: "c1".into(),
                replay: false,
                from: Some(seen.len() as u64),
            },
            &[],
        )
        .expect("subscribe from");
    let rest = wait_output(&mut rx2, "c1", "FIN\r\n").await;
    let all = String::from_utf8_lossy(&seen).into_owned() + &rest;
    let want: String = (1..=300).map(|i| format!("C{i}\r\n")).collect::<String>() + "FIN\r\n";
    assert_eq!(all, want, "bytes lost or repeated across the upgrade");
    assert!(!proc_exe(daemon.child.id())
        .to_string_lossy()
        .ends_with("(deleted)"));
}

#[tokio::test]
async fn every_refusal_leaves_the_old_daemon_serving() {
    let daemon = start_daemon();
    let (client, mut rx, _) = counting(&daemon).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let not_executable = dir.path().join("plain");
    std::fs::write(&not_executable, "data").expect("write");
    let cases = [
        (dir.path().join("missing"), "missing"),
        (not_executable, "not an executable"),
        (PathBuf::from("/bin/true"), "not a tether-ptyd"),
        (
            script(dir.path(), "older", "echo 'tether-ptyd state formats: 0'"),
            "cannot take these terminals over",
        ),
    ];
    for (path, why) in cases {
        client.send(&upgrade(&path), &[]).expect("upgrade");
        let event = wait_for(&mut rx, "EUPGRADE", |e, _| matches!(e, Event::Error { .. })).await;
        let Event::Error { code, message, .. } = event else {
            unreachable!()
        };
        assert_eq!(code.as_str(), "EUPGRADE");
        assert!(message.contains(why), "{path:?}: {message}");
    }
    // Still the same daemon, still counting.
    wait_output(&mut rx, "c1", "FIN\r\n").await;
}

#[tokio::test]
async fn a_new_binary_that_dies_after_execve_ends_the_daemon_and_says_why() {
    let daemon = start_daemon();
    let (client, mut rx, _) = counting(&daemon).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let crasher = script(
        dir.path(),
        "crasher",
        "[ \"$1\" = --state-formats ] && { echo 'tether-ptyd state formats: 1'; exit 0; }\necho 'crashed at start' >&2; exit 3",
    );
    client.send(&upgrade(&crasher), &[]).expect("upgrade");
    while rx.recv().await.is_some() {}
    let mut child = daemon;
    let status = tokio::task::spawn_blocking(move || {
        let status = child.child.wait();
        (status, child)
    })
    .await
    .expect("wait");
    assert_eq!(status.0.expect("status").code(), Some(3));
    let _ = Duration::ZERO;
}
