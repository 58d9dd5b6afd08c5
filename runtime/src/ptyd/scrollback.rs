//! A bounded in-memory buffer of a terminal's most recent output.

use std::collections::VecDeque;

/// Bytes kept per session for replay (the contract asks for at least 64 KiB).
pub const SCROLLBACK_BYTES: usize = 256 * 1024;

/// The last `capacity` bytes a terminal wrote.
#[derive(Debug)]
pub struct Scrollback {
    bytes: VecDeque<u8>,
    capacity: usize,
}

impl Scrollback {
    /// An empty buffer keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Scrollback {
            bytes: VecDeque::with_capacity(capacity.min(64 * 1024)),
            capacity,
        }
    }

    /// Appends output, dropping the oldest bytes past the capacity.
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.capacity)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    /// A copy of what is kept, oldest first.
    pub fn snapshot(&self) -> Vec<u8> {
        let (a, b) = self.bytes.as_slices();
        [a, b].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_bytes() {
        let mut sb = Scrollback::new(8);
        sb.push(b"hello ");
        sb.push(b"world");
        assert_eq!(sb.snapshot(), b"lo world");
        sb.push(b"0123456789ab");
        assert_eq!(sb.snapshot(), b"456789ab");
    }
}
