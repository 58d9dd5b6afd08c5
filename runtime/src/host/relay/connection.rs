//! One relay connection at work: a writer task that owns the sending half and a read
//! loop, so a relay that stops reading can neither grow this process's memory (the
//! queues are bounded and terminal output waits, which makes ptyd pause the pty) nor
//! keep the silence timer from running. A write that makes no progress for 30 s ends
//! the connection; so does a relay message over 16 MiB (close code 1009).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::host::hub::{Hub, RelayOut};
use crate::host::terminals;
use tether_contract::relay_protocol::{
    decode_binary, parse_control, Control, CLOSE_DRAIN, KIND_INPUT, TOKEN_EXPIRED,
};

/// A WebSocket to the relay.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Nothing heard from the relay for this long: the connection is dead.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(75);
/// A write that makes no progress for this long ends the connection.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(30);
/// Largest relay message accepted (contract section 5).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Terminal output frames queued for the relay before output waits.
pub const DATA_QUEUE: usize = 64;
/// Control messages queued for the relay; beyond, new ones are dropped (a relay that
/// floods pings while reading nothing gets no pongs).
pub const CONTROL_QUEUE: usize = 256;

/// Messages written before one flush.
const BURST: usize = 64;

/// The WebSocket settings for the relay connection.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// How a connection ended.
pub enum Ended {
    /// The relay said `tokenExpired`: the connection stays open until its successor is up.
    TokenExpired(Box<Draining>),
    /// The relay asked to drain (close code 4001).
    Drain,
    /// Lost, for the reason given.
    Lost(String),
}

/// A connection kept open while its successor connects, then closed.
pub struct Draining {
    close: oneshot::Sender<CloseFrame>,
    writer: tokio::task::JoinHandle<()>,
    _stream: SplitStream<Ws>,
}

impl Draining {
    /// Closes it with `code` (bounded: a stalled relay does not hold this up).
    pub async fn close(self, code: CloseCode, reason: &str) {
        let _ = self.close.send(CloseFrame {
            code,
            reason: reason.to_string().into(),
        });
        let _ = tokio::time::timeout(Duration::from_secs(2), self.writer).await;
    }
}

/// Serves `ws` until it ends: relay messages to the hub, hub messages to the relay.
pub async fn serve(ws: Ws, hub: &Arc<Hub>) -> Ended {
    let (sink, mut stream) = ws.split();
    let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (close_tx, close_rx) = oneshot::channel();
    let (failed_tx, mut failed_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, data_rx, control_rx, close_rx, failed_tx));
    hub.set_relay(Some(RelayOut {
        data: data_tx,
        control: control_tx,
    }));
    let silence = tokio::time::sleep(SILENCE_LIMIT);
    tokio::pin!(silence);
    let resume_wait = tokio::time::sleep(crate::host::streams::RESUME_WAIT);
    tokio::pin!(resume_wait);
    let mut resume_waiting = true;
    let mut acks = tokio::time::interval(crate::host::streams::ACK_EVERY);
    let mut close_tx = Some(close_tx);
    let ended = loop {
        tokio::select! {
            failure = &mut failed_rx => {
                break Ended::Lost(failure.unwrap_or_else(|_| "the writer stopped".into()));
            }
            _ = &mut silence => break Ended::Lost("nothing heard from the relay for 75 s".into()),
            _ = &mut resume_wait, if resume_waiting => {
                resume_waiting = false;
                hub.resume_timed_out();
            }
            _ = acks.tick() => hub.flush_acks(),
            incoming = stream.next() => {
                silence.as_mut().reset(tokio::time::Instant::now() + SILENCE_LIMIT);
                match incoming {
                    None => break Ended::Lost("the relay closed the connection".into()),
                    Some(Err(WsError::Capacity(e))) => {
                        if let Some(close) = close_tx.take() {
                            let _ = close.send(CloseFrame { code: CloseCode::Size, reason: "message too big".into() });
                        }
                        break Ended::Lost(format!("the relay sent a message over 16 MiB ({e})"));
                    }
                    Some(Err(e)) => break Ended::Lost(e.to_string()),
                    Some(Ok(Message::Close(frame))) => {
                        if frame.as_ref().is_some_and(|f| u16::from(f.code) == CLOSE_DRAIN) {
                            break Ended::Drain;
                        }
                        break Ended::Lost(format!("closed by the relay ({})", frame.map(|f| f.code.to_string()).unwrap_or_default()));
                    }
                    Some(Ok(Message::Text(text))) => match on_text(hub, text.as_str()) {
                        Heard::TokenExpired => {
                            hub.set_relay(None);
                            if let Some(close) = close_tx.take() {
                                return Ended::TokenExpired(Box::new(Draining { close, writer, _stream: stream }));
                            }
                            break Ended::Lost("token expired while closing".into());
                        }
                        Heard::Resumed => resume_waiting = false,
                        // Buffered messages are read without waiting: let the tasks that
                        // answer them (ptyd's events) run in between.
                        Heard::Answered => tokio::task::yield_now().await,
                        Heard::Nothing => {}
                    },
                    Some(Ok(Message::Binary(bytes))) => on_binary(hub, &bytes),
                    Some(Ok(_)) => {}
                }
            }
        }
    };
    hub.set_relay(None);
    if let Some(close) = close_tx {
        let _ = close.send(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    ended
}

/// What a text message from the relay asked of the connection.
enum Heard {
    /// Nothing more (answered at once, or ignored).
    Nothing,
    /// `resume`: the terminals follow the relay's offsets.
    Resumed,
    /// A terminal request, passed on to ptyd.
    Answered,
    /// `tokenExpired`: the connection must be replaced.
    TokenExpired,
}

/// Acts on one control message from the relay.
fn on_text(hub: &Arc<Hub>, text: &str) -> Heard {
    match parse_control(text) {
        Ok(Some(Control::Error {
            session_id: None,
            error,
        })) if error == TOKEN_EXPIRED => Heard::TokenExpired,
        Ok(Some(Control::Ping)) => {
            hub.to_relay(&Control::Pong);
            Heard::Nothing
        }
        Ok(Some(Control::Resume { sessions })) => {
            hub.resume(sessions);
            Heard::Resumed
        }
        Ok(Some(control)) => {
            terminals::from_relay(hub, control);
            Heard::Answered
        }
        Ok(None) => {
            tracing::debug!("ignoring an unknown relay message type");
            Heard::Nothing
        }
        Err(e) => {
            tracing::warn!("dropping a malformed relay message: {e}");
            Heard::Nothing
        }
    }
}

/// Passes one binary frame from the relay (a terminal's input) on.
fn on_binary(hub: &Arc<Hub>, bytes: &[u8]) {
    match decode_binary(bytes) {
        Some((KIND_INPUT, session_id, payload)) => terminals::input(hub, session_id, payload),
        Some((kind, ..)) => tracing::debug!(kind, "ignoring a binary frame of unknown kind"),
        None => tracing::warn!("dropping a malformed binary frame"),
    }
}

/// Sends control messages first, then terminal output, flushing after each burst; every
/// write has [`WRITE_STALL_LIMIT`] to make progress.
async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    mut data: mpsc::Receiver<Message>,
    mut control: mpsc::Receiver<Message>,
    mut close: oneshot::Receiver<CloseFrame>,
    failed: oneshot::Sender<String>,
) {
    loop {
        let first = tokio::select! {
            biased;
            frame = &mut close => {
                if let Ok(frame) = frame {
                    let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(Message::Close(Some(frame)))).await;
                }
                return;
            }
            Some(message) = control.recv() => message,
            Some(message) = data.recv() => message,
            else => return,
        };
        let burst = async {
            sink.feed(first).await?;
            for _ in 1..BURST {
                let Ok(next) = control.try_recv().or_else(|_| data.try_recv()) else {
                    break;
                };
                sink.feed(next).await?;
            }
            sink.flush().await
        };
        match tokio::time::timeout(WRITE_STALL_LIMIT, burst).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = failed.send(e.to_string());
                return;
            }
            Err(_) => {
                let _ = failed.send("a write to the relay made no progress for 30 s".into());
                return;
            }
        }
    }
}
