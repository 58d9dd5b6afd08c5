//! Retrying calls that failed for a reason worth retrying: exponential backoff with full jitter.

use std::future::Future;
use std::time::Duration;

use crate::backoff::{Backoff, Jitter};

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay ceiling before the first retry; doubles each time.
    pub base: Duration,
    /// Largest delay ceiling.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

/// One attempt's failure: retry it, or give up now.
#[derive(Debug)]
pub enum Attempt<E> {
    /// Network error or 5xx: worth another try.
    Retry(E),
    /// Anything else (a 401/403 above all): final.
    Fatal(E),
}

impl RetryPolicy {
    /// The jittered delays: uniform in `[0, min(cap, base·2^retry)]`.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.base, self.cap, Jitter::Full)
    }

    /// Runs `op` until it succeeds, fails fatally, or the retries are used up.
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Attempt<E>>>,
    {
        let mut backoff = self.backoff();
        let mut retry = 0;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) if retry >= self.retries => return Err(e),
                Err(Attempt::Retry(e)) => {
                    tracing::debug!(retry, error = %e, "retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    retry += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retryable_errors_are_tried_four_times_in_all() {
        let calls = AtomicU32::new(0);
        let out: Result<(), &str> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Attempt::Retry("503"))
            })
            .await;
        assert_eq!(out, Err("503"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), &str> = fast()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Attempt::Fatal("401"))
            })
            .await;
        assert_eq!(out, Err("401"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn delays_stay_under_the_cap() {
        let policy = RetryPolicy {
            retries: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(300),
        };
        let backoff = policy.backoff();
        for retry in 0..10 {
            assert!(backoff.delay(retry) <= Duration::from_millis(300));
        }
    }
}
