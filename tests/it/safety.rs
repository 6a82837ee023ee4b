//! Safety: what the janitor must not touch or must not let spread. Fresh and idle uploads, dry run
//! and plan (through the binary) on every real server, the per-run cap and a missing bucket on Garage; untrustworthy
//! initiation times, cancellation mid-sweep and one failing target among healthy ones on the
//! embedded endpoint; a host clock days off the store's, and a store that sends no Date.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::discover::Scope;
use mpu_janitor::policy::ClockSource;
use mpu_janitor::report::Outcome;
use mpu_janitor::run::sweep_targets;
use mpu_janitor::sweep::SweepOptions;
use s3_mem::Faults;
use serde_json::Value;

use crate::common::endpoint::{TWO_PARTS, connector, endpoint, opts, seed_old, settings, sweep};
use crate::common::garage::{garage, list_all, put_part, seed, seed_many, wait_older_than_1s};
use crate::common::server::servers;
use crate::common::target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_uploads_are_untouched() {
    // Uploads younger than older_than are listed and counted, never aborted.
    for g in servers() {
        eprintln!("== on {}", g.name);
        let client = g.client();
        let bucket = g.bucket("fresh").await;
        seed_many(&client, &bucket, 25, |i| (format!("f/{i}"), vec![2])).await;
        let r = g.sweep_at(&target(&bucket, g.settings()), 0).await;
        assert_eq!(
            (r.uploads_seen, r.skipped_fresh, r.stale, r.abort_attempts),
            (25, 25, 0, 0)
        );
        assert_eq!(list_all(&client, &bucket).await.len(), 25);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_for_keeps_an_old_upload_that_just_received_a_part() {
    // Both uploads are older than older_than; only one received a part within idle_for.
    for g in servers() {
        eprintln!("== on {}", g.name);
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
                ..g.settings()
            },
        );
        let r = g.sweep_at(&t, 0).await;
        assert_eq!(r.error, None);
        assert_eq!((r.aborted, r.skipped_idle), (1, 1), "{:?}", r.uploads);
        assert_eq!(r.uploads[0].upload_id, quiet);
        let left = list_all(&client, &bucket).await;
        assert_eq!(left, [("busy".to_string(), busy)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_reports_what_it_would_do() {
    for g in servers() {
        eprintln!("== on {}", g.name);
        let client = g.client();
        let bucket = g.bucket("dry").await;
        seed_many(&client, &bucket, 12, |i| (format!("d/{i}"), vec![4, 6])).await;
        let before = list_all(&client, &bucket).await;
        let t = target(
            &bucket,
            Settings {
                dry_run: true,
                ..g.settings()
            },
        );
        let r = g.sweep_at(&t, 8).await;
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
}

#[test]
fn plan_and_dry_run_list_uploads_and_change_nothing() {
    for g in servers() {
        eprintln!("== on {}", g.name);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = g.client();
        let b = rt.block_on(g.bucket("plan"));
        rt.block_on(seed_many(&client, &b, 4, |i| {
            (format!("p/{i}"), vec![10, 20, 30])
        }));
        let before = rt.block_on(list_all(&client, &b));
        wait_older_than_1s();
        let text = format!(
            "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{b}\"\n",
            g.defaults_toml()
        );
        let plan = g.janitor(&text, &["plan", "--output", "json"]);
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let report: Value = serde_json::from_str(&plan.stdout).unwrap();
        let uploads = report["targets"][0]["uploads"].as_array().unwrap();
        assert_eq!(uploads.len(), 4);
        assert!(
            uploads
                .iter()
                .all(|u| u["outcome"] == "would_abort" && u["bytes"] == 60 && u["parts"] == 3)
        );
        let table = g.janitor(&text, &["plan"]);
        assert!(
            table.stdout.contains("4 stale of 4") && table.stdout.contains("p/3"),
            "{}",
            table.stdout
        );
        let dry = g.janitor(&text, &["once", "--dry-run", "--output", "json"]);
        assert_eq!(dry.code, 0);
        let report: Value = serde_json::from_str(&dry.stdout).unwrap();
        assert_eq!(report["dry_run"], true);
        assert_eq!(report["targets"][0]["would_abort"], 4);
        assert_eq!(rt.block_on(list_all(&client, &b)), before);
    }
}

#[test]
fn plan_kept_lists_every_kept_upload_with_its_reason_and_what_each_exclusion_matched() {
    // Two excluded uploads under keep/, one stale under tmp/, and an exclusion with a typo
    // ("tmpp/") that matches nothing; after the wait, a fresh one. Nothing changes.
    for g in servers() {
        eprintln!("== on {}", g.name);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = g.client();
        let b = rt.block_on(g.bucket("kept"));
        for key in ["keep/a", "keep/b", "tmp/stale"] {
            rt.block_on(seed(&client, &b, key, &[10]));
        }
        wait_older_than_1s();
        rt.block_on(seed(&client, &b, "tmp/fresh", &[10]));
        let before = rt.block_on(list_all(&client, &b));
        let text = format!(
            "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{b}\"\nexclude_prefixes = [\"keep/\", \"tmpp/\"]\n",
            g.defaults_toml()
        );
        // Only a fresh upload remains younger than 1 s until the plan has listed: run at once.
        let plan = g.janitor(&text, &["plan", "--kept", "--output", "json"]);
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        let report: Value = serde_json::from_str(&plan.stdout).unwrap();
        let t = &report["targets"][0];
        let mut rows: Vec<(String, String)> = t["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let what = match u["reason"].as_str() {
                    Some(r) => r.to_string(),
                    None => u["outcome"].as_str().unwrap().to_string(),
                };
                (u["key"].as_str().unwrap().to_string(), what)
            })
            .collect();
        rows.sort();
        let fresh_or_stale = rows.iter().find(|r| r.0 == "tmp/fresh").unwrap().1.clone();
        assert!(
            ["fresh", "would_abort"].contains(&fresh_or_stale.as_str()),
            "{rows:?}"
        );
        assert_eq!(
            rows,
            [
                ("keep/a".to_string(), "excluded".to_string()),
                ("keep/b".to_string(), "excluded".to_string()),
                ("tmp/fresh".to_string(), fresh_or_stale),
                ("tmp/stale".to_string(), "would_abort".to_string()),
            ]
        );
        assert_eq!(
            t["exclusions"],
            serde_json::json!([{"prefix": "keep/", "uploads": 2}, {"prefix": "tmpp/", "uploads": 0}])
        );
        let table = g.janitor(&text, &["plan", "--kept"]);
        assert!(
            table
                .stdout
                .contains("exclusions: \"keep/\" kept 2, \"tmpp/\" kept none (a typo?)")
                && table.stdout.contains("keep:excluded"),
            "{}",
            table.stdout
        );
        // Without --kept, only the stale are listed; the exclusions are still counted.
        let plain = g.janitor(&text, &["plan", "--output", "json"]);
        let report: Value = serde_json::from_str(&plain.stdout).unwrap();
        let keys: Vec<&str> = report["targets"][0]["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["key"].as_str().unwrap())
            .collect();
        assert!(!keys.contains(&"keep/a"), "{keys:?}");
        assert_eq!(report["targets"][0]["exclusions"][0]["uploads"], 2);
        assert_eq!(rt.block_on(list_all(&client, &b)), before);
    }
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
            ..g.settings()
        },
    );
    let r = g.sweep_at(&t, 8).await;
    assert_eq!((r.aborted, r.capped, r.cap_reached), (10, 20, true));
    assert_eq!(list_all(&client, &bucket).await.len(), 20);
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
    let r = sweep(&t, &opts()).await;
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
    seed_old(&ep, "fault-bucket", "c", 200, TWO_PARTS);
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
        async move { sweep(&t, &opts).await }
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
async fn one_failing_target_never_stops_the_others() {
    // Access denied on one bucket, a missing bucket, and two healthy ones, in one run.
    let ep = endpoint().await;
    seed_old(&ep, "good-one", "a", 10, TWO_PARTS);
    seed_old(&ep, "denied", "a", 10, TWO_PARTS);
    seed_old(&ep, "good-two", "a", 10, TWO_PARTS);
    ep.set_faults(Faults {
        fail_buckets: ["denied".to_string()].into(),
        ..Faults::default()
    });
    let s = settings(&ep);
    let targets: Vec<Target> = ["good-one", "denied", "no-such-bucket", "good-two"]
        .iter()
        .map(|b| target(b, s.clone()))
        .collect();
    let run = sweep_targets(&targets, &connector(), &opts(), 4, &Scope::default()).await;
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
    assert_eq!(run.exit_code(), mpu_janitor::exit::Exit::Failed);
    assert_eq!(ep.upload_count("denied"), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_an_error_not_a_crash() {
    let g = garage();
    let r = g
        .sweep_at(&target("no-such-bucket-here", g.settings()), 8)
        .await;
    let e = r.error.expect("an error");
    assert!(e.contains("NoSuchBucket"), "{e}");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].kind.as_str(), "no_such_bucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_clock_days_off_never_ages_an_upload() {
    // The host clock 8 days ahead of the store's, 8 days behind, and 2 minutes ahead (within
    // max_clock_skew), with older_than 7d: 3 uploads started a minute ago and 3 started 10 days ago
    // on the store's clock. The fresh ones are never aborted, the old ones always are, and the skew
    // is measured and reported.
    for (offset, source) in [
        (TimeDelta::days(8), ClockSource::Server),
        (TimeDelta::days(-8), ClockSource::Server),
        (TimeDelta::minutes(2), ClockSource::Host),
    ] {
        let ep = endpoint().await;
        ep.create_bucket("clock");
        let store_now = Utc::now();
        for i in 0..3 {
            let fresh = store_now - TimeDelta::minutes(1);
            ep.seed_upload("clock", &format!("fresh/{i}"), fresh, TWO_PARTS);
            let old = store_now - TimeDelta::days(10);
            ep.seed_upload("clock", &format!("old/{i}"), old, TWO_PARTS);
        }
        let t = target(
            "clock",
            Settings {
                older_than: HumanDuration::secs(7 * 86_400),
                ..settings(&ep)
            },
        );
        let host = SweepOptions {
            now: Utc::now() + offset,
            ..opts()
        };
        let r = sweep(&t, &host).await;
        let off = offset.num_seconds();
        assert_eq!(r.error, None, "host {off} s off");
        assert_eq!(
            (
                r.uploads_seen,
                r.aborted,
                r.skipped_fresh,
                r.reclaimed_bytes
            ),
            (6, 3, 3, 6_000),
            "host {off} s off"
        );
        assert_eq!(r.clock, Some(source), "host {off} s off");
        let skew = r.clock_skew_seconds.expect("the store sent a Date");
        assert!(
            (skew + off).abs() <= 3,
            "skew {skew} s for a host {off} s off"
        );
        let left: HashSet<String> = ep.uploads("clock").into_iter().map(|u| u.key).collect();
        let fresh: HashSet<String> = (0..3).map(|i| format!("fresh/{i}")).collect();
        assert_eq!(
            left, fresh,
            "host {off} s off: exactly the fresh uploads are left"
        );
        eprintln!(
            "host {off:>7} s off: {} aborted, {} fresh kept, clock {:?}, skew {skew} s",
            r.aborted, r.skipped_fresh, r.clock
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_a_date_header_ages_nothing_unless_the_host_clock_is_trusted() {
    // The store sends no Date: the host clock cannot be checked, so nothing is aborted and the
    // target says why; with trust_host_clock = true the host's clock is used and all are aborted.
    let ep = endpoint().await;
    seed_old(&ep, "nodate", "k/", 4, TWO_PARTS);
    ep.update_faults(|f| f.no_date = true);
    let r = sweep(&target("nodate", settings(&ep)), &opts()).await;
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.contains("no usable Date") && error.contains("trust_host_clock"),
        "{error:?}"
    );
    assert_eq!((r.uploads_seen, r.stale, r.aborted), (4, 0, 0));
    assert_eq!(ep.stats().abort_multipart_upload, 0);
    assert_eq!(ep.upload_count("nodate"), 4);
    let trusted = Settings {
        trust_host_clock: true,
        ..settings(&ep)
    };
    let r = sweep(&target("nodate", trusted), &opts()).await;
    assert_eq!((r.error.as_deref(), r.aborted), (None, 4));
    assert_eq!(
        (r.clock, r.clock_skew_seconds),
        (Some(ClockSource::Host), None)
    );
    assert_eq!(ep.upload_count("nodate"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_store_dates_before_its_bucket_is_never_aborted() {
    // The store says these uploads began in 2010 and 30 days ago, but ListBuckets says their
    // bucket was created yesterday: one of the two dates is a lie, and the janitor keeps them.
    // An upload dated after the bucket's creation is aged as usual. On both request paths.
    for path in crate::common::hostile::PATHS {
        let ep = endpoint().await;
        let bucket = "liar";
        ep.create_bucket(bucket);
        let moto = chrono::DateTime::parse_from_rfc3339("2010-11-10T20:48:33Z")
            .unwrap()
            .to_utc();
        ep.seed_upload(bucket, "moto-dated", moto, &[(1, 10)]);
        ep.seed_upload(
            bucket,
            "month-old",
            Utc::now() - TimeDelta::days(30),
            &[(1, 10)],
        );
        ep.set_bucket_created(bucket, Utc::now() - TimeDelta::days(1));
        ep.seed_upload(
            bucket,
            "half-day-old",
            Utc::now() - TimeDelta::hours(12),
            &[(1, 10)],
        );
        let t = target(
            bucket,
            Settings {
                older_than: HumanDuration::secs(3_600),
                request_path: path,
                ..settings(&ep)
            },
        );
        let r = sweep(&t, &opts()).await;
        assert_eq!((r.aborted, r.skipped_suspicious), (1, 2), "{path:?}");
        let created = r
            .bucket_created
            .expect("the bucket's creation date is in the report");
        assert!(Utc::now() - created > TimeDelta::hours(23), "{created}");
        for key in ["moto-dated", "month-old"] {
            let u = r.uploads.iter().find(|u| u.key == key).unwrap();
            assert_eq!(u.outcome, Outcome::Kept, "{key}");
            let json = serde_json::to_value(u).unwrap();
            assert_eq!(json["reason"], "initiated_before_bucket", "{key}");
            assert!(
                u.detail
                    .as_deref()
                    .unwrap_or("")
                    .contains("before its bucket was created"),
                "{key}: {:?}",
                u.detail
            );
        }
        let mut left: Vec<String> = ep.uploads(bucket).into_iter().map(|u| u.key).collect();
        left.sort();
        assert_eq!(left, ["month-old", "moto-dated"], "{path:?}");
        assert_eq!(ep.stats().list_buckets, 1, "one ListBuckets a sweep");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_s3s_fixed_initiated_date_is_not_believed() {
    // moto's S3 server answers every upload with Initiated 2010-11-10T20:48:33Z: uploads made a
    // second ago look 16 years old. ListBuckets dates the bucket now, so nothing is aborted.
    let moto = crate::common::moto_s3::MotoS3::start();
    moto.bucket("live-uploads").await;
    let client = moto.client().await;
    for key in ["a", "b"] {
        client
            .create_multipart_upload()
            .bucket("live-uploads")
            .key(key)
            .send()
            .await
            .expect("CreateMultipartUpload on moto");
    }
    let listed = client
        .list_multipart_uploads()
        .bucket("live-uploads")
        .send()
        .await
        .unwrap();
    let said = listed.uploads()[0].initiated().unwrap().to_string();
    assert!(said.starts_with("2010-11-10"), "moto's Initiated: {said}");
    let t = target(
        "live-uploads",
        Settings {
            older_than: HumanDuration::secs(86_400),
            ..moto.settings()
        },
    );
    let r = mpu_janitor::run::connect_and_sweep(&t, &connector_for_moto(), &opts()).await;
    assert_eq!((r.aborted, r.skipped_suspicious), (0, 2), "{:?}", r.error);
    assert!(r.uploads.iter().all(|u| u.outcome == Outcome::Kept));
    let left = client
        .list_multipart_uploads()
        .bucket("live-uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(
        left.uploads().len(),
        2,
        "moto's uploads are all still there"
    );
}

fn connector_for_moto() -> mpu_janitor::store::Connector {
    mpu_janitor::store::Connector::with_static_credentials("AKIAMOTOLEASE", "secret")
}
