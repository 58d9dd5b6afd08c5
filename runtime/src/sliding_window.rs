//! Counting events in the last N seconds: the rotation cap on the relay connection and
//! the crash cap on the pty daemon.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The events of the last `span`.
#[derive(Debug)]
pub struct SlidingWindow {
    span: Duration,
    events: VecDeque<Instant>,
}

impl SlidingWindow {
    /// An empty window `span` long.
    pub fn new(span: Duration) -> Self {
        SlidingWindow {
            span,
            events: VecDeque::new(),
        }
    }

    /// Records an event at `now` and returns how many fall in the window, this one included.
    pub fn record(&mut self, now: Instant) -> usize {
        self.events.push_back(now);
        while self
            .events
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.span)
        {
            self.events.pop_front();
        }
        self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_events_inside_the_span() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(Duration::from_secs(60));
        assert_eq!(window.record(start), 1);
        assert_eq!(window.record(start + Duration::from_secs(30)), 2);
        assert_eq!(window.record(start + Duration::from_secs(60)), 3);
        // 61 s after the first: it has left the window.
        assert_eq!(window.record(start + Duration::from_secs(61)), 3);
        assert_eq!(window.record(start + Duration::from_secs(200)), 1);
    }
}
