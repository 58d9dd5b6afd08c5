//! What a hostile relay or local client cannot do to the host service (contract section
//! 5): a relay message over 16 MiB ends that connection with 1009 and the host redials;
//! idle connections to the health port are capped.

use std::time::Duration;

use futures_util::StreamExt;
use tether::host::read_info;
use tether_contract::relay_protocol::{encode_binary, KIND_INPUT};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_message_over_16_mib_closes_with_1009_and_the_host_redials() {
    let (_api, mut relay, _host, mut conn) = connected_host().await;
    let frame = encode_binary(KIND_INPUT, "t1", &vec![b'x'; 17 * 1024 * 1024]).expect("frame");
    // The host may refuse it from the frame header and close before all of it is sent.
    let _ = futures_util::SinkExt::send(&mut conn.ws, Message::binary(frame)).await;
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match conn.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the host closed the connection");
    // The close frame can be lost to the reset of a socket closed with unread data.
    assert!(code.is_none() || code == Some(CloseCode::Size), "{code:?}");
    let mut again = relay.accept().await;
    again.expect_type("hello").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_the_health_port_are_capped() {
    let (_api, _relay, host, _conn) = connected_host().await;
    let info = read_info(&host.paths()).expect("state file");
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", info.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    let idle: Vec<_> = (0..100)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", info.port)).expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = fds().saturating_sub(before);
    assert!(grown <= 40, "100 idle connections took {grown} descriptors");
    drop(idle);
    assert_eq!(host.health().await["status"], "ok");
}
