//! Where each terminal's byte streams stand on the current relay connection (contract
//! section 4, "Resume without loss"): the next output offset the relay is owed, and the
//! input handed to ptyd and not yet acknowledged. Plain data and functions; the hub holds
//! one [`Stream`] per terminal.

use std::ops::Range;
use std::time::{Duration, Instant};

/// At most one `input.ack` per terminal in this long…
pub const ACK_EVERY: Duration = Duration::from_millis(50);
/// …unless the relay has sent this much since the last one.
pub const ACK_AT_ONCE: u64 = 64 * 1024;
/// A relay that has not answered `hello` with `resume` within this long speaks protocol 1.
pub const RESUME_WAIT: Duration = Duration::from_secs(5);

/// How output flows on the current relay connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No connection, or `hello` sent and `resume` not yet here: output is held back
    /// (ptyd's replay buffer keeps it).
    Holding,
    /// `resume` arrived (or, from a protocol-1 relay, did not within 5 s): output from
    /// the offsets it named, exactly once; live for the terminals it did not name.
    Resumed,
}

/// One terminal's streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// The output offset the relay gets next; `None` until known (a terminal the relay did
    /// not list in `resume` starts at the first byte that comes).
    pub next_output: Option<u64>,
    /// The output offset `hello` announced on the current connection: where a terminal the
    /// relay does not list goes on from (nothing said after `hello` is lost).
    pub at_hello: Option<u64>,
    /// Input bytes handed to ptyd since the terminal opened.
    pub input_offset: u64,
    /// The input offset last acknowledged to the relay.
    pub acked: u64,
    /// When the last `input.ack` went.
    pub last_ack: Option<Instant>,
}

/// The part of an output chunk at `offset` (`len` bytes) that the relay is owed, advancing
/// `next` past it: bytes it already has are cut, and a chunk beyond `next` is held back
/// (`None`): the replay ptyd sends after a re-subscribe brings those bytes in order.
pub fn admit(next: &mut Option<u64>, offset: u64, len: usize) -> Option<Range<usize>> {
    let end = offset + len as u64;
    let want = *next.get_or_insert(offset);
    if offset > want || end <= want {
        return None;
    }
    *next = Some(end);
    Some((want - offset) as usize..len)
}

/// Where a terminal the host (re)learns of after `resume` goes on from: where it already
/// stands, else the offset the relay named for it in `resume`, else the offset `hello`
/// named (`None`: the first byte that comes). Sets it as where the terminal stands.
pub fn resume_point(stream: &mut Stream, listed: Option<u64>) -> Option<u64> {
    stream.next_output = stream.next_output.or(listed).or(stream.at_hello);
    stream.next_output
}

impl Stream {
    /// Counts `n` input bytes handed to ptyd.
    pub fn forwarded(&mut self, n: usize) {
        self.input_offset += n as u64;
    }

    /// The `inputOffset` to acknowledge now, if one is due: 64 KiB unacknowledged, or
    /// anything unacknowledged and 50 ms since the last ack (`tick` says the timer fired).
    pub fn ack_due(&mut self, now: Instant, tick: bool) -> Option<u64> {
        let unacked = self.input_offset - self.acked.min(self.input_offset);
        let quiet = self
            .last_ack
            .is_none_or(|at| now.duration_since(at) >= ACK_EVERY);
        if unacked >= ACK_AT_ONCE || (unacked > 0 && tick && quiet) {
            self.acked = self.input_offset;
            self.last_ack = Some(now);
            return Some(self.input_offset);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_goes_exactly_once_and_in_order() {
        let mut next = Some(100);
        // Bytes the relay has: dropped. Overlapping: the new tail only.
        assert_eq!(admit(&mut next, 50, 20), None);
        assert_eq!(admit(&mut next, 90, 20), Some(10..20));
        assert_eq!(next, Some(110));
        // Ahead of the relay (a chunk from before the re-subscribe): held back.
        assert_eq!(admit(&mut next, 200, 10), None);
        assert_eq!(next, Some(110));
        // The replay from 110 then flows, then live output.
        assert_eq!(admit(&mut next, 110, 100), Some(0..100));
        assert_eq!(admit(&mut next, 210, 5), Some(0..5));
        assert_eq!(next, Some(215));
    }

    #[test]
    fn a_terminal_the_relay_did_not_list_starts_at_the_first_byte_seen() {
        let mut next = None;
        assert_eq!(admit(&mut next, 4000, 10), Some(0..10));
        assert_eq!(next, Some(4010));
    }

    #[test]
    fn a_terminal_learnt_of_after_resume_goes_on_from_the_relays_offset() {
        // The pty daemon came back only after `resume`: the relay's offset, not live output.
        let mut late = Stream::default();
        assert_eq!(resume_point(&mut late, Some(4000)), Some(4000));
        assert_eq!(late.next_output, Some(4000));
        // Already flowing: where it stands wins.
        let mut flowing = Stream {
            next_output: Some(5000),
            ..Stream::default()
        };
        assert_eq!(resume_point(&mut flowing, Some(4000)), Some(5000));
        // Unknown to the relay: from what `hello` named.
        let mut unlisted = Stream {
            at_hello: Some(300),
            ..Stream::default()
        };
        assert_eq!(resume_point(&mut unlisted, None), Some(300));
    }

    #[test]
    fn acks_come_at_most_every_50_ms_or_at_once_after_64_kib() {
        let start = Instant::now();
        let mut stream = Stream::default();
        stream.forwarded(10);
        assert_eq!(stream.ack_due(start, false), None, "not on input alone");
        assert_eq!(stream.ack_due(start, true), Some(10));
        stream.forwarded(5);
        assert_eq!(
            stream.ack_due(start + Duration::from_millis(10), true),
            None
        );
        assert_eq!(
            stream.ack_due(start + Duration::from_millis(60), true),
            Some(15)
        );
        stream.forwarded(64 * 1024);
        assert_eq!(
            stream.ack_due(start + Duration::from_millis(61), false),
            Some(15 + 64 * 1024)
        );
    }
}
