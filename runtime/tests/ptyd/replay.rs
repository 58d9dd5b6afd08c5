//! Terminals outlive their clients; a subscriber picks up from any offset the replay
//! buffer holds, and is told of a gap exactly when it asks for bytes already dropped.

use std::path::Path;

use tether_contract::environment::REPLAY_BYTES_ENV;

use tether::ptyd::{Incoming, PtydClient};
use tether_contract::ptyd_protocol::{Event, Request, SessionInfo};
use tokio::sync::mpsc::Receiver;

use super::{
    list_sessions, open, shell, start_daemon, start_daemon_with, subscribe, type_line, wait_for,
    wait_output,
};

#[tokio::test]
async fn sessions_outlive_their_client_and_replay_scrollback() {
    let daemon = start_daemon();
    let (first, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let pid = shell(&first, &mut rx, "keep").await;
    type_line(&first, "keep", "echo before-$((6*7))\n");
    wait_output(&mut rx, "keep", "before-42").await;
    drop(first);
    drop(rx);

    let (second, mut rx) = PtydClient::connect(&daemon.socket)
        .await
        .expect("reconnect");
    let sessions = list_sessions(&second, &mut rx).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].pid, sessions[0].alive), (pid, true));
    subscribe(&second, "keep");
    wait_output(&mut rx, "keep", "before-42").await;
    type_line(&second, "keep", "echo after-$((5*5))\n");
    wait_output(&mut rx, "keep", "after-25").await;
}

/// Contract section 6, "Offsets and the replay buffer": `list-reply` carries both offsets,
/// `output` names its offset, `subscribe {from}` replays exactly from there, and a `from`
/// older than the buffer gets a `gap` naming exactly the bytes that are gone.
#[tokio::test]
async fn offsets_replay_from_any_offset_and_name_the_gap() {
    let daemon = start_daemon_with(&[(REPLAY_BYTES_ENV, "4096")]);
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    // 1,000 lines of 6 bytes ("N0000\r\n" is 7): more than the 4 KiB buffer.
    let printer = "i=1000; while [ $i -lt 2000 ]; do echo N$i; i=$((i+1)); done; echo END; cat";
    client
        .send(&open("o1", "sh", &["-c", printer]), &[])
        .expect("open");
    wait_for(&mut rx, "open-ok", |e, _| matches!(e, Event::OpenOk { .. })).await;
    subscribe(&client, "o1");
    wait_output(&mut rx, "o1", "END").await;
    type_line(&client, "o1", "typed\n");
    // The pty's echo, then cat's copy: both before counting.
    wait_output(&mut rx, "o1", "typed\r\ntyped\r\n").await;

    let written: String = (1000..2000)
        .map(|i| format!("N{i}\r\n"))
        .collect::<String>()
        + "END\r\n";
    let info = list_one(&client, &mut rx).await;
    // The input is echoed by the pty and again by cat.
    let end = written.len() as u64 + 2 * "typed\r\n".len() as u64;
    assert_eq!(
        (info.output_offset, info.input_offset),
        (end, 6),
        "{info:?}"
    );

    // From an offset still held: exactly the bytes from there.
    let (_second, mut rx2) = subscribe_from(&daemon.socket, "o1", end - 7).await;
    let event = wait_for(&mut rx2, "output", |e, _| matches!(e, Event::Output { .. })).await;
    assert_eq!(
        event,
        Event::Output {
            id: "o1".into(),
            offset: Some(end - 7)
        }
    );

    // From 0, long gone: a gap naming exactly the missing bytes, then the rest from its end.
    let (_third, mut rx3) = subscribe_from(&daemon.socket, "o1", 0).await;
    let gap = wait_for(&mut rx3, "gap", |e, _| matches!(e, Event::Gap { .. })).await;
    let Event::Gap { from, to, .. } = gap else {
        unreachable!()
    };
    assert_eq!(from, 0);
    assert!(to > 0 && end - to <= 4096, "gap 0..{to} with output {end}");
    let mut rest = Vec::new();
    let mut first_offset = None;
    wait_for(&mut rx3, "the replay", |e, payload| {
        if let Event::Output { offset, .. } = e {
            first_offset.get_or_insert(*offset);
            rest.extend_from_slice(payload);
        }
        rest.len() as u64 >= end - to
    })
    .await;
    assert_eq!(first_offset, Some(Some(to)));
    let all = written + "typed\r\ntyped\r\n";
    assert_eq!(String::from_utf8_lossy(&rest), &all[to as usize..]);
}

/// The one terminal a `list` names.
async fn list_one(client: &PtydClient, rx: &mut Receiver<Incoming>) -> SessionInfo {
    let mut sessions = list_sessions(client, rx).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions.remove(0)
}

/// A new client subscribed to `id` from output offset `from`.
async fn subscribe_from(socket: &Path, id: &str, from: u64) -> (PtydClient, Receiver<Incoming>) {
    let (client, rx) = PtydClient::connect(socket).await.expect("connect");
    client
        .send(
            &Request::Subscribe {
                id: id.into(),
                replay: false,
                from: Some(from),
            },
            &[],
        )
        .expect("subscribe from");
    (client, rx)
}
