//! A terminal's replay buffer (contract section 6): the last bytes of its output, each
//! at its absolute offset (bytes read from the pty since the terminal opened), so a
//! client can resume from any offset still held and is told exactly which bytes are gone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Bytes kept per session unless `TETHER_REPLAY_BYTES` says otherwise (contract: ≥ 1 MiB).
pub const DEFAULT_REPLAY_BYTES: usize = 1024 * 1024;
/// The most all sessions' buffers hold together.
pub const TOTAL_REPLAY_BYTES: usize = 256 * 1024 * 1024;
/// The least a buffer keeps when many sessions share [`TOTAL_REPLAY_BYTES`].
const FLOOR: usize = 64 * 1024;

/// Buffers alive, for each one's fair share of the total.
static BUFFERS: AtomicUsize = AtomicUsize::new(0);

/// The per-session size: `TETHER_REPLAY_BYTES`, else 1 MiB.
pub fn replay_bytes() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var(tether_contract::environment::REPLAY_BYTES_ENV)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map(|n| n.max(4096))
            .unwrap_or(DEFAULT_REPLAY_BYTES)
    })
}

/// What a client resuming at some offset gets.
#[derive(Debug, PartialEq, Eq)]
pub struct Resumed {
    /// `from..to` are gone, when the client asked for bytes older than the buffer.
    pub gap: Option<(u64, u64)>,
    /// The offset of `bytes`' first byte.
    pub offset: u64,
    /// The bytes held from there on.
    pub bytes: Vec<u8>,
}

/// The newest output of one terminal, with its offsets.
#[derive(Debug)]
pub struct ReplayBuffer {
    bytes: VecDeque<u8>,
    /// Offset of `bytes[0]`.
    start: u64,
    per_session: usize,
}

impl ReplayBuffer {
    /// An empty buffer at offset 0 keeping at most `per_session` bytes (less when many
    /// sessions share the 256 MiB total).
    pub fn new(per_session: usize) -> Self {
        BUFFERS.fetch_add(1, Ordering::Relaxed);
        ReplayBuffer {
            bytes: VecDeque::new(),
            start: 0,
            per_session,
        }
    }

    /// A buffer holding `bytes` from offset `start` on (a daemon restored after an upgrade).
    pub fn restored(per_session: usize, start: u64, bytes: &[u8]) -> Self {
        let mut buffer = ReplayBuffer::new(per_session);
        buffer.start = start;
        buffer.bytes.extend(bytes);
        buffer
    }

    /// The offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The offset after the newest byte: every byte the terminal has produced.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// What this buffer may hold now: its own size, or its share of the total when the
    /// sessions together would pass it (the largest buffers lose their oldest bytes first).
    fn capacity(&self) -> usize {
        let sessions = BUFFERS.load(Ordering::Relaxed).max(1);
        self.per_session
            .min((TOTAL_REPLAY_BYTES / sessions).max(FLOOR))
    }

    /// Appends output, dropping the oldest bytes past the capacity first, so the buffer
    /// never holds (nor allocates for) more than its capacity.
    pub fn push(&mut self, mut chunk: &[u8]) {
        let capacity = self.capacity();
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(capacity);
        if overflow > 0 {
            let from_buffer = overflow.min(self.bytes.len());
            self.bytes.drain(..from_buffer);
            // What is left over comes off the chunk's head: never stored, still counted.
            let from_chunk = overflow - from_buffer;
            chunk = &chunk[from_chunk..];
            self.start += overflow as u64;
        }
        self.bytes.extend(chunk);
    }

    /// Everything held, oldest first.
    pub fn snapshot(&self) -> Vec<u8> {
        let (a, b) = self.bytes.as_slices();
        [a, b].concat()
    }

    /// The bytes from absolute offset `from` on, and the gap before them if `from` is older
    /// than the buffer. An offset past the end resumes at the end.
    pub fn from(&self, from: u64) -> Resumed {
        let from = from.min(self.end());
        let (gap, at) = if from < self.start {
            (Some((from, self.start)), self.start)
        } else {
            (None, from)
        };
        let skip = (at - self.start) as usize;
        let bytes = self.bytes.range(skip..).copied().collect();
        Resumed {
            gap,
            offset: at,
            bytes,
        }
    }
}

impl Drop for ReplayBuffer {
    fn drop(&mut self) {
        BUFFERS.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_at_their_offsets() {
        let mut buffer = ReplayBuffer::new(8);
        buffer.push(b"hello ");
        buffer.push(b"world");
        assert_eq!(buffer.snapshot(), b"lo world");
        assert_eq!(buffer.end(), 11);
        let resumed = buffer.from(5);
        assert_eq!(resumed.gap, None);
        assert_eq!(
            (resumed.offset, resumed.bytes.as_slice()),
            (5, &b" world"[..])
        );
    }

    #[test]
    fn the_buffer_never_grows_past_its_capacity() {
        let mut buffer = ReplayBuffer::new(4096);
        for _ in 0..100 {
            buffer.push(&[7u8; 1000]);
            assert!(buffer.bytes.len() <= 4096);
        }
        assert!(
            buffer.bytes.capacity() <= 8192,
            "{}",
            buffer.bytes.capacity()
        );
        assert_eq!(buffer.end(), 100_000);
        buffer.push(&[1u8; 10_000]);
        assert_eq!((buffer.start(), buffer.end()), (110_000 - 4096, 110_000));
        assert_eq!(buffer.snapshot(), vec![1u8; 4096]);
    }

    #[test]
    fn resuming_before_the_buffer_names_the_gap_exactly() {
        let mut buffer = ReplayBuffer::new(8);
        buffer.push(b"0123456789ab");
        assert_eq!(
            buffer.from(1),
            Resumed {
                gap: Some((1, 4)),
                offset: 4,
                bytes: b"456789ab".to_vec()
            }
        );
        assert_eq!(buffer.from(12).bytes, b"");
        assert_eq!(buffer.from(99).offset, 12);
    }
}
