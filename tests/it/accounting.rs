//! One upload, one outcome, one count: a listing that gives an upload twice (an inclusive marker,
//! a repeated page) gets it aborted and counted once, and an upload already gone at this process's
//! first abort (its writer completed it, or another process aborted it) is reported
//! `gone_before_abort` with nothing reclaimed. Scripted answers of the hostile endpoint
//! (common::hostile), on both request paths; each asserts the exact requests sent.

use std::collections::HashMap;

use mpu_janitor::report::Outcome;

use crate::common::hostile::{
    Hostile, PATHS, Seen, honest, listing, no_such_upload, ok, on, sweep_on, two_days_ago,
    upload_id,
};

/// The DELETEs among `seen`, by upload id.
fn aborts_by_id(seen: &[Seen]) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for s in seen.iter().filter(|s| s.is_abort()) {
        *n.entry(upload_id(s).to_string()).or_default() += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inclusive_marker_repeats_an_upload_that_is_still_aborted_and_counted_once() {
    // Page 1 ends at k3/u3, and page 2 starts with k3/u3 again (scality backbeat #247).
    let old = two_days_ago();
    let page1 = listing(
        &[("k1", "u1", &old), ("k2", "u2", &old), ("k3", "u3", &old)],
        Some(("k3", "u3")),
    );
    let page2 = listing(
        &[("k3", "u3", &old), ("k4", "u4", &old), ("k5", "u5", &old)],
        None,
    );
    for path in PATHS {
        let (page1, page2) = (page1.clone(), page2.clone());
        let h = Hostile::start(move |req, earlier| {
            if req.is_listing() {
                ok(if req.uri.contains("key-marker=k3") {
                    page2.clone()
                } else {
                    page1.clone()
                })
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        let seen = h.seen();
        let path = format!("{path:?}");
        assert_eq!(r.error, None, "{path}");
        assert_eq!(
            (r.uploads_seen, r.stale, r.aborted, r.listing_repeats),
            (5, 5, 5, 1),
            "{path}: {r:?}"
        );
        assert_eq!(
            r.reclaimed_bytes,
            5 * 2_000,
            "{path}: each upload's bytes once"
        );
        assert_eq!(r.abort_attempts, 5, "{path}");
        let aborts = aborts_by_id(&seen);
        assert_eq!(aborts.len(), 5, "{path}: {aborts:?}");
        assert!(
            aborts.values().all(|&n| n == 1),
            "{path}: one DELETE each: {aborts:?}"
        );
        assert_eq!(seen.iter().filter(|s| s.is_listing()).count(), 2, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_page_is_not_processed_again_before_the_marker_check_stops_it() {
    // A store that ignores the marker: every listing gives the same truncated page (s3cmd#1360).
    let old = two_days_ago();
    let page = listing(
        &[("a", "ua", &old), ("b", "ub", &old), ("c", "uc", &old)],
        Some(("c", "uc")),
    );
    for path in PATHS {
        let page = page.clone();
        let h = Hostile::start(move |req, earlier| {
            if req.is_listing() {
                ok(page.clone())
            } else {
                honest(req, earlier)
            }
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        let seen = h.seen();
        let path = format!("{path:?}");
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("same page marker twice"), "{path}: {e}");
        assert_eq!(
            (r.uploads_seen, r.aborted, r.listing_repeats),
            (3, 3, 3),
            "{path}: {r:?}"
        );
        assert_eq!(r.reclaimed_bytes, 3 * 2_000, "{path}");
        let aborts = aborts_by_id(&seen);
        assert_eq!(aborts.len(), 3, "{path}: {aborts:?}");
        assert!(aborts.values().all(|&n| n == 1), "{path}: {aborts:?}");
        assert_eq!(seen.iter().filter(|s| s.is_listing()).count(), 2, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_completed_before_its_abort_is_gone_before_abort_and_reclaims_nothing() {
    // "done" was completed by its writer between the janitor's ListParts and its abort: the
    // abort answers NoSuchUpload, as does the ListParts after it.
    let old = two_days_ago();
    let body = listing(
        &[("done", "u-done", &old), ("stale", "u-stale", &old)],
        None,
    );
    for path in PATHS {
        let body = body.clone();
        let h = Hostile::start(move |req, earlier| {
            if req.is_listing() {
                return ok(body.clone());
            }
            if req.is_abort() && upload_id(req) == "u-done" {
                return no_such_upload();
            }
            honest(req, earlier)
        })
        .await;
        let r = sweep_on(&on(&h, path)).await;
        let seen = h.seen();
        let path = format!("{path:?}");
        assert_eq!(r.error, None, "{path}");
        assert_eq!(
            (r.aborted, r.gone_before_abort, r.stale),
            (1, 1, 1),
            "{path}: {r:?}"
        );
        assert_eq!(
            r.reclaimed_bytes, 2_000,
            "{path}: only the upload this process aborted"
        );
        assert_eq!(r.abort_attempts, 2, "{path}");
        let done = r.uploads.iter().find(|u| u.upload_id == "u-done").unwrap();
        assert_eq!(done.outcome, Outcome::GoneBeforeAbort, "{path}");
        assert!(!r.is_failure(), "{path}: not a failure");
        // One ListParts before the abort, one DELETE, one verifying ListParts.
        let calls: Vec<&Seen> = seen.iter().filter(|s| upload_id(s) == "u-done").collect();
        assert_eq!(calls.len(), 3, "{path}: {calls:?}");
        assert!(calls[1].is_abort(), "{path}: {calls:?}");
    }
}
