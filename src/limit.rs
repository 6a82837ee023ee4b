//! How many uploads of one target are in flight at once: a limit that adapts to what the store
//! sustains, in the family of TCP Vegas and Netflix's concurrency-limits (Gradient2).
//!
//! Each completed call gives a sample: its time from send to last byte, and whether the store said
//! to slow down. The shortest recent time is the store's time with no queue in front of the call;
//! while samples stay near it, the calls are not queueing, so more of them can be in flight (the
//! round trip, not the store, is the limit): the limit grows by about its square root per sample.
//! When samples grow past 1.5 times the long-run average, a queue is forming and the limit shrinks
//! in proportion. A SlowDown halves it, at most once per limit's worth of samples, so a burst of
//! throttling answers to one window counts once. [`Gradient`] is the pure rule; [`Limiter`] holds
//! it with the permits the sweep's workers take.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pure rule: the next limit from the current one and a sample.
#[derive(Clone, Debug)]
pub struct Gradient {
    limit: f64,
    min: f64,
    max: f64,
    /// The long-run average time of a call, in seconds (exponentially weighted).
    long: Option<f64>,
    /// Samples since the last decrease for throttling.
    since_throttle_cut: u64,
}

/// Weight of a new sample in the long-run average (about the last 100 samples).
const LONG_WEIGHT: f64 = 0.01;
/// How much slower than the long-run average a call may be before the limit shrinks.
const TOLERANCE: f64 = 1.5;
/// How much of a new limit is taken at once.
const SMOOTHING: f64 = 0.2;

impl Gradient {
    /// A rule starting at `initial`, always within `min..=max`.
    pub fn new(initial: usize, min: usize, max: usize) -> Self {
        let (min, max) = (min.max(1) as f64, max.max(min).max(1) as f64);
        Gradient {
            limit: (initial as f64).clamp(min, max),
            min,
            max,
            long: None,
            since_throttle_cut: 0,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit.round() as usize
    }

    /// One completed call: `rtt`, whether the store throttled it, and how many calls were in
    /// flight. Returns the new limit.
    pub fn sample(&mut self, rtt: Duration, throttled: bool, in_flight: usize) -> usize {
        self.since_throttle_cut += 1;
        if throttled {
            if self.since_throttle_cut as f64 >= self.limit {
                self.limit = (self.limit * 0.5).max(self.min);
                self.since_throttle_cut = 0;
            }
            return self.limit();
        }
        let short = rtt.as_secs_f64().max(1e-6);
        let long = match self.long {
            None => short,
            Some(l) => l * (1.0 - LONG_WEIGHT) + short * LONG_WEIGHT,
        };
        // After a long slow spell, let the average come back down quickly.
        let long = if long / short > 2.0 {
            long * 0.95
        } else {
            long
        };
        self.long = Some(long);
        // Growing while the workers cannot fill the limit would only inflate it.
        if (in_flight as f64) < self.limit / 2.0 {
            return self.limit();
        }
        let gradient = (TOLERANCE * long / short).clamp(0.5, 1.0);
        let next = self.limit * gradient + self.limit.sqrt();
        self.limit = (self.limit * (1.0 - SMOOTHING) + next * SMOOTHING).clamp(self.min, self.max);
        self.limit()
    }
}

/// A [`Gradient`] with the permits of the calls in flight: `acquire` waits for a permit under the
/// current limit; the limit moves as samples arrive (permits are added, or forgotten as they are
/// released).
pub struct Limiter {
    rule: parking_lot::Mutex<Gradient>,
    permits: Arc<Semaphore>,
    /// Permits handed out (or available) beyond the limit, to forget as they come back.
    state: parking_lot::Mutex<Permits>,
    /// True when the limit is pinned (`concurrency` set): samples are ignored.
    pinned: bool,
}

#[derive(Debug, Default)]
struct Permits {
    /// Permits that exist (handed out + available).
    total: usize,
    in_flight: usize,
}

/// A permit of the [`Limiter`]; give it back with [`Limiter::done`] (dropping it also returns it).
pub struct Permit(Option<OwnedSemaphorePermit>);

impl Limiter {
    /// A limiter adapting within `min..=max`, starting at `initial`.
    pub fn adaptive(initial: usize, min: usize, max: usize) -> Self {
        Self::build(Gradient::new(initial, min, max), false)
    }

    /// A limiter pinned at `n`.
    pub fn pinned(n: usize) -> Self {
        Self::build(Gradient::new(n, n, n), true)
    }

    fn build(rule: Gradient, pinned: bool) -> Self {
        let n = rule.limit();
        Limiter {
            rule: parking_lot::Mutex::new(rule),
            permits: Arc::new(Semaphore::new(n)),
            state: parking_lot::Mutex::new(Permits {
                total: n,
                in_flight: 0,
            }),
            pinned,
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.rule.lock().limit()
    }

    /// Waits for a permit under the current limit.
    pub async fn acquire(&self) -> Permit {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the limiter's semaphore is never closed");
        self.state.lock().in_flight += 1;
        Permit(Some(permit))
    }

    /// Gives a permit back with the sample of the call it covered.
    pub fn done(&self, mut permit: Permit, rtt: Duration, throttled: bool) {
        let in_flight = {
            let mut s = self.state.lock();
            let n = s.in_flight;
            s.in_flight -= 1;
            n
        };
        if self.pinned {
            return;
        }
        let limit = self.rule.lock().sample(rtt, throttled, in_flight);
        let mut s = self.state.lock();
        if limit > s.total {
            self.permits.add_permits(limit - s.total);
            s.total = limit;
        } else if limit < s.total
            && let Some(p) = permit.0.take()
        {
            // Fewer: this permit is not given back, nor are idle ones down to the limit; the
            // rest of the excess goes as the calls holding it finish.
            p.forget();
            s.total -= 1;
            s.total -= self.permits.forget_permits(s.total.saturating_sub(limit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_limit_grows_while_calls_do_not_queue_and_stays_within_bounds() {
        // A 20 ms round trip that does not change with load: nothing queues, so it grows to max.
        let mut g = Gradient::new(8, 1, 256);
        for _ in 0..500 {
            let limit = g.limit();
            g.sample(20 * MS, false, limit);
        }
        assert_eq!(g.limit(), 256);
    }

    #[test]
    fn the_limit_shrinks_when_calls_start_to_queue() {
        let mut g = Gradient::new(64, 1, 256);
        for _ in 0..200 {
            g.sample(2 * MS, false, 64);
        }
        let before = g.limit();
        // The store slows down under load: every call now takes 5 times as long.
        for _ in 0..50 {
            let limit = g.limit();
            g.sample(10 * MS, false, limit);
        }
        assert!(g.limit() < before / 2, "{before} -> {}", g.limit());
        assert!(g.limit() >= 1);
    }

    #[test]
    fn throttling_halves_the_limit_once_per_window_never_below_min() {
        let mut g = Gradient::new(100, 4, 256);
        for _ in 0..100 {
            g.sample(MS, false, 0); // idle workers: no growth
        }
        assert_eq!(g.limit(), 100);
        // A burst of 100 SlowDowns in one window: one halving, not a collapse.
        for _ in 0..40 {
            g.sample(MS, true, 100);
        }
        assert_eq!(g.limit(), 50);
        for _ in 0..10_000 {
            g.sample(MS, true, 100);
        }
        assert_eq!(g.limit(), 4, "never below min");
    }

    #[test]
    fn workers_that_cannot_fill_the_limit_do_not_inflate_it() {
        let mut g = Gradient::new(32, 1, 1024);
        for _ in 0..1_000 {
            g.sample(20 * MS, false, 3);
        }
        assert_eq!(g.limit(), 32);
    }

    #[tokio::test]
    async fn the_limiter_hands_out_no_more_permits_than_its_limit() {
        let l = Arc::new(Limiter::adaptive(4, 1, 8));
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(l.acquire().await);
        }
        let waiting = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a fifth permit waits");
        // Throttled: the limit halves, and the permits given back are forgotten down to it.
        for _ in 0..4 {
            l.done(held.pop().unwrap(), MS, true);
        }
        assert_eq!(l.limit(), 2);
        let fifth = waiting.await.unwrap();
        let sixth = l.acquire().await;
        let seventh = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire().await })
        };
        tokio::task::yield_now().await;
        assert!(!seventh.is_finished(), "two in flight at a limit of two");
        drop((fifth, sixth));
        seventh.await.unwrap();
        // Pinned: samples never move it.
        let p = Limiter::pinned(3);
        for _ in 0..100 {
            let permit = p.acquire().await;
            p.done(permit, MS, true);
        }
        assert_eq!(p.limit(), 3);
    }
}
