//! Listing: every stale upload is found and aborted, on every real server (Garage, Ceph RGW, the
//! JuiceFS gateway: pagination past 2,000 uploads, 1,300 uploads on one key across a page boundary,
//! keys that break naive URL and XML handling on both request paths, prefix and exclusions) and on
//! the embedded endpoint (1,000 targets in one run). JuiceFS pages 10,000 uploads when no
//! `max-uploads` is sent (the janitor sends none), so these fit one page there, and it refuses keys
//! with `.` or `..` segments: the scenarios assert both there.

use std::sync::Arc;
use std::time::Instant;

use mpu_janitor::config::Target;
use mpu_janitor::discover::Scope;
use mpu_janitor::run::sweep_targets;
use mpu_janitor::sweep::SweepOptions;

use crate::common::endpoint::{TWO_PARTS, connector, endpoint, opts, seed_old, settings};
use crate::common::garage::{list_all, seed, seed_many};
use crate::common::server::servers;
use crate::common::target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_past_2000_uploads_aborts_every_one() {
    // 2,150 uploads over several keys: three ListMultipartUploads pages (one on JuiceFS); all must
    // be aborted.
    for g in servers() {
        eprintln!("== on {}", g.name);
        let client = g.client();
        let bucket = g.bucket("pages").await;
        seed_many(&client, &bucket, 2_150, |i| {
            (format!("k/{:04}", i % 700), vec![])
        })
        .await;
        assert_eq!(list_all(&client, &bucket).await.len(), 2_150);
        // Three pages of at most 1,000, or one of 2,150 from a server whose default page is 10,000.
        g.assert_upload_paging(&bucket, 2_150).await;

        let started = Instant::now();
        let r = g.sweep_at(&target(&bucket, g.settings()), 8).await;
        eprintln!(
            "swept 2,150 uploads on {} in {:.2?}",
            g.name,
            started.elapsed()
        );
        assert_eq!(r.error, None);
        assert_eq!((r.uploads_seen, r.stale, r.aborted), (2_150, 2_150, 2_150));
        assert_eq!(r.abort_attempts, 2_150);
        assert!(list_all(&client, &bucket).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_uploads_on_one_key_across_a_page_boundary() {
    // 1,300 uploads on the same key, so a 1000-upload page ends among them, plus keys around it.
    for g in servers() {
        eprintln!("== on {}", g.name);
        let client = g.client();
        let bucket = g.bucket("onekey").await;
        seed_many(&client, &bucket, 1_300, |_| {
            ("same/key".to_string(), vec![])
        })
        .await;
        seed(&client, &bucket, "a-before", &[10]).await;
        seed(&client, &bucket, "z-after", &[20]).await;
        g.assert_upload_paging(&bucket, 1_302).await;

        let r = g.sweep_at(&target(&bucket, g.settings()), 8).await;
        assert_eq!(r.error, None);
        assert_eq!((r.uploads_seen, r.aborted), (1_302, 1_302));
        assert_eq!(r.reclaimed_bytes, 30);
        assert!(list_all(&client, &bucket).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_are_aborted_exactly_on_both_request_paths() {
    // Keys that break naive URL and XML handling, through the lean signed path and through the
    // SDK's own pipeline (request_path = "sdk").
    for g in servers() {
        eprintln!("== on {}", g.name);
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
        // JuiceFS keys are paths in its file system: it refuses `.` and `..` segments.
        let (keys, refused): (Vec<&str>, Vec<&str>) = keys.into_iter().partition(|k| {
            !(g.quirks.no_dot_segments && k.split('/').any(|s| s == "." || s == ".."))
        });
        for mode in ["lean", "sdk"] {
            let bucket = g.bucket(&format!("oddkeys-{mode}")).await;
            for k in &keys {
                seed(&client, &bucket, k, &[3]).await;
            }
            for k in &refused {
                let e = client
                    .create_multipart_upload()
                    .bucket(&bucket)
                    .key(*k)
                    .send()
                    .await
                    .expect_err(&format!("{}: {k:?} is refused", g.name));
                let code = e.into_service_error().meta().code().map(str::to_string);
                assert_eq!(
                    code.as_deref(),
                    Some("XMinioInvalidResourceName"),
                    "{}",
                    g.name
                );
                eprintln!(
                    "{}: refuses the key {k:?} (XMinioInvalidResourceName)",
                    g.name
                );
            }
            let mut s = g.settings();
            if mode == "sdk" {
                s.request_path = mpu_janitor::config::RequestPathSetting::Sdk;
            }
            let store = g.connector().store(&bucket, &s.client()).await.unwrap();
            assert_eq!(store.request_path(), mode);
            let r = g.sweep_at(&target(&bucket, s), 8).await;
            assert_eq!(r.error, None, "{mode}: {r:?}");
            assert_eq!(r.aborted, keys.len() as u64, "{mode}: {:?}", r.uploads);
            assert_eq!(r.reclaimed_bytes, 3 * keys.len() as u64, "{mode}");
            let mut reported: Vec<&str> = r.uploads.iter().map(|u| u.key.as_str()).collect();
            reported.sort();
            let mut want = keys.clone();
            want.sort();
            assert_eq!(reported, want, "{mode}");
            assert!(list_all(&client, &bucket).await.is_empty(), "{mode}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_and_exclusions_limit_what_is_touched() {
    // Only tmp/ is swept, and tmp/keep/ inside it is excluded.
    for g in servers() {
        eprintln!("== on {}", g.name);
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
        let mut t = target(&bucket, g.settings());
        t.prefix = "tmp/".into();
        t.exclude_prefixes = vec!["tmp/keep/".into()];
        let r = g.sweep_at(&t, 8).await;
        assert_eq!(r.error, None);
        assert_eq!((r.uploads_seen, r.aborted, r.skipped_excluded), (3, 2, 1));
        let left: Vec<String> = list_all(&client, &bucket)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(left, ["keep/a", "other/a", "tmp/keep/x", "tmpx"]);
    }
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
            seed_old(&ep, &bucket, "u", 3, TWO_PARTS);
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
    let run = sweep_targets(&targets, &connector(), &opts, 16, &Scope::default()).await;
    assert_eq!(run.targets.len(), 1_000);
    assert!(
        run.targets
            .iter()
            .all(|t| t.aborted == 3 && t.error.is_none())
    );
    assert_eq!(run.exit_code(), mpu_janitor::exit::Exit::Clean);
    let after = fds();
    assert!(
        after < before + 400 && after < 900,
        "file descriptors grew from {before} to {after}"
    );
}
