//! Verification: an abort counts only once the upload is proven gone. Stragglers (parts landing
//! after an abort) and never-empty uploads on the embedded endpoint; on every real server (Garage,
//! Ceph RGW, the JuiceFS gateway), a 1,100-part upload whose bytes (two ListParts pages; one on
//! JuiceFS, whose default page is 10,000 parts) are counted exactly.

use mpu_janitor::config::Settings;
use mpu_janitor::report::Outcome;
use s3_mem::Faults;

use crate::common::endpoint::{TWO_PARTS, endpoint, opts, seed_old, settings, sweep};
use crate::common::garage::put_part;
use crate::common::server::servers;
use crate::common::target;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stragglers_are_verified_after_exactly_n_plus_1_aborts() {
    // A part lands after each of the first N aborts; the upload is proven empty at abort N+1.
    let ep = endpoint().await;
    seed_old(&ep, "fault-bucket", "s", 4, TWO_PARTS);
    ep.set_faults(Faults {
        stragglers: [("s1".into(), 1), ("s2".into(), 2), ("s3".into(), 3)].into(),
        ..Faults::default()
    });
    let r = sweep(&target("fault-bucket", settings(&ep)), &opts()).await;
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
    seed_old(&ep, "fault-bucket", "k", 3, TWO_PARTS);
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
    let r = sweep(&t, &opts()).await;
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
async fn a_1100_part_upload_counts_every_byte() {
    // 1,100 parts of distinct sizes: ListParts needs two pages (one on JuiceFS, whose default page
    // is 10,000 parts) and the byte count must be exact.
    for g in servers() {
        eprintln!("== on {}", g.name);
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
        g.assert_part_paging(&bucket, "big", &id, 1_100).await;

        let r = g.sweep_at(&target(&bucket, g.settings()), 8).await;
        assert_eq!(r.error, None);
        assert_eq!(r.aborted, 1);
        assert_eq!(r.uploads[0].parts, 1_100);
        assert_eq!(r.reclaimed_bytes, want);
        assert_eq!(r.stale_bytes, want);
    }
}
