//! A terminal's life (contract section 6): exit when the child ends, not when the pty
//! closes; the signal that ended it; `close` ends the whole process group; an exited
//! terminal is forgotten once its exit was delivered.

use std::time::Duration;

use tether::ptyd::PtydClient;
use tether_contract::ptyd_protocol::{ErrorCode, Event, Request};

use super::{list_sessions, open, start_daemon, subscribe, wait_for, wait_output};

async fn open_and_subscribe(client: &PtydClient, id: &str, script: &str) {
    client
        .send(&open(id, "sh", &["-c", script]), &[])
        .expect("open");
    subscribe(client, id);
}

async fn list(
    client: &PtydClient,
    rx: &mut tokio::sync::mpsc::Receiver<tether::ptyd::Incoming>,
) -> Vec<String> {
    list_sessions(client, rx)
        .await
        .into_iter()
        .map(|s| s.id)
        .collect()
}

#[tokio::test]
async fn exit_comes_when_the_child_ends_even_while_a_background_job_holds_the_pty() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    // The job ignores the hangup the shell's exit sends, so it keeps the pty open.
    open_and_subscribe(&client, "bg", "trap '' HUP; sleep 30 & exit 0").await;
    // wait_for's 10 s ceiling is well under the 30 s the pty stays open.
    let exit = wait_for(&mut rx, "exit", |e, _| matches!(e, Event::Exit { .. })).await;
    assert_eq!(
        exit,
        Event::Exit {
            id: "bg".into(),
            code: Some(0),
            signal: None
        }
    );
}

#[tokio::test]
async fn a_child_killed_by_a_signal_reports_minus_one_and_the_signal() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    open_and_subscribe(&client, "killed", "kill -TERM $$").await;
    let exit = wait_for(&mut rx, "exit", |e, _| matches!(e, Event::Exit { .. })).await;
    assert_eq!(
        exit,
        Event::Exit {
            id: "killed".into(),
            code: Some(-1),
            signal: Some("SIGTERM".into())
        }
    );
}

#[tokio::test]
async fn close_ends_the_whole_group_even_a_shell_that_ignores_hangups() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    open_and_subscribe(
        &client,
        "stubborn",
        "trap '' HUP; sleep 1000 & echo job-$!; wait",
    )
    .await;
    let seen = wait_output(&mut rx, "stubborn", "job-").await;
    let job: i32 = seen
        .split("job-")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no job pid in {seen:?}"));
    client
        .send(
            &Request::Close {
                id: "stubborn".into(),
                signal: None,
            },
            &[],
        )
        .expect("close");
    // SIGHUP is ignored; SIGKILL follows after the 5 s grace.
    let exit = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Some((Event::Exit { signal, .. }, _)) = rx.recv().await {
                return signal;
            }
        }
    })
    .await
    .expect("exit after SIGKILL");
    assert_eq!(exit.as_deref(), Some("SIGKILL"));
    let job = nix::unistd::Pid::from_raw(job);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while nix::sys::signal::kill(job, None).is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "background job {job} survived close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_exited_terminal_is_forgotten_once_its_exit_was_delivered() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    open_and_subscribe(&client, "short", "exit 0").await;
    wait_for(&mut rx, "exit", |e, _| matches!(e, Event::Exit { .. })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ids = list(&client, &mut rx).await;
        if ids.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed: {ids:?}"
        );
    }
}

#[tokio::test]
async fn closing_an_unknown_terminal_or_with_an_unknown_signal_is_refused() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let close = |id: &str, signal: Option<&str>| Request::Close {
        id: id.into(),
        signal: signal.map(str::to_string),
    };
    client.send(&close("nope", None), &[]).expect("close");
    wait_for(&mut rx, "ENOENT for nope", |e, _| {
        matches!(e, Event::Error { code: ErrorCode::NoSuchTerminal, id: Some(id), .. } if id == "nope")
    })
    .await;
    open_and_subscribe(&client, "alive", "sleep 30").await;
    client
        .send(&close("alive", Some("SIGNOPE")), &[])
        .expect("close");
    wait_for(&mut rx, "EPROTO for the signal", |e, _| {
        matches!(e, Event::Error { code: ErrorCode::Protocol, id: Some(id), .. } if id == "alive")
    })
    .await;
    // Refused, not closed: the terminal is still listed.
    let listed = list(&client, &mut rx).await;
    assert_eq!(listed, vec!["alive".to_string()]);
}
