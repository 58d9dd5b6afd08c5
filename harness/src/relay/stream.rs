//! One terminal's byte streams as the reference relay counts them, across every
//! connection of its host: output received, input typed and not yet acknowledged.

use std::collections::VecDeque;

/// One terminal's streams as the relay counts them.
#[derive(Debug, Default, Clone)]
pub struct RelayStream {
    /// Output bytes received from the host (a `session.gap` moves it to the gap's end).
    pub output_offset: u64,
    /// Input typed and not yet acknowledged, starting at `input_base`.
    pub unacked: VecDeque<u8>,
    /// The input offset of `unacked[0]`.
    pub input_base: u64,
    /// Gaps the host announced, in order.
    pub gaps: Vec<(u64, u64)>,
}

impl RelayStream {
    /// Forgets input up to `offset`, which the host has handed to its pty daemon.
    pub fn acknowledge(&mut self, offset: u64) {
        let done = offset
            .saturating_sub(self.input_base)
            .min(self.unacked.len() as u64);
        self.unacked.drain(..done as usize);
        self.input_base += done;
    }

    /// The input beyond `offset` (what the host's `hello` says ptyd has), to send again.
    pub fn unacked_from(&self, offset: u64) -> Vec<u8> {
        let skip = offset
            .saturating_sub(self.input_base)
            .min(self.unacked.len() as u64);
        self.unacked.range(skip as usize..).copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unacknowledged_input_is_kept_and_resent_from_the_hosts_offset() {
        let mut stream = RelayStream::default();
        stream.unacked.extend(b"line1\nline2\nline3\n");
        stream.acknowledge(6);
        assert_eq!(stream.input_base, 6);
        assert_eq!(stream.unacked_from(12), b"line3\n");
        // The host has less than was acknowledged (it lost input): resend what is kept.
        assert_eq!(stream.unacked_from(0), b"line2\nline3\n");
        assert_eq!(stream.input_base + stream.unacked.len() as u64, 18);
    }
}
