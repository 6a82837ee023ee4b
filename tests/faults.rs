//! Fault injection over real HTTP with real SigV4 signing: the embedded endpoint of `demo` (never a
//! mock of the SDK) replays parts after aborts, never empties, throttles, resets connections and
//! answers slowly; the janitor must verify what it reports and keep what it cannot prove.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::report::{Outcome, TargetReport};
use mpu_janitor::store::{Aborted, Connector, Parts, UploadStore};
use mpu_janitor::sweep::{SweepOptions, connect_and_sweep, sweep_targets};
use s3_mem::{Endpoint, Faults};

const AK: &str = "FAULTTESTACCESSKEY01";
const SK: &str = "fault-test-secret";

async fn endpoint() -> Endpoint {
    Endpoint::start(AK, SK).await.expect("endpoint")
}

fn settings(ep: &Endpoint) -> Settings {
    Settings {
        endpoint_url: ep.url().parse().unwrap(),
        force_path_style: true,
        older_than: HumanDuration::secs(86_400),
        ..Settings::default()
    }
}

fn target(bucket: &str, settings: Settings) -> Target {
    Target {
        bucket: bucket.into(),
        prefix: String::new(),
        exclude_prefixes: vec![],
        settings,
    }
}

fn opts() -> SweepOptions {
    SweepOptions {
        reabort_backoff: Duration::from_millis(5),
        ..Default::default()
    }
}

async fn run(t: &Target, opts: &SweepOptions) -> TargetReport {
    connect_and_sweep(t, &Connector::with_static_credentials(AK, SK), opts).await
}

/// Seeds `n` two-day-old uploads of two 1,000-byte parts on keys `{prefix}{i}`.
fn seed_old(ep: &Endpoint, bucket: &str, prefix: &str, n: usize) {
    ep.create_bucket(bucket);
    let initiated = Utc::now() - TimeDelta::days(2);
    for i in 0..n {
        ep.seed_upload(
            bucket,
            &format!("{prefix}{i}"),
            initiated,
            &[(1, 1000), (2, 1000)],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stragglers_are_verified_after_exactly_n_plus_1_aborts() {
    // A part lands after each of the first N aborts; the upload is proven empty at abort N+1.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "s", 4);
    ep.set_faults(Faults {
        stragglers: [("s1".into(), 1), ("s2".into(), 2), ("s3".into(), 3)].into(),
        ..Faults::default()
    });
    let r = run(&target("fault-bucket", settings(&ep)), &opts()).await;
    assert_eq!((r.aborted, r.unverified, r.failed), (4, 0, 0));
    assert_eq!(r.abort_attempts, 1 + 2 + 3 + 4);
    let stats = ep.stats();
    for (key, n) in [("s0", 0u32), ("s1", 1), ("s2", 2), ("s3", 3)] {
        assert_eq!(stats.aborts_for_key(key), u64::from(n) + 1, "{key}");
        let u = r.uploads.iter().find(|u| u.key == key).unwrap();
        assert_eq!((u.outcome, u.abort_attempts), (Outcome::Aborted, n + 1));
    }
    assert_eq!(r.reclaimed_bytes, 4 * 2000);
    assert_eq!(ep.upload_count("fault-bucket"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_empty_uploads_are_reported_unverified_after_max_abort_attempts() {
    // Aborts "succeed" but the parts stay: after max_abort_attempts the upload is unverified,
    // its bytes are not counted as reclaimed, and the target needs attention (exit code 1).
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "k", 3);
    ep.set_faults(Faults {
        never_empty: ["k0".to_string()].into(),
        ..Faults::default()
    });
    let t = target(
        "fault-bucket",
        Settings {
            max_abort_attempts: 4,
            ..settings(&ep)
        },
    );
    let r = run(&t, &opts()).await;
    assert_eq!((r.aborted, r.unverified), (2, 1));
    assert_eq!(r.abort_attempts, 4 + 1 + 1);
    assert_eq!(ep.stats().aborts_for_key("k0"), 4);
    assert_eq!(
        r.reclaimed_bytes,
        2 * 2000,
        "unverified bytes are not reclaimed"
    );
    let u = r.uploads.iter().find(|u| u.key == "k0").unwrap();
    assert_eq!(
        (u.outcome, u.parts_remaining),
        (Outcome::Unverified, Some(2))
    );
    assert!(r.is_failure());
    assert_eq!(ep.upload_count("fault-bucket"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_slowdown_leaves_nothing_behind() {
    // 1,500 uploads (three listing pages, ~4,500 requests) with 5% of requests throttled.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "t/", 1_500);
    ep.set_faults(Faults {
        slowdown_fraction: 0.05,
        ..Faults::default()
    });
    let r = run(&target("fault-bucket", settings(&ep)), &opts()).await;
    let stats = ep.stats();
    assert!(
        stats.slowdown_faults > 100,
        "faults injected: {}",
        stats.slowdown_faults
    );
    assert_eq!(r.error, None);
    assert_eq!(
        (r.aborted, r.failed, r.unverified),
        (1_500, 0, 0),
        "{:?}",
        r.errors
    );
    assert_eq!(ep.upload_count("fault-bucket"), 0);
    eprintln!(
        "5% SlowDown: {} requests throttled, 1,500 uploads aborted and verified",
        stats.slowdown_faults
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_an_hour_ahead_is_followed_on_both_request_paths() {
    // The endpoint's clock runs an hour ahead and refuses requests signed more than 15 minutes
    // away from it, as AWS does. Both request paths learn the skew from the answer's Date header.
    for mode in ["standard", "adaptive"] {
        let ep = endpoint().await;
        seed_old(&ep, "skew-bucket", "s/", 20);
        ep.set_faults(Faults {
            clock_ahead: Duration::from_secs(3_600),
            ..Faults::default()
        });
        let mut s = settings(&ep);
        s.retry_mode = if mode == "adaptive" {
            mpu_janitor::config::RetryMode::Adaptive
        } else {
            mpu_janitor::config::RetryMode::Standard
        };
        let r = run(&target("skew-bucket", s), &opts()).await;
        let stats = ep.stats();
        assert!(stats.skewed_faults >= 1, "{mode}: no request was refused");
        assert_eq!(r.error, None, "{mode}: {:?}", r.errors);
        assert_eq!((r.aborted, r.failed), (20, 0), "{mode}: {:?}", r.errors);
        assert_eq!(ep.upload_count("skew-bucket"), 0, "{mode}");
        eprintln!(
            "{mode}: {} of {} requests refused as skewed, 20 uploads aborted",
            stats.skewed_faults, stats.requests
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried() {
    // 3% of connections are reset without a response: the SDK retries, nothing is lost.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "r/", 600);
    ep.set_faults(Faults {
        reset_fraction: 0.03,
        ..Faults::default()
    });
    let r = run(&target("fault-bucket", settings(&ep)), &opts()).await;
    let stats = ep.stats();
    assert!(
        stats.reset_faults > 10,
        "resets injected: {}",
        stats.reset_faults
    );
    assert_eq!(
        (r.aborted, r.failed, r.unverified),
        (600, 0, 0),
        "{:?}",
        r.errors
    );
    assert_eq!(ep.upload_count("fault-bucket"), 0);
    eprintln!(
        "3% resets: {} connections reset, 600 uploads aborted and verified",
        stats.reset_faults
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_survive_retries_are_counted_and_keep_the_upload() {
    // Every request throttled: the listing fails after its retries, is counted by operation and
    // kind, and nothing is aborted.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "x", 5);
    ep.set_faults(Faults {
        slowdown_fraction: 1.0,
        ..Faults::default()
    });
    let t = target(
        "fault-bucket",
        Settings {
            retry_max_attempts: 2,
            ..settings(&ep)
        },
    );
    let r = run(&t, &opts()).await;
    assert_eq!(r.aborted, 0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(
        (
            r.errors[0].operation.as_str(),
            r.errors[0].kind.as_str(),
            r.errors[0].count
        ),
        ("list_uploads", "throttled", 1)
    );
    assert!(r.error.unwrap().contains("SlowDown"));
    assert_eq!(ep.upload_count("fault-bucket"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_parts_and_abort_failures_are_retried_then_classified() {
    // ListParts and AbortMultipartUpload on their own (the lean signed path): each fault is retried
    // exactly `retry_max_attempts` times, then reported with its operation and kind; the upload stays.
    let ep = endpoint().await;
    seed_old(&ep, "lean-bucket", "l", 1);
    let s = Settings {
        retry_max_attempts: 3,
        read_timeout: HumanDuration(Duration::from_millis(150)),
        ..settings(&ep)
    };
    let store = Connector::with_static_credentials(AK, SK)
        .store("lean-bucket", &s)
        .await
        .unwrap();
    assert_eq!(store.request_path(), "lean");
    let snapshot = ep.uploads("lean-bucket").remove(0);
    let id = snapshot.upload_id.clone();
    let Parts::Listed(parts) = store.list_parts("l0", &id).await.unwrap() else {
        panic!("the upload is listed");
    };
    let got: Vec<(i32, u64, &str)> = parts
        .iter()
        .map(|p| (p.number, p.size, p.etag.as_str()))
        .collect();
    let want: Vec<(i32, u64, &str)> = snapshot
        .parts
        .iter()
        .map(|p| (p.part_number as i32, p.size, p.etag.as_str()))
        .collect();
    assert_eq!(got, want);
    assert!(parts.iter().all(|p| p.last_modified.is_some()));
    let cases: [(Faults, &str); 3] = [
        (
            Faults {
                slowdown_fraction: 1.0,
                ..Faults::default()
            },
            "throttled",
        ),
        (
            Faults {
                reset_fraction: 1.0,
                ..Faults::default()
            },
            "network",
        ),
        (
            Faults {
                latency: Duration::from_millis(400),
                ..Faults::default()
            },
            "timeout",
        ),
    ];
    for (faults, kind) in cases {
        ep.set_faults(faults);
        ep.reset_stats();
        let e = store.list_parts("l0", &id).await.unwrap_err();
        assert_eq!(
            (e.operation.as_str(), e.kind.as_str()),
            ("list_parts", kind),
            "{e}"
        );
        let e = store.abort("l0", &id).await.unwrap_err();
        assert_eq!(
            (e.operation.as_str(), e.kind.as_str()),
            ("abort", kind),
            "{e}"
        );
        assert_eq!(ep.stats().requests, 6, "{kind}: 3 attempts for each call");
        assert_eq!(ep.upload_count("lean-bucket"), 1, "{kind}");
    }
    ep.set_faults(Faults::default());
    assert_eq!(store.abort("l0", &id).await.unwrap(), Aborted::Accepted);
    assert_eq!(store.list_parts("l0", &id).await.unwrap(), Parts::Gone);
    assert_eq!(store.abort("l0", &id).await.unwrap(), Aborted::NoSuchUpload);
    assert_eq!(ep.upload_count("lean-bucket"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_and_keep_every_upload() {
    // Answers slower than read_timeout: timeouts are retried, then counted; nothing is touched.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "s", 3);
    ep.set_faults(Faults {
        latency: Duration::from_millis(800),
        ..Faults::default()
    });
    let t = target(
        "fault-bucket",
        Settings {
            read_timeout: HumanDuration(Duration::from_millis(200)),
            retry_max_attempts: 2,
            ..settings(&ep)
        },
    );
    let started = Instant::now();
    let r = run(&t, &opts()).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.aborted, 0);
    assert_eq!(r.errors[0].kind.as_str(), "timeout", "{:?}", r.errors);
    assert_eq!(ep.stats().abort_multipart_upload, 0);
    assert_eq!(ep.upload_count("fault-bucket"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_target_never_stops_the_others() {
    // Access denied on one bucket, a missing bucket, and two healthy ones, in one run.
    let ep = endpoint().await;
    seed_old(&ep, "good-one", "a", 10);
    seed_old(&ep, "denied", "a", 10);
    seed_old(&ep, "good-two", "a", 10);
    ep.set_faults(Faults {
        fail_buckets: ["denied".to_string()].into(),
        ..Faults::default()
    });
    let s = settings(&ep);
    let targets: Vec<Target> = ["good-one", "denied", "no-such-bucket", "good-two"]
        .iter()
        .map(|b| target(b, s.clone()))
        .collect();
    let run = sweep_targets(
        &targets,
        &Connector::with_static_credentials(AK, SK),
        &opts(),
        4,
    )
    .await;
    let aborted: Vec<u64> = run.targets.iter().map(|t| t.aborted).collect();
    assert_eq!(aborted, [10, 0, 0, 10]);
    assert!(
        run.targets[1]
            .error
            .as_ref()
            .unwrap()
            .contains("AccessDenied")
    );
    assert!(
        run.targets[2]
            .error
            .as_ref()
            .unwrap()
            .contains("NoSuchBucket")
    );
    assert_eq!(run.exit_code(), 1);
    assert_eq!(ep.upload_count("denied"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrustworthy_initiation_times_are_kept_and_reported() {
    // An upload "initiated" tomorrow (a clock is wrong somewhere) is never aborted.
    let ep = endpoint().await;
    ep.create_bucket("fault-bucket");
    ep.seed_upload(
        "fault-bucket",
        "from-the-future",
        Utc::now() + TimeDelta::days(1),
        &[(1, 10)],
    );
    ep.seed_upload(
        "fault-bucket",
        "old",
        Utc::now() - TimeDelta::days(30),
        &[(1, 10)],
    );
    let t = target(
        "fault-bucket",
        Settings {
            older_than: HumanDuration::secs(3_600),
            ..settings(&ep)
        },
    );
    let r = run(&t, &opts()).await;
    assert_eq!((r.aborted, r.skipped_suspicious), (1, 1));
    let kept = r
        .uploads
        .iter()
        .find(|u| u.key == "from-the-future")
        .unwrap();
    assert_eq!(kept.outcome, Outcome::Kept);
    let left: HashSet<String> = ep
        .uploads("fault-bucket")
        .into_iter()
        .map(|u| u.key)
        .collect();
    assert_eq!(left, HashSet::from(["from-the-future".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_sweep_starts_no_new_abort_and_verifies_those_in_flight() {
    // Slow answers; cancel once some aborts happened. Every upload is either verified gone or
    // still there untouched, and the report's figures add up.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "c", 200);
    ep.set_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let t = target(
        "fault-bucket",
        Settings {
            concurrency: 4,
            ..settings(&ep)
        },
    );
    let opts = opts();
    let cancel = opts.cancel.clone();
    let sweeping = tokio::spawn({
        let t = t.clone();
        let opts = opts.clone();
        async move { run(&t, &opts).await }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while ep.stats().aborts_removed < 10 {
        assert!(Instant::now() < deadline, "no aborts happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let r = sweeping.await.unwrap();
    let stats = ep.stats();
    assert!(r.aborted >= 10 && r.aborted < 200, "aborted {}", r.aborted);
    assert_eq!(
        r.aborted, stats.aborts_removed,
        "every abort sent was verified and reported"
    );
    assert_eq!(r.unverified + r.failed, 0);
    assert_eq!(ep.upload_count("fault-bucket") as u64, 200 - r.aborted);
    assert_eq!(r.stale, r.aborted + r.interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_targets_in_one_run_share_one_client_and_a_global_cap() {
    // 1,000 buckets of 3 uploads each: every target swept, with one connection pool and at most
    // 64 uploads in flight in all (the process's open files stay far below the usual 1,024 limit).
    let ep = endpoint().await;
    let s = settings(&ep);
    let targets: Vec<Target> = (0..1_000)
        .map(|i| {
            let bucket = format!("many-targets-{i:04}");
            seed_old(&ep, &bucket, "u", 3);
            target(&bucket, s.clone())
        })
        .collect();
    let opts = SweepOptions {
        global_limit: Some(Arc::new(tokio::sync::Semaphore::new(64))),
        ..opts()
    };
    let fds = || {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = fds();
    let run = sweep_targets(
        &targets,
        &Connector::with_static_credentials(AK, SK),
        &opts,
        16,
    )
    .await;
    assert_eq!(run.targets.len(), 1_000);
    assert!(
        run.targets
            .iter()
            .all(|t| t.aborted == 3 && t.error.is_none())
    );
    assert_eq!(run.exit_code(), 0);
    let after = fds();
    assert!(
        after < before + 400 && after < 900,
        "file descriptors grew from {before} to {after}"
    );
}
