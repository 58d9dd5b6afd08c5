//! Delays between attempts: doubling from a base up to a cap, with jitter so that many
//! clients failing together do not retry in step. One type for the relay's reconnects,
//! the auth retries and the pty daemon's restarts.

use std::time::Duration;

use rand::Rng;

/// How much of each delay is random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exactly the ceiling: for a local daemon, where no crowd retries with us.
    None,
    /// Half fixed, half random: never near zero, so a loop cannot spin.
    Half,
    /// Uniform in `[0, ceiling]` ("full jitter"): for calls that are retried a few times.
    Full,
}

/// Exponential backoff: the ceiling of attempt `n` is `min(cap, base·2ⁿ)`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: Jitter,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff: the next delay is about `base`.
    pub const fn new(base: Duration, cap: Duration, jitter: Jitter) -> Self {
        Backoff {
            base,
            cap,
            jitter,
            attempt: 0,
        }
    }

    /// The delay before attempt `attempt` (0-based), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.cap);
        let random = |upto: Duration| {
            Duration::from_millis(rand::rng().random_range(0..=upto.as_millis() as u64))
        };
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Half => ceiling / 2 + random(ceiling / 2),
            Jitter::Full => random(ceiling),
        }
    }

    /// The next delay in the sequence.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.delay(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Back to the start, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn half_jitter_grows_to_the_cap_and_never_reaches_zero() {
        let mut backoff = Backoff::new(SECOND, 30 * SECOND, Jitter::Half);
        let first = backoff.next_delay();
        assert!(first >= SECOND / 2 && first <= SECOND, "{first:?}");
        for _ in 0..10 {
            backoff.next_delay();
        }
        let late = backoff.next_delay();
        assert!(late >= 15 * SECOND && late <= 30 * SECOND, "{late:?}");
        backoff.reset();
        assert!(backoff.next_delay() <= SECOND);
    }

    #[test]
    fn no_jitter_doubles_exactly() {
        let backoff = Backoff::new(Duration::from_millis(200), SECOND, Jitter::None);
        let delays: Vec<_> = (0..4).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1000]);
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_and_the_cap() {
        let backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(300),
            Jitter::Full,
        );
        for attempt in 0..40 {
            let ceiling =
                Duration::from_millis(100 << attempt.min(2)).min(Duration::from_millis(300));
            assert!(backoff.delay(attempt) <= ceiling);
        }
    }
}
