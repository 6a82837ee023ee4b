//! Resilience under injected faults, over real HTTP with real SigV4 signing (the embedded endpoint
//! of `demo`, never a mock of the SDK): SlowDown, connection resets, a server clock an hour ahead,
//! errors that survive retries, ListParts and abort failures classified, slow answers timing out.

use std::time::{Duration, Instant};

use mpu_janitor::config::{HumanDuration, Settings};
use mpu_janitor::store::{Aborted, Parts, UploadStore};
use s3_mem::Faults;

use crate::common::endpoint::{TWO_PARTS, connector, endpoint, opts, seed_old, settings, sweep};
use crate::common::target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_slowdown_leaves_nothing_behind() {
    // 1,500 uploads (three listing pages, ~4,500 requests) with 5% of requests throttled.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "t/", 1_500, TWO_PARTS);
    ep.set_faults(Faults {
        slowdown_fraction: 0.05,
        ..Faults::default()
    });
    let r = sweep(&target("fault-bucket", settings(&ep)), &opts()).await;
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
    for mode in ["lean", "sdk"] {
        let ep = endpoint().await;
        seed_old(&ep, "skew-bucket", "s/", 20, TWO_PARTS);
        ep.set_faults(Faults {
            clock_ahead: Duration::from_secs(3_600),
            ..Faults::default()
        });
        let mut s = settings(&ep);
        if mode == "sdk" {
            s.request_path = mpu_janitor::config::RequestPathSetting::Sdk;
        }
        let r = sweep(&target("skew-bucket", s), &opts()).await;
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
    seed_old(&ep, "fault-bucket", "r/", 600, TWO_PARTS);
    ep.set_faults(Faults {
        reset_fraction: 0.03,
        ..Faults::default()
    });
    let r = sweep(&target("fault-bucket", settings(&ep)), &opts()).await;
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
    seed_old(&ep, "fault-bucket", "x", 5, TWO_PARTS);
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
    let r = sweep(&t, &opts()).await;
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
    seed_old(&ep, "lean-bucket", "l", 1, TWO_PARTS);
    let s = Settings {
        retry_max_attempts: 3,
        read_timeout: HumanDuration(Duration::from_millis(150)),
        ..settings(&ep)
    };
    let store = connector().store("lean-bucket", &s.client()).await.unwrap();
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
        let e = store.abort("l0", &id, None).await.unwrap_err();
        assert_eq!(
            (e.operation.as_str(), e.kind.as_str()),
            ("abort", kind),
            "{e}"
        );
        assert_eq!(ep.stats().requests, 6, "{kind}: 3 attempts for each call");
        assert_eq!(ep.upload_count("lean-bucket"), 1, "{kind}");
    }
    ep.set_faults(Faults::default());
    assert_eq!(
        store.abort("l0", &id, None).await.unwrap(),
        Aborted::Accepted
    );
    assert_eq!(store.list_parts("l0", &id).await.unwrap(), Parts::Gone);
    assert_eq!(
        store.abort("l0", &id, None).await.unwrap(),
        Aborted::NoSuchUpload
    );
    assert_eq!(ep.upload_count("lean-bucket"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out_and_keep_every_upload() {
    // Answers slower than read_timeout: timeouts are retried, then counted; nothing is touched.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "s", 3, TWO_PARTS);
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
    let r = sweep(&t, &opts()).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.aborted, 0);
    assert_eq!(r.errors[0].kind.as_str(), "timeout", "{:?}", r.errors);
    assert_eq!(ep.stats().abort_multipart_upload, 0);
    assert_eq!(ep.upload_count("fault-bucket"), 3);
}
