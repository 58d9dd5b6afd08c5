//! One terminal, one request or one client can never hurt the others (contract sections
//! 5 and 6): credentials stay out of shells, hostile ids are refused, a terminal that
//! never reads its input blocks only itself.

use tether_contract::environment::API_KEY_ENV;
use tether_contract::ptyd_protocol::{Event, Request};

use super::{
    open, shell, start_daemon, start_daemon_with, subscribe, type_line, wait_for, wait_output,
};
use tether::ptyd::PtydClient;

#[tokio::test]
async fn shells_get_the_users_environment_without_any_credential() {
    let daemon = start_daemon_with(&[
        (API_KEY_ENV, "sk_live_must_not_leak"),
        ("TETHER_E2E_SESSION_TOKEN", "session_must_not_leak"),
        ("TETHER_VISIBLE_SETTING", "passes-through"),
    ]);
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    let mut request = open("env", "sh", &["-c", "env; echo env-done"]);
    if let Request::Open { env, .. } = &mut request {
        // A remote user cannot put one back through `open` either.
        env.insert(API_KEY_ENV.into(), "sk_live_smuggled".into());
    }
    client.send(&request, &[]).expect("open");
    subscribe(&client, "env");
    let seen = wait_output(&mut rx, "env", "env-done").await;
    assert!(
        seen.contains("TETHER_VISIBLE_SETTING=passes-through"),
        "{seen}"
    );
    for secret in [
        "sk_live_",
        "session_must_not_leak",
        API_KEY_ENV,
        "TETHER_E2E_SESSION_TOKEN",
    ] {
        assert!(
            !seen.contains(secret),
            "{secret} reached the shell:\n{seen}"
        );
    }
}

#[tokio::test]
async fn hostile_session_ids_are_refused_and_the_daemon_goes_on() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    shell(&client, &mut rx, "s1").await;
    let long = "x".repeat(300);
    for id in ["a\0b", "\u{1b}[2J", "", long.as_str(), "a b", "../../etc"] {
        client.send(&open(id, "sh", &[]), &[]).expect("open");
        let answer = wait_for(&mut rx, "an answer to a bad id", |e, _| {
            matches!(e, Event::Error { .. } | Event::OpenOk { .. })
        })
        .await;
        assert!(
            matches!(&answer, Event::Error { code, id: None, .. } if code.as_str() == "EINVAL"),
            "{id:?}: {answer:?}"
        );
    }
    type_line(&client, "s1", "echo alive-$((3*3))\n");
    wait_output(&mut rx, "s1", "alive-9").await;
}

#[tokio::test]
async fn a_terminal_that_never_reads_blocks_only_itself() {
    let daemon = start_daemon();
    let (client, mut rx) = PtydClient::connect(&daemon.socket).await.expect("connect");
    client
        .send(&open("stuck", "sleep", &["60"]), &[])
        .expect("open");
    wait_for(&mut rx, "open-ok", |e, _| matches!(e, Event::OpenOk { .. })).await;
    shell(&client, &mut rx, "live").await;
    // 2 MiB into a program that never reads: the pty fills, then the 1 MiB queue.
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..32 {
        client
            .send(&Request::Input { id: "stuck".into() }, &chunk)
            .expect("input");
    }
    wait_for(&mut rx, "EFULL for the stuck terminal", |e, _| {
        matches!(e, Event::Error { code, id: Some(id), .. } if code.as_str() == "EFULL" && id == "stuck")
    })
    .await;
    type_line(&client, "live", "echo live-$((6+1))\n");
    wait_output(&mut rx, "live", "live-7").await;
}
