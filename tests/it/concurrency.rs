//! The adaptive concurrency limit on the embedded endpoint: it grows when the round trip, not the
//! store, holds the calls; a pinned `concurrency` never moves; SlowDown keeps it from growing.

use std::time::{Duration, Instant};

use mpu_janitor::config::Settings;
use s3_mem::Faults;

use crate::common::endpoint::{TWO_PARTS, endpoint, opts, seed_old, settings, sweep};
use crate::common::target;

#[tokio::test(flavor = "multi_thread")]
async fn the_limit_grows_past_its_start_when_the_round_trip_holds_the_calls() {
    let ep = endpoint().await;
    seed_old(&ep, "lat", "k/", 1_000, TWO_PARTS);
    // 100 ms before every answer: a store far away, not a busy one (even for this debug build
    // on a loaded machine).
    ep.set_faults(Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    });
    let started = Instant::now();
    let r = sweep(&target("lat", settings(&ep)), &opts()).await;
    let wall = started.elapsed();
    assert_eq!(
        (r.aborted, r.failed, r.unverified),
        (1_000, 0, 0),
        "{:?}",
        r.error
    );
    let start = mpu_janitor::limit::INITIAL as u64;
    assert!(
        r.concurrency_peak >= start * 3 / 2,
        "grew from {start}: peak {}",
        r.concurrency_peak
    );
    assert!(
        r.concurrency_peak <= 256,
        "within max_concurrency: {}",
        r.concurrency_peak
    );
    // Pinned at 32, three 100 ms calls an upload cap it at 107 uploads/s.
    println!(
        "100 ms latency, adaptive: peak {} in flight, {:.0} uploads/s",
        r.concurrency_peak,
        1_000.0 / wall.as_secs_f64()
    );
    assert_eq!(ep.upload_count("lat"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_concurrency_never_moves_and_max_concurrency_bounds_the_adaptive_one() {
    let ep = endpoint().await;
    seed_old(&ep, "pin", "k/", 300, TWO_PARTS);
    ep.set_faults(Faults {
        latency: Duration::from_millis(5),
        ..Faults::default()
    });
    let pinned = Settings {
        concurrency: 8,
        ..settings(&ep)
    };
    let r = sweep(&target("pin", pinned), &opts()).await;
    assert_eq!((r.aborted, r.concurrency_peak), (300, 8));
    seed_old(&ep, "cap", "k/", 300, TWO_PARTS);
    let capped = Settings {
        max_concurrency: 20,
        ..settings(&ep)
    };
    let r = sweep(&target("cap", capped), &opts()).await;
    assert_eq!((r.aborted, r.concurrency_peak), (300, 20));
}

#[tokio::test(flavor = "multi_thread")]
async fn slowdown_keeps_the_limit_from_growing_and_nothing_is_left_behind() {
    let ep = endpoint().await;
    seed_old(&ep, "slow", "k/", 1_500, TWO_PARTS);
    ep.set_faults(Faults {
        latency: Duration::from_millis(10),
        slowdown_fraction: 0.05,
        ..Faults::default()
    });
    let r = sweep(&target("slow", settings(&ep)), &opts()).await;
    assert_eq!(
        (r.aborted, r.failed, r.unverified),
        (1_500, 0, 0),
        "{:?}",
        r.errors
    );
    // Without SlowDown a round trip grows it (the test above); with 5% SlowDown the limit halves
    // each window and never gets far past where it started.
    let start = mpu_janitor::limit::INITIAL as u64;
    assert!(
        r.concurrency_peak <= start + 16,
        "peak {}",
        r.concurrency_peak
    );
    assert_eq!(ep.upload_count("slow"), 0);
}
