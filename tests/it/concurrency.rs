//! The adaptive concurrency limit on the embedded endpoint: it grows when the round trip, not the
//! store, holds the calls; a pinned `concurrency` never moves; SlowDown keeps it from growing; a
//! rate-limited prefix makes every target on the endpoint back off, on both request paths; and
//! `once` shows its progress in its log.

use std::time::{Duration, Instant};

use mpu_janitor::config::{RequestPathSetting, Settings};
use mpu_janitor::discover::Scope;
use mpu_janitor::run::sweep_targets;
use s3_mem::{Faults, Throttle};

use crate::common::endpoint::{
    TWO_PARTS, config_toml, connector, endpoint, opts, seed_old, settings, sweep,
};
use crate::common::janitor::{spawn_janitor, wait_exit};
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
        r.concurrency_peak <= Settings::default().max_concurrency as u64,
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

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_prefix_makes_every_target_on_the_endpoint_back_off_on_both_paths() {
    // S3-like limits, 20 ms away: 300 requests a second per prefix partition and a burst of one,
    // so the first 32 uploads started together overrun it however slow the machine is (a rate
    // alone was not exceeded by a debug build on a loaded CI runner). Bucket "hot" keeps its 300
    // uploads under one prefix, so its partition throttles; bucket "cool" spreads 600 uploads
    // over 600 prefixes, whose partitions see one call at a time and never run dry. Both targets
    // share the endpoint, so both back off, and every upload is still aborted and verified.
    for path in [RequestPathSetting::Auto, RequestPathSetting::Sdk] {
        let ep = endpoint().await;
        seed_old(&ep, "hot", "one/", 300, TWO_PARTS);
        ep.create_bucket("cool");
        let initiated = chrono::Utc::now() - chrono::TimeDelta::days(2);
        for i in 0..600 {
            ep.seed_upload("cool", &format!("p{i}/k"), initiated, TWO_PARTS);
        }
        ep.set_faults(Faults {
            latency: Duration::from_millis(20),
            throttle: Some(Throttle {
                rate: 300.0,
                burst: 1.0,
            }),
            ..Faults::default()
        });
        let s = Settings {
            request_path: path,
            retry_max_attempts: 10,
            ..settings(&ep)
        };
        let targets = [target("hot", s.clone()), target("cool", s)];
        let run = sweep_targets(&targets, &connector(), &opts(), 2, &Scope::default()).await;
        let stats = ep.stats();
        for r in &run.targets {
            assert_eq!((r.failed, r.unverified), (0, 0), "{path}: {:?}", r.errors);
            assert!(
                r.throttle_backoffs >= 1,
                "{path}: {} never backed off ({} requests throttled)",
                r.bucket,
                stats.throttled
            );
        }
        assert_eq!((run.targets[0].aborted, run.targets[1].aborted), (300, 600));
        assert_eq!(ep.upload_count("hot") + ep.upload_count("cool"), 0);
        let share = stats.throttled as f64 / stats.requests as f64;
        println!(
            "{path}: {} of {} requests throttled ({:.1}%), backoffs hot {} cool {}",
            stats.throttled,
            stats.requests,
            share * 100.0,
            run.targets[0].throttle_backoffs,
            run.targets[1].throttle_backoffs
        );
        assert!(stats.throttled > 0, "{path}: the endpoint never throttled");
    }
}

#[test]
fn once_logs_its_progress_when_stderr_is_not_a_terminal() {
    // 300 uploads at 20 ms a call and 8 at a time take about 2 s: with --progress-every 200ms the
    // log (stderr is a pipe here) gets progress lines with the rate, and a time left once listed.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ep = rt.block_on(endpoint());
    seed_old(&ep, "prog", "k/", 300, TWO_PARTS);
    ep.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let cfg = config_toml(&ep, "concurrency = 8", &["prog"]);
    let run = |every: &str| {
        let (child, _dir) = spawn_janitor(
            &cfg,
            &["once", "--progress-every", every],
            &[("RUST_LOG", "info")],
        );
        wait_exit(child, Duration::from_secs(60))
    };
    let (code, _, stderr) = run("200ms");
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("Progress:")).collect();
    assert!(lines.len() >= 3, "{stderr}");
    assert!(lines.iter().all(|l| l.contains("uploads/s")), "{stderr}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ETA") && l.contains("/300 ")),
        "a time left once all 300 are listed: {stderr}"
    );
    seed_old(&ep, "prog", "k/", 50, TWO_PARTS);
    let (code, _, stderr) = run("0s");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("Progress:"), "0s: none\n{stderr}");
}
