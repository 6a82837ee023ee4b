//! The lean path's retry policy, the SDK's standard one: up to `retry_max_attempts` attempts, each
//! bounded by `read_timeout` from sending to the last byte, with exponential backoff and full
//! jitter between them: from 50 ms, or from 500 ms after a throttling answer (a SlowDown retried
//! within a few tens of milliseconds lands in the same overshoot that caused it). Which failures
//! are worth another attempt is said by the attempt itself ([`Failure::retry`]).

use std::future::Future;
use std::time::Duration;

use crate::store::{ErrorKind, Operation, StoreError};

/// The first backoff; it doubles each retry, up to [`MAX_BACKOFF`], times a random factor in 0..1.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// The first backoff after a throttling answer.
const THROTTLED_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// A failed attempt, and whether another is worth it.
pub(super) struct Failure {
    pub(super) retry: bool,
    pub(super) error: StoreError,
}

impl Failure {
    /// A failure no retry can mend.
    pub(super) fn fatal(error: StoreError) -> Failure {
        Failure {
            retry: false,
            error,
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `max_attempts` are spent.
pub(super) async fn with_retries<T, F, Fut>(
    op: Operation,
    max_attempts: u32,
    attempt_timeout: Duration,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut n = 1;
    loop {
        let result = match tokio::time::timeout(attempt_timeout, attempt()).await {
            Ok(result) => result,
            Err(_) => Err(Failure {
                retry: true,
                error: StoreError {
                    operation: op,
                    kind: ErrorKind::Timeout,
                    message: format!(
                        "timed out: no complete answer within {}",
                        humantime::format_duration(attempt_timeout)
                    ),
                },
            }),
        };
        match result {
            Ok(reply) => return Ok(reply),
            Err(f) if !f.retry || n >= max_attempts => return Err(f.error),
            Err(f) => {
                tokio::time::sleep(backoff(n, f.error.kind == ErrorKind::Throttled)).await;
                n += 1;
            }
        }
    }
}

/// Delay after failed attempt `n` (1-based): full jitter under a doubling, capped ceiling.
fn backoff(n: u32, throttled: bool) -> Duration {
    let first = if throttled {
        THROTTLED_BACKOFF
    } else {
        INITIAL_BACKOFF
    };
    let cap = first.saturating_mul(1 << (n - 1).min(16)).min(MAX_BACKOFF);
    cap.mul_f64(rand::random_range(0.0..1.0))
}
