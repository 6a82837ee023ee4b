//! Unit tests of the report model: outcomes become figures, totals, exit codes.

use super::*;

#[test]
fn stale_bytes_fall_in_age_bands_and_the_oldest_stale_age_is_kept() {
    const DAY: u64 = 86_400;
    let mut t = TargetReport::default();
    let upload =
        |age: u64, bytes: u64, outcome: Outcome, reason: Option<KeepReason>| UploadReport {
            key: String::new(),
            upload_id: String::new(),
            initiated: None,
            age_seconds: age,
            parts: 1,
            bytes,
            outcome,
            abort_attempts: 0,
            parts_remaining: None,
            reason,
            error: None,
            detail: None,
            part_size: None,
        };
    for (age, bytes) in [
        (DAY - 1, 1),
        (DAY, 10),
        (7 * DAY - 1, 100),
        (7 * DAY, 1_000),
        (30 * DAY, 10_000),
        (90 * DAY, 100_000),
        (400 * DAY, 1_000_000),
    ] {
        t.record(&upload(age, bytes, Outcome::WouldAbort, None));
    }
    // Kept uploads are not stale: counted nowhere here.
    t.record(&upload(
        999 * DAY,
        7,
        Outcome::Kept,
        Some(KeepReason::Fresh),
    ));
    assert_eq!(
        t.stale_bytes_by_age.bands(),
        [
            ("under_1d", 1),
            ("1d_to_7d", 110),
            ("7d_to_30d", 1_000),
            ("30d_to_90d", 10_000),
            ("90d_and_over", 1_100_000),
        ]
    );
    assert_eq!(t.oldest_stale_age_seconds, Some(400 * DAY));
    assert_eq!(t.stale_bytes, 1_111_111);
    assert_eq!(TargetReport::default().oldest_stale_age_seconds, None);
}

#[test]
fn a_refused_abort_that_kept_a_replaced_upload_is_counted_as_a_call_not_as_stale() {
    let mut t = TargetReport::default();
    let replaced = UploadReport {
        key: "k".into(),
        upload_id: "id".into(),
        initiated: None,
        age_seconds: 86_400,
        parts: 1,
        bytes: 10,
        outcome: Outcome::Kept,
        abort_attempts: 1,
        parts_remaining: None,
        reason: Some(KeepReason::InitiatedTimeChanged),
        error: None,
        detail: None,
        part_size: None,
    };
    assert!(t.record(&replaced), "listed in the report");
    assert_eq!(
        (
            t.skipped_suspicious,
            t.abort_attempts,
            t.stale,
            t.stale_bytes
        ),
        (1, 1, 0, 0)
    );
}

#[test]
fn exit_code_reflects_failures() {
    let ok = TargetReport::default();
    let unverified = TargetReport {
        unverified: 1,
        ..Default::default()
    };
    let failed = TargetReport {
        error: Some("NoSuchBucket".into()),
        ..Default::default()
    };
    let run = |targets: Vec<TargetReport>| RunReport {
        run_id: String::new(),
        started_at: DateTime::UNIX_EPOCH,
        finished_at: DateTime::UNIX_EPOCH,
        dry_run: false,
        targets,
        interrupted: false,
        discovery: Vec::new(),
        export_errors: Vec::new(),
    };
    assert_eq!(run(vec![ok.clone()]).exit_code(), Exit::Clean);
    assert_eq!(
        run(vec![ok.clone(), unverified.clone()]).exit_code(),
        Exit::Failed
    );
    assert_eq!(run(vec![failed, ok.clone()]).exit_code(), Exit::Failed);
    let mut undiscovered = run(vec![ok.clone()]);
    undiscovered.discovery.push(DiscoveryReport {
        error: Some("ListBuckets failed (access_denied)".into()),
        ..Default::default()
    });
    assert_eq!(
        undiscovered.exit_code(),
        Exit::Failed,
        "a rule that cannot list fails the run"
    );

    // A shutdown: a target it cut short makes the run interrupted; a failure still wins.
    let cut = TargetReport {
        stopped_by_shutdown: true,
        ..Default::default()
    };
    let mut r = run(vec![ok.clone(), cut]);
    r.mark_interrupted();
    assert!(r.interrupted);
    assert_eq!(r.exit_code(), Exit::Interrupted);
    assert!(render_run_text(&r).contains("[INTERRUPTED]"));
    let mut r = run(vec![ok.clone()]);
    r.mark_interrupted();
    assert!(!r.interrupted, "nothing left undone");
    assert_eq!(r.exit_code(), Exit::Clean);
    let left = TargetReport {
        interrupted: 2,
        ..Default::default()
    };
    let mut r = run(vec![left, unverified]);
    r.mark_interrupted();
    assert!(r.interrupted);
    assert_eq!(r.exit_code(), Exit::Failed);
}
