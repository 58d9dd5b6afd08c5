//! The ptyd wire frame: `[u32 BE total_len][u32 BE json_len][JSON][payload]`, where
//! `total_len` counts everything after itself and is at most 8 MiB.

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest `total_len` accepted.
pub const MAX_FRAME: usize = 8 * 1024 * 1024;

/// One decoded frame: a JSON header and raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The JSON part.
    pub json: Vec<u8>,
    /// The payload: terminal bytes, never inside the JSON.
    pub payload: Vec<u8>,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream between frames.
    #[error("connection closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("truncated frame")]
    Truncated,
    /// `total_len` is over the limit.
    #[error("frame of {0} bytes is over the 8 MiB limit")]
    TooLarge(usize),
    /// `json_len` does not fit inside `total_len`.
    #[error("json_len {json} does not fit in a frame of {total} bytes")]
    BadLength {
        /// The JSON length the header claims.
        json: usize,
        /// The frame length the header claims.
        total: usize,
    },
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes a frame from a JSON header and a payload.
pub fn encode(json: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 4 + json.len() + payload.len();
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(payload);
    out
}

/// Reads one frame, refusing oversized or inconsistent ones before allocating for them.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let total = u32::from_be_bytes(len) as usize;
    if total > MAX_FRAME {
        return Err(FrameError::TooLarge(total));
    }
    if total < 4 {
        return Err(FrameError::BadLength { json: 0, total });
    }
    let mut body = vec![0u8; total];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    let json_len = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
    if json_len > total - 4 {
        return Err(FrameError::BadLength {
            json: json_len,
            total,
        });
    }
    let payload = body.split_off(4 + json_len);
    body.drain(..4);
    Ok(Frame {
        json: body,
        payload,
    })
}

/// Encodes a ptyd message and its payload as one frame.
pub fn encode_message<T: Serialize>(message: &T, payload: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    encode(&json, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip() {
        let bytes = encode(br#"{"type":"input","id":"a"}"#, b"ls\n");
        let frame = read_frame(&mut bytes.as_slice()).await.expect("frame");
        assert_eq!(frame.json, br#"{"type":"input","id":"a"}"#);
        assert_eq!(frame.payload, b"ls\n");
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_before_reading_them() {
        let bytes = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(matches!(
            read_frame(&mut bytes.as_slice()).await,
            Err(FrameError::TooLarge(_))
        ));
    }

    #[tokio::test]
    async fn truncated_and_inconsistent_frames_are_errors() {
        let mut bytes = encode(b"{}", b"abc");
        bytes.truncate(bytes.len() - 1);
        assert!(matches!(
            read_frame(&mut bytes.as_slice()).await,
            Err(FrameError::Truncated)
        ));
        let mut bad = 8u32.to_be_bytes().to_vec();
        bad.extend_from_slice(&100u32.to_be_bytes());
        bad.extend_from_slice(b"abcd");
        assert!(matches!(
            read_frame(&mut bad.as_slice()).await,
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            read_frame(&mut [0u8, 0, 0, 1].as_slice()).await,
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            read_frame(&mut [].as_slice()).await,
            Err(FrameError::Closed)
        ));
    }
}
