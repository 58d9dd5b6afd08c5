//! An async client of `tether-ptyd`: sends requests, delivers events in order.

use std::path::Path;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

use super::frame::encode_message;
use super::frame::read_frame;
use tether_contract::ptyd_protocol::{Event, Request, PROTOCOL};

/// Events read from the daemon but not yet handled, at most.
pub const EVENTS_IN_FLIGHT: usize = 64;

/// An event from the daemon with its payload.
pub type Incoming = (Event, Vec<u8>);

/// The sending half of a connection to the daemon.
#[derive(Debug, Clone)]
pub struct PtydClient {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// The daemon's process id, from `hello-ack`.
    pub daemon_pid: u32,
    /// The daemon's version, from `hello-ack`.
    pub daemon_version: String,
}

impl PtydClient {
    /// Connects, says hello, and returns the client and the stream of events that follow.
    pub async fn connect(socket: &Path) -> anyhow::Result<(PtydClient, mpsc::Receiver<Incoming>)> {
        let stream = UnixStream::connect(socket)
            .await
            .with_context(|| format!("cannot connect to tether-ptyd at {}", socket.display()))?;
        let (reader, mut writer) = stream.into_split();
        // Buffered: a frame is two reads (length, then body), one syscall for many frames.
        let mut reader = tokio::io::BufReader::with_capacity(64 * 1024, reader);
        writer
            .write_all(&encode_message(
                &Request::Hello {
                    protocols: vec![PROTOCOL],
                },
                &[],
            ))
            .await?;
        let frame = read_frame(&mut reader)
            .await
            .context("tether-ptyd closed the connection during hello")?;
        let (daemon_pid, daemon_version) = match serde_json::from_slice::<Event>(&frame.json)? {
            Event::HelloAck {
                daemon_pid,
                daemon_version,
                ..
            } => (daemon_pid, daemon_version),
            Event::Error { code, message, .. } => {
                bail!("tether-ptyd refused hello: {code}: {message}")
            }
            other => bail!("tether-ptyd answered hello with {other:?}"),
        };

        let (tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(frame) = out_rx.recv().await {
                if writer.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        // Bounded: while the consumer is slow, this stops reading the socket, the daemon's
        // queue for us grows, and the daemon pauses the pty (contract section 6).
        let (in_tx, in_rx) = mpsc::channel(EVENTS_IN_FLIGHT);
        tokio::spawn(async move {
            while let Ok(frame) = read_frame(&mut reader).await {
                match serde_json::from_slice::<Event>(&frame.json) {
                    Ok(event) => {
                        if in_tx.send((event, frame.payload)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::warn!("tether-ptyd sent a malformed event: {e}"),
                }
            }
        });
        Ok((
            PtydClient {
                tx,
                daemon_pid,
                daemon_version,
            },
            in_rx,
        ))
    }

    /// Sends a request with a payload.
    pub fn send(&self, request: &Request, payload: &[u8]) -> anyhow::Result<()> {
        self.tx
            .send(encode_message(request, payload))
            .map_err(|_| anyhow::anyhow!("the connection to tether-ptyd is closed"))
    }
}
