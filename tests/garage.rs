//! Conformance against a real S3 server: Garage 2.5.0 on loopback, driven through the library's sweep
//! (with an injected "now" so uploads seeded a moment ago count as old) and through the binary.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{garage, list_all, put_part, seed, seed_many, settings, use_test_credentials};
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::report::{Outcome, TargetReport};
use mpu_janitor::store::Connector;
use mpu_janitor::sweep::{SweepOptions, connect_and_sweep};

const DAY: i64 = 86_400;

fn target(bucket: &str, settings: Settings) -> Target {
    Target {
        bucket: bucket.to_string(),
        prefix: String::new(),
        exclude_prefixes: vec![],
        settings,
    }
}

/// Sweeps `t` with "now" moved `days_later` days ahead of the real clock.
async fn sweep_at(t: &Target, days_later: i64) -> TargetReport {
    use_test_credentials();
    let opts = SweepOptions {
        now: Utc::now() + chrono::Duration::seconds(days_later * DAY),
        ..Default::default()
    };
    connect_and_sweep(t, &Connector::new(), &opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_past_2000_uploads_aborts_every_one() {
    // 2,150 uploads over several keys: three ListMultipartUploads pages; all must be aborted.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("pages").await;
    seed_many(&client, &bucket, 2_150, |i| {
        (format!("k/{:04}", i % 700), vec![])
    })
    .await;
    assert_eq!(list_all(&client, &bucket).await.len(), 2_150);

    let started = Instant::now();
    let r = sweep_at(&target(&bucket, settings(g)), 8).await;
    eprintln!("swept 2,150 uploads on Garage in {:.2?}", started.elapsed());
    assert_eq!(r.error, None);
    assert_eq!((r.uploads_seen, r.stale, r.aborted), (2_150, 2_150, 2_150));
    assert_eq!(r.abort_attempts, 2_150);
    assert!(list_all(&client, &bucket).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_uploads_on_one_key_across_a_page_boundary() {
    // 1,300 uploads on the same key, so a 1000-upload page ends among them, plus keys around it.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("onekey").await;
    seed_many(&client, &bucket, 1_300, |_| {
        ("same/key".to_string(), vec![])
    })
    .await;
    seed(&client, &bucket, "a-before", &[10]).await;
    seed(&client, &bucket, "z-after", &[20]).await;

    let r = sweep_at(&target(&bucket, settings(g)), 8).await;
    assert_eq!(r.error, None);
    assert_eq!((r.uploads_seen, r.aborted), (1_302, 1_302));
    assert_eq!(r.reclaimed_bytes, 30);
    assert!(list_all(&client, &bucket).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_are_aborted_exactly_on_both_request_paths() {
    // Keys that break naive URL and XML handling, through the lean signed path (standard retries)
    // and through the SDK's own pipeline (adaptive retries keep it).
    let g = garage();
    let client = g.client();
    let keys = [
        "with space",
        "plus+sign",
        "per%25cent%",
        "ünïcødé/日本語",
        "double//slash",
        "question?mark",
        "hash#tag",
        "amp&er=sand",
        "  leading",
        "tab\there",
        "<xml>&'\"",
        "./dot/../segments",
    ];
    for mode in ["standard", "adaptive"] {
        let bucket = g.bucket(&format!("oddkeys-{mode}")).await;
        for k in keys {
            seed(&client, &bucket, k, &[3]).await;
        }
        let mut s = settings(g);
        s.retry_mode = if mode == "adaptive" {
            mpu_janitor::config::RetryMode::Adaptive
        } else {
            mpu_janitor::config::RetryMode::Standard
        };
        use_test_credentials();
        let store = Connector::new().store(&bucket, &s).await.unwrap();
        assert_eq!(store.request_path() == "lean", mode == "standard", "{mode}");
        let r = sweep_at(&target(&bucket, s), 8).await;
        assert_eq!(r.error, None, "{mode}: {r:?}");
        assert_eq!(r.aborted, keys.len() as u64, "{mode}: {:?}", r.uploads);
        assert_eq!(r.reclaimed_bytes, 3 * keys.len() as u64, "{mode}");
        let mut reported: Vec<&str> = r.uploads.iter().map(|u| u.key.as_str()).collect();
        reported.sort();
        let mut want = keys.to_vec();
        want.sort();
        assert_eq!(reported, want, "{mode}");
        assert!(list_all(&client, &bucket).await.is_empty(), "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1100_part_upload_counts_every_byte() {
    // 1,100 parts of distinct sizes: ListParts needs two pages and the byte count must be exact.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("parts").await;
    let sizes: Vec<usize> = (1..=1_100).map(|i| i % 97 + 1).collect();
    let id = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key("big")
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    futures::future::join_all(sizes.chunks(100).enumerate().map(|(chunk, s)| {
        let (client, bucket, id) = (client.clone(), bucket.clone(), id.clone());
        let s = s.to_vec();
        async move {
            for (j, size) in s.iter().enumerate() {
                put_part(
                    &client,
                    &bucket,
                    "big",
                    &id,
                    (chunk * 100 + j + 1) as i32,
                    *size,
                )
                .await;
            }
        }
    }))
    .await;
    let want: u64 = sizes.iter().map(|s| *s as u64).sum();

    let r = sweep_at(&target(&bucket, settings(g)), 8).await;
    assert_eq!(r.error, None);
    assert_eq!(r.aborted, 1);
    assert_eq!(r.uploads[0].parts, 1_100);
    assert_eq!(r.reclaimed_bytes, want);
    assert_eq!(r.stale_bytes, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_and_exclusions_limit_what_is_touched() {
    // Only tmp/ is swept, and tmp/keep/ inside it is excluded.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("prefix").await;
    for k in [
        "tmp/a",
        "tmp/b/c",
        "tmp/keep/x",
        "tmpx",
        "other/a",
        "keep/a",
    ] {
        seed(&client, &bucket, k, &[1]).await;
    }
    let mut t = target(&bucket, settings(g));
    t.prefix = "tmp/".into();
    t.exclude_prefixes = vec!["tmp/keep/".into()];
    let r = sweep_at(&t, 8).await;
    assert_eq!(r.error, None);
    assert_eq!((r.uploads_seen, r.aborted, r.skipped_excluded), (3, 2, 1));
    let left: Vec<String> = list_all(&client, &bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, ["keep/a", "other/a", "tmp/keep/x", "tmpx"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_for_keeps_an_old_upload_that_just_received_a_part() {
    // Both uploads are older than older_than; only one received a part within idle_for.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("idle").await;
    let quiet = seed(&client, &bucket, "quiet", &[5]).await;
    let busy = seed(&client, &bucket, "busy", &[5]).await;
    let seeded = Utc::now();
    // Wait for the clock, not for a server: the uploads must be more than 2 s old.
    while Utc::now() - seeded < chrono::Duration::milliseconds(2_500) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    put_part(&client, &bucket, "busy", &busy, 2, 7).await;
    let t = target(
        &bucket,
        Settings {
            older_than: HumanDuration::secs(2),
            idle_for: HumanDuration::secs(2),
            ..settings(g)
        },
    );
    let r = sweep_at(&t, 0).await;
    assert_eq!(r.error, None);
    assert_eq!((r.aborted, r.skipped_idle), (1, 1), "{:?}", r.uploads);
    assert_eq!(r.uploads[0].upload_id, quiet);
    let left = list_all(&client, &bucket).await;
    assert_eq!(left, [("busy".to_string(), busy)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_uploads_are_untouched() {
    // Uploads younger than older_than are listed and counted, never aborted.
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("fresh").await;
    seed_many(&client, &bucket, 25, |i| (format!("f/{i}"), vec![2])).await;
    let r = sweep_at(&target(&bucket, settings(g)), 0).await;
    assert_eq!(
        (r.uploads_seen, r.skipped_fresh, r.stale, r.abort_attempts),
        (25, 25, 0, 0)
    );
    assert_eq!(list_all(&client, &bucket).await.len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_reports_what_it_would_do() {
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("dry").await;
    seed_many(&client, &bucket, 12, |i| (format!("d/{i}"), vec![4, 6])).await;
    let before = list_all(&client, &bucket).await;
    let t = target(
        &bucket,
        Settings {
            dry_run: true,
            ..settings(g)
        },
    );
    let r = sweep_at(&t, 8).await;
    assert_eq!(
        (r.stale, r.would_abort, r.aborted, r.abort_attempts),
        (12, 12, 0, 0)
    );
    assert_eq!(r.stale_bytes, 12 * 10);
    assert_eq!(r.reclaimed_bytes, 0);
    assert!(
        r.uploads
            .iter()
            .all(|u| u.outcome == Outcome::WouldAbort && u.parts == 2)
    );
    assert_eq!(list_all(&client, &bucket).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_aborts_per_run_caps_the_blast_radius() {
    let g = garage();
    let client = g.client();
    let bucket = g.bucket("cap").await;
    seed_many(&client, &bucket, 30, |i| (format!("c/{i}"), vec![1])).await;
    let t = target(
        &bucket,
        Settings {
            max_aborts_per_run: 10,
            ..settings(g)
        },
    );
    let r = sweep_at(&t, 8).await;
    assert_eq!((r.aborted, r.capped, r.cap_reached), (10, 20, true));
    assert_eq!(list_all(&client, &bucket).await.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_error_not_a_crash() {
    let g = garage();
    let r = sweep_at(&target("no-such-bucket-here", settings(g)), 8).await;
    let e = r.error.expect("an error");
    assert!(e.contains("NoSuchBucket"), "{e}");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].kind.as_str(), "no_such_bucket");
}
