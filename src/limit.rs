//! How many uploads of one target are in flight at once: a limit that adapts to what the store
//! sustains, in the family of TCP Vegas and Netflix's concurrency-limits (whose gradient limit
//! this follows: a tolerance on the time, not an absolute queue).
//!
//! Each completed upload gives a sample: the time from its first call to its last, and whether the
//! store said to slow down meanwhile. The shortest time seen is the time with no queue in front of
//! the calls. While the smoothed recent time stays within [`TOLERANCE`] of it, the round trip, not
//! the store, holds the calls, so more can be in flight: the limit grows by one a sample (it
//! doubles each window, as TCP's slow start does). Past twice the tolerance the store (or this
//! host) is the bottleneck: over a window the limit goes down to the share of the time that is the
//! round trip, at most by half, and from then on grows by a tenth a window ([`QUEUED_GROWTH`]),
//! because the queue signal comes a window late. It never goes below where it started: a queue
//! alone is no reason to do less than the fixed default of earlier releases.
//!
//! Throttling is the other signal, the one a rate-limited store gives instead of a queue (its
//! `503 SlowDown` answers come back as fast as the others). The first SlowDown halves the limit;
//! after it, a SlowDown cuts it at most once per window, in proportion to the share of the window
//! that was throttled (as DCTCP does), to at most [`BACKOFF`]; growth then waits for a whole
//! window without one and adds one per window, so the limit hovers just under the rate the store
//! allows. [`Gradient`] is the pure rule; [`Limiter`] holds it with the permits the sweep's
//! workers take. Why each constant has its value, with the figures, is in bench/results.md
//! ("The adaptive limit: design figures").

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Where an adaptive limit starts: the fixed default of earlier releases, so that a store that is
/// already busy at that depth (a loopback Garage gains throughput up to 128 although its calls
/// queue from 8) keeps at least the throughput it had; from there it grows while calls do not queue.
pub const INITIAL: usize = 32;
/// The least an adaptive limit goes down to, however hard the store throttles.
pub const MIN: usize = 4;
/// How much longer than the shortest time the recent (smoothed) time may be while the calls are
/// taken to travel rather than queue: a round trip's own jitter (timers, scheduling, a loaded
/// host) stays well under it, a store's queue soon goes past it. Above twice this, the limit
/// shrinks (never below its start). Half, as Netflix's gradient limit tolerates 1.5 times its
/// long-term time.
pub const TOLERANCE: f64 = 0.5;
/// The weight of the newest sample in the smoothed time.
pub const SMOOTHING: f64 = 0.1;
/// The most a SlowDown leaves of the limit (when few of the window's samples were throttled).
/// Gentler than TCP Reno's half: the limit hovers between this and the throttling point, on
/// average above 90% of the rate the store allows (`scripts/bench.sh --throttle`).
pub const BACKOFF: f64 = 0.9;
/// Growth a sample once a queue has been seen (a tenth of the limit a window): the store's
/// capacity is near, so the limit creeps back toward it instead of doubling past it.
pub const QUEUED_GROWTH: f64 = 0.1;

/// The pure rule: the next limit from the current one and a sample.
#[derive(Clone, Debug)]
pub struct Gradient {
    limit: f64,
    /// Where it started: a queue never takes it below (only throttling does).
    start: f64,
    min: f64,
    max: f64,
    /// The shortest time of an upload seen in this sweep, in seconds (a limiter lives for one
    /// sweep of one target, so each sweep learns it anew).
    no_load: Option<f64>,
    /// The recent time of an upload, smoothed ([`SMOOTHING`]), in seconds.
    smoothed: Option<f64>,
    /// Samples since the last decrease for throttling.
    since_cut: u64,
    /// Throttled samples since the last decrease.
    throttled_since_cut: u64,
    /// Samples since the last throttled one.
    since_throttled: u64,
    /// Cuts for throttling so far.
    cuts: u64,
    /// True once a queue has shrunk the limit: the slow start is over.
    queued: bool,
}

impl Gradient {
    /// A rule starting at `initial`, always within `min..=max`.
    pub fn new(initial: usize, min: usize, max: usize) -> Self {
        let (min, max) = (min.max(1) as f64, max.max(min).max(1) as f64);
        Gradient {
            limit: (initial as f64).clamp(min, max),
            start: (initial as f64).clamp(min, max),
            min,
            max,
            no_load: None,
            smoothed: None,
            since_cut: u64::MAX / 2,
            throttled_since_cut: 0,
            since_throttled: u64::MAX / 2,
            cuts: 0,
            queued: false,
        }
    }

    /// How many times throttling cut the limit.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit.round() as usize
    }

    /// One completed upload that started after the latest cut: see [`Gradient::sample_since`].
    pub fn sample(&mut self, rtt: Duration, throttled: bool, in_flight: usize) -> usize {
        self.sample_since(rtt, throttled, in_flight, self.cuts)
    }

    /// One completed upload: its time, whether the store throttled meanwhile, how many were in
    /// flight, and [`Gradient::cuts`] when it started. Returns the new limit. A throttled upload
    /// that started before the latest cut was answered by that cut: its SlowDown belongs to the
    /// overshoot that caused it (its retries only made it finish later), so it neither cuts again
    /// nor holds growth back, as TCP reacts once per window of data sent. Without this, the
    /// retried uploads of one overshoot, finishing over the next windows, cut window after
    /// window: measured, the limit sank to a third under the rate of a 3,500 requests/s prefix.
    pub fn sample_since(
        &mut self,
        rtt: Duration,
        throttled: bool,
        in_flight: usize,
        cuts_at_start: u64,
    ) -> usize {
        if throttled && cuts_at_start < self.cuts {
            return self.limit();
        }
        self.since_cut += 1;
        if throttled {
            self.since_throttled = 0;
            self.throttled_since_cut += 1;
            if self.since_cut as f64 >= self.limit {
                let share = self.throttled_since_cut as f64 / self.since_cut.min(1 << 40) as f64;
                // The first SlowDown after a slow start ends it: the limit doubled in the window
                // before, so the store's rate was passed at half of it at most (less where the
                // store lets a burst through first), and it halves, as TCP's slow start ends.
                let keep = if self.cuts == 0 && self.limit > self.start {
                    0.5
                } else {
                    (1.0 - share / 2.0).min(BACKOFF)
                };
                self.limit = (self.limit * keep).max(self.min);
                self.since_cut = 0;
                self.throttled_since_cut = 0;
                self.cuts += 1;
            }
            return self.limit();
        }
        self.since_throttled += 1;
        let rtt = rtt.as_secs_f64().max(1e-6);
        let no_load = self.no_load.map_or(rtt, |n| n.min(rtt));
        self.no_load = Some(no_load);
        // Growing while the workers cannot fill the limit would only inflate it.
        if (in_flight as f64) < self.limit / 2.0 {
            return self.limit();
        }
        // The recent time, smoothed: one slow sample is jitter, a run of them is a queue.
        let smoothed = self.smoothed.map_or(rtt, |s| s + (rtt - s) * SMOOTHING);
        self.smoothed = Some(smoothed);
        let inflation = smoothed / no_load - 1.0;
        // No growth until a whole window has passed without throttling.
        let calm = self.since_throttled as f64 >= self.limit;
        if inflation < TOLERANCE && calm {
            // Slow start until the first queue or SlowDown; then a tenth a window after a queue,
            // one a window once the store has throttled.
            self.limit += if self.cuts > 0 {
                1.0 / self.limit
            } else if self.queued {
                QUEUED_GROWTH
            } else {
                1.0
            };
        } else if inflation > 2.0 * TOLERANCE {
            // A queue: over a window, the limit goes down to the share of the time that is the
            // round trip (within the tolerance), as the gradient of concurrency-limits does, at
            // most by half. One a sample, whatever the queue, emptied a window in a window: the
            // signal comes a round trip late, so the limit swung from 560 to 120 and back at
            // 20 ms, and the sweep ran at 4,192 uploads/s where a fixed 512 ran at 6,250.
            // Never below the start: a store busy at the start depth (loopback Garage gains
            // throughput up to 128 although its calls queue from 8) keeps the throughput of the
            // fixed default. Only throttling goes below it.
            self.queued = true;
            let travel = (1.0 + TOLERANCE) * no_load / smoothed;
            let step = (1.0 - travel).clamp(0.0, 0.5);
            if self.limit > self.start {
                self.limit = (self.limit - step).max(self.start);
            }
        }
        self.limit = self.limit.clamp(self.min, self.max);
        self.limit()
    }
}

/// A [`Gradient`] rule with the permits of the calls in flight: `acquire` waits for a permit under the
/// current limit; the limit moves as samples arrive (permits are added, or forgotten as they are
/// released).
pub struct Limiter {
    rule: parking_lot::Mutex<Gradient>,
    permits: Arc<Semaphore>,
    /// Permits handed out (or available) beyond the limit, to forget as they come back.
    state: parking_lot::Mutex<Permits>,
    /// True when the limit is pinned (`concurrency` set): samples are ignored.
    pinned: bool,
    /// The highest limit so far.
    peak: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Default)]
struct Permits {
    /// Permits that exist (handed out + available).
    total: usize,
    in_flight: usize,
}

/// A permit of the [`Limiter`]; give it back with [`Limiter::done`] (dropping it also returns it).
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    /// The rule's cuts when it was handed out.
    cuts_at_start: u64,
}

impl Limiter {
    /// The limiter of `concurrency` (pinned) or, for 0, adapting from [`INITIAL`] within
    /// `1..=max_concurrency`; with the most permits it can ever hand out. With `back_off` (the
    /// adaptive retry mode), a pinned `concurrency` is a ceiling that throttling still cuts.
    pub fn for_settings(
        concurrency: usize,
        max_concurrency: usize,
        back_off: bool,
    ) -> (Self, usize) {
        match concurrency {
            0 => (
                Self::adaptive(
                    INITIAL.min(max_concurrency),
                    MIN.min(max_concurrency),
                    max_concurrency,
                ),
                max_concurrency.max(1),
            ),
            n if back_off => (Self::adaptive(n, MIN.min(n), n), n),
            n => (Self::pinned(n), n),
        }
    }

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
            peak: std::sync::atomic::AtomicUsize::new(n),
        }
    }

    /// How many times throttling cut the limit.
    pub fn cuts(&self) -> u64 {
        self.rule.lock().cuts()
    }

    /// The highest limit so far.
    pub fn peak(&self) -> usize {
        self.peak.load(std::sync::atomic::Ordering::Relaxed)
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
        Permit {
            permit: Some(permit),
            cuts_at_start: self.cuts(),
        }
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
        let limit = self
            .rule
            .lock()
            .sample_since(rtt, throttled, in_flight, permit.cuts_at_start);
        self.peak
            .fetch_max(limit, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.state.lock();
        if limit > s.total {
            self.permits.add_permits(limit - s.total);
            s.total = limit;
        } else if limit < s.total
            && let Some(p) = permit.permit.take()
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
        let mut g = Gradient::new(INITIAL, 1, 256);
        for _ in 0..500 {
            let limit = g.limit();
            g.sample(20 * MS, false, limit);
        }
        assert_eq!(g.limit(), 256);
    }

    #[test]
    fn the_limit_settles_just_above_what_a_busy_store_serves_at_once() {
        // A store that works on 64 uploads at once, 2 ms each: beyond 64 in flight, they queue
        // (the time grows with the limit). The limit settles a few queued uploads above 64.
        let mut g = Gradient::new(INITIAL, 1, 256);
        let mut seen = Vec::new();
        for _ in 0..5_000 {
            let limit = g.limit();
            let time = 2.0 * (limit as f64 / 64.0).max(1.0);
            g.sample(Duration::from_secs_f64(time / 1000.0), false, limit);
            seen.push(g.limit());
        }
        let settled = &seen[1_000..];
        let (lo, hi) = (settled.iter().min().unwrap(), settled.iter().max().unwrap());
        let most = (64.0 * (1.0 + 2.0 * TOLERANCE)) as usize + 1;
        assert!(*lo >= 64 && *hi <= most, "settled within {lo}..={hi}");
    }

    #[test]
    fn a_late_signal_from_a_far_store_at_capacity_holds_the_limit_steady() {
        // A 60 ms round trip to a store (or through a host) doing 8,000 uploads/s: past 480 in
        // flight, an upload's time grows with the limit. Each sample tells of the limit when its
        // upload started, about a window earlier, as a real sweep's do.
        let time = |limit: usize| Duration::from_secs_f64((limit as f64 / 8_000.0).max(0.060));
        let mut g = Gradient::new(INITIAL, MIN, 1024);
        let mut started: std::collections::VecDeque<usize> = [INITIAL; INITIAL].into();
        let mut seen = Vec::new();
        for _ in 0..60_000 {
            let at_start = started.pop_front().unwrap_or(INITIAL);
            let limit = g.sample(time(at_start), false, g.limit());
            while started.len() < limit {
                started.push_back(limit);
            }
            seen.push(limit);
        }
        let settled = &seen[20_000..];
        let (lo, hi) = (settled.iter().min().unwrap(), settled.iter().max().unwrap());
        // Never emptied for a late queue signal (one a sample swung it from 1,024 to 32), and
        // held where the store is busy but the round trip still dominates.
        assert!(*lo >= 480 && *hi <= 960, "settled within {lo}..={hi}");
    }

    #[test]
    fn a_store_busy_from_the_start_keeps_the_start_limit() {
        // A store that works on 8 uploads at once: queueing from the start, never throttling.
        let mut g = Gradient::new(INITIAL, MIN, 256);
        for _ in 0..5_000 {
            let limit = g.limit();
            let time = 2.0 * (limit as f64 / 8.0).max(1.0);
            g.sample(Duration::from_secs_f64(time / 1000.0), false, limit);
            assert!(g.limit() >= INITIAL, "{}", g.limit());
        }
        // It grows only until its own queue shows (within the tolerance of the first time seen).
        assert!(
            g.limit() as f64 <= INITIAL as f64 * (1.0 + 2.0 * TOLERANCE) + 1.0,
            "{}",
            g.limit()
        );
    }

    #[test]
    fn throttling_cuts_the_limit_once_per_window_never_below_min() {
        let mut g = Gradient::new(100, 4, 256);
        for _ in 0..100 {
            g.sample(MS, false, 0); // idle workers: no growth
        }
        assert_eq!(g.limit(), 100);
        // A burst of 40 SlowDowns in one window: one cut, not a collapse.
        for _ in 0..40 {
            g.sample(MS, true, 100);
        }
        assert_eq!(g.limit(), 90);
        assert_eq!(g.cuts(), 1);
        // A window of calm calls after it: held, not grown, until the window has passed.
        for _ in 0..89 {
            g.sample(MS, false, 90);
        }
        assert_eq!(g.limit(), 90, "no growth in the window after a SlowDown");
        // Then one per window (congestion avoidance), not the slow start's one per sample.
        for _ in 0..91 {
            g.sample(MS, false, 90);
        }
        assert_eq!(g.limit(), 91, "one more after a calm window");
        // A window where every sample was throttled (an overshoot) halves it.
        g.sample(MS, true, 100);
        assert_eq!(
            g.limit(),
            82,
            "the first SlowDown of a calm spell takes a tenth off"
        );
        for _ in 0..82 {
            g.sample(MS, true, 100);
        }
        assert_eq!(g.limit(), 41, "a wholly throttled window halves it");
        // Throttled window after window, the cuts compound.
        for _ in 0..20 {
            for _ in 0..g.limit() {
                g.sample(MS, true, 100);
            }
        }
        assert!(g.limit() < 20, "{}", g.limit());
        for _ in 0..10_000 {
            g.sample(MS, true, 100);
        }
        assert_eq!(g.limit(), 4, "never below min");
    }

    #[test]
    fn the_first_slowdown_after_a_slow_start_halves_the_limit() {
        let mut g = Gradient::new(INITIAL, MIN, 1024);
        while g.limit() < 128 {
            let limit = g.limit();
            g.sample(20 * MS, false, limit);
        }
        assert_eq!(g.limit(), 128, "one a sample: doubles each window");
        g.sample(20 * MS, true, 128);
        assert_eq!((g.limit(), g.cuts()), (64, 1));
    }

    #[test]
    fn throttled_uploads_that_started_before_a_cut_never_cut_again() {
        let mut g = Gradient::new(100, 4, 256);
        g.sample_since(MS, true, 100, 0);
        assert_eq!((g.limit(), g.cuts()), (90, 1));
        // The overshoot's other uploads, retried and finishing over the next windows: no cut.
        for _ in 0..1_000 {
            g.sample_since(MS, true, 100, 0);
        }
        assert_eq!((g.limit(), g.cuts()), (90, 1));
        // Nor do they hold growth back: a calm window of uploads started after the cut grows it.
        for _ in 0..200 {
            g.sample_since(MS, false, 90, 1);
        }
        assert!(g.limit() > 90, "{}", g.limit());
        // An upload started after the cut and throttled is a new overshoot.
        g.sample_since(MS, true, 100, 1);
        assert_eq!(g.cuts(), 2);
    }

    #[test]
    fn workers_that_cannot_fill_the_limit_do_not_inflate_it() {
        let mut g = Gradient::new(INITIAL, 1, 1024);
        for _ in 0..1_000 {
            g.sample(20 * MS, false, 3);
        }
        assert_eq!(g.limit(), INITIAL);
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
        // Throttled window after window, the limit comes down to one, and the permits given back
        // are forgotten down to it.
        for p in held.drain(..) {
            l.done(p, MS, true);
        }
        let mut fifth = waiting.await.unwrap();
        while l.limit() > 1 {
            l.done(fifth, MS, true);
            fifth = l.acquire().await;
        }
        assert!(l.cuts() >= 2, "{} cuts", l.cuts());
        let sixth = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire().await })
        };
        tokio::task::yield_now().await;
        assert!(!sixth.is_finished(), "one in flight at a limit of one");
        drop(fifth);
        sixth.await.unwrap();
        // Pinned: samples never move it.
        let p = Limiter::pinned(3);
        for _ in 0..100 {
            let permit = p.acquire().await;
            p.done(permit, MS, true);
        }
        assert_eq!(p.limit(), 3);
    }

    #[test]
    fn a_pinned_limit_with_back_off_is_a_ceiling_throttling_cuts() {
        let (l, width) = Limiter::for_settings(40, 256, true);
        assert_eq!((l.limit(), width), (40, 40));
        let mut g = l.rule.lock().clone();
        g.sample(MS, true, 40);
        assert_eq!(g.limit(), 36, "cut below the pinned value");
        for _ in 0..10_000 {
            g.sample(MS, false, 40);
        }
        assert_eq!(g.limit(), 40, "and back up to it, never beyond");
        let (l, _) = Limiter::for_settings(40, 256, false);
        assert!(l.pinned, "without back-off it never moves");
    }

    #[test]
    fn under_a_rate_limit_the_limit_hovers_just_below_it() {
        // A store that allows 1,000 uploads a second at 50 ms each (50 in flight): beyond that,
        // the excess share of the calls is throttled. Once past the slow start, the limit stays
        // within 85% to 105% of 50, and fewer than 1% of the samples see a SlowDown.
        let mut g = Gradient::new(INITIAL, MIN, 1024);
        let (mut throttled, mut seen) = (0u64, Vec::new());
        let mut excess = 0.0;
        for i in 0..200_000 {
            let limit = g.limit() as f64;
            excess += (limit - 50.0).max(0.0) / limit;
            let hit = excess >= 1.0;
            if hit {
                excess -= 1.0;
            }
            g.sample(50 * MS, hit, limit as usize);
            if i >= 20_000 {
                throttled += u64::from(hit);
                seen.push(g.limit());
            }
        }
        let mean = seen.iter().sum::<usize>() as f64 / seen.len() as f64;
        let (lo, hi) = (*seen.iter().min().unwrap(), *seen.iter().max().unwrap());
        assert!(lo >= 42 && hi <= 53, "hovered within {lo}..={hi}");
        assert!(mean >= 45.0, "mean {mean:.1}");
        assert!(
            throttled < 1_800,
            "{throttled} of 180,000 samples throttled"
        );
    }
}
