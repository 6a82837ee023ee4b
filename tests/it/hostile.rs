//! A sweep against a hostile endpoint (common::hostile): every answer that could make it run without
//! bound, trust garbage, or hide what happened, on both request paths. Each asserts the exact
//! requests sent: above all, no abort from an answer that could not be read.

use std::time::Duration;

use mpu_janitor::config::{HumanDuration, RequestPathSetting, Settings, Target};
use mpu_janitor::policy::KeepReason;
use mpu_janitor::report::{Outcome, RunReport, TargetReport, render_run_text};
use mpu_janitor::run::connect_and_sweep;
use mpu_janitor::store::{Connector, ErrorKind};
use mpu_janitor::sweep::SweepOptions;

use crate::common::hostile::{Answer, Hostile, Seen, listing, ok, parts, two_days_ago, upload_id};
use crate::common::{settings_at, target};

/// The two request paths: the lean one (the default) and the SDK's (`request_path = "sdk"`).
fn both_paths(h: &Hostile) -> [(&'static str, Target); 2] {
    let lean = Settings {
        older_than: HumanDuration::secs(86_400),
        read_timeout: HumanDuration::secs(2),
        retry_max_attempts: 2,
        ..settings_at(&h.url)
    };
    let sdk = Settings {
        request_path: RequestPathSetting::Sdk,
        ..lean.clone()
    };
    [("lean", target("b", lean)), ("sdk", target("b", sdk))]
}

async fn sweep(t: &Target, opts: &SweepOptions) -> TargetReport {
    let connector = Connector::with_static_credentials("AKHOSTILE", "secret");
    // A sweep that does not end is a failure of the test, not a hang of the suite.
    tokio::time::timeout(
        Duration::from_secs(60),
        connect_and_sweep(t, &connector, opts),
    )
    .await
    .expect("the sweep ends on its own")
}

fn opts() -> SweepOptions {
    SweepOptions {
        reabort_backoff: Duration::from_millis(1),
        ..Default::default()
    }
}

/// Answers ListParts with two parts, then (after an abort since the last listing) NoSuchUpload;
/// aborts with 204.
fn honest_upload(req: &Seen, earlier: &[Seen]) -> Answer {
    let aborted = earlier
        .iter()
        .rev()
        .take_while(|s| !s.is_listing())
        .any(|s| s.is_abort() && upload_id(s) == upload_id(req));
    if req.is_abort() {
        Answer::Body(204, vec![], String::new())
    } else if aborted {
        Answer::Body(
            404,
            vec![],
            "<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>".into(),
        )
    } else {
        ok(parts([1, 2], None))
    }
}

/// A server answering every listing with `body` and every upload honestly.
async fn listing_then_honest(body: String) -> Hostile {
    Hostile::start(move |req, earlier| {
        if req.is_listing() {
            ok(body.clone())
        } else {
            honest_upload(req, earlier)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_listing_is_refused_and_nothing_is_aborted() {
    // A mismatched closing tag and no closing root element, with a stale upload inside.
    let old = two_days_ago();
    let body = format!(
        "<?xml version=\"1.0\"?><ListMultipartUploadsResult><IsTruncated>false</IsTruncated><Upload><Key>k</Key><UploadId>u1</UploadId><Initiated>{old}</Initiated></Uplod>"
    );
    let h = listing_then_honest(body).await;
    for (path, t) in both_paths(&h) {
        let r = sweep(&t, &opts()).await;
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("malformed XML at byte"), "{path}: {e}");
        assert_eq!((r.uploads_seen, r.aborted, r.stale), (0, 0, 0), "{path}");
    }
    let seen = h.seen();
    assert!(seen.iter().all(Seen::is_listing), "only listings: {seen:?}");
    assert_eq!(seen.len(), 2, "one listing per path, not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_entry_keeps_that_upload_and_the_rest_of_the_page_is_swept() {
    let old = two_days_ago();
    let body = listing(
        &[
            ("good", "u-good", &old),
            ("bad-date", "u-date", "last tuesday"),
            ("bad\u{1}key", "u-ctl", &old),
            ("epoch", "u-1970", "1970-01-01T00:00:00.000Z"),
        ],
        None,
    );
    let h = listing_then_honest(body).await;
    for (path, t) in both_paths(&h) {
        let before = h.seen().len();
        let r = sweep(&t, &opts()).await;
        assert_eq!(r.error, None, "{path}");
        assert_eq!((r.uploads_seen, r.aborted), (4, 1), "{path}: {r:?}");
        assert_eq!(r.skipped_suspicious, 3, "{path}");
        let kept = |id: &str| r.uploads.iter().find(|u| u.upload_id == id).unwrap();
        assert_eq!(kept("u-good").outcome, Outcome::Aborted);
        let date = kept("u-date");
        assert_eq!(
            (date.outcome, date.reason),
            (Outcome::Kept, Some(KeepReason::UnreadableEntry))
        );
        assert_eq!(
            date.detail.as_deref(),
            Some("Initiated is \"last tuesday\", not a date")
        );
        let ctl = kept("u-ctl");
        assert_eq!(ctl.reason, Some(KeepReason::UnreadableEntry), "{path}");
        assert!(
            ctl.detail
                .as_deref()
                .unwrap()
                .starts_with("Key holds characters XML cannot carry")
        );
        assert_eq!(kept("u-1970").reason, Some(KeepReason::AncientInitiated));
        // Requests: one listing, and ListParts, abort, ListParts for the good upload only.
        let sent: Vec<Seen> = h.seen()[before..].to_vec();
        let touched: Vec<&str> = sent
            .iter()
            .filter(|s| !s.is_listing())
            .map(upload_id)
            .collect();
        assert_eq!(touched, ["u-good", "u-good", "u-good"], "{path}: {sent:?}");
        let text = render_run_text(&RunReport {
            targets: vec![r],
            ..Default::default()
        });
        assert!(
            text.contains("kept: unreadable-entry (Initiated is \"last tuesday\", not a date)"),
            "{text}"
        );
        assert!(text.contains("kept: initiated-before-2006"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_page_larger_than_the_protocol_allows_is_refused_without_buffering_it() {
    // 200 MB of entries on one page (the protocol allows 1,000: well under 16 MiB).
    let old = two_days_ago();
    let h = Hostile::start(move |req, _| {
        assert!(req.is_listing(), "nothing but the listing: {req:?}");
        Answer::Huge {
            head: "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>".into(),
            chunk: format!(
                "<Upload><Key>k</Key><UploadId>u</UploadId><Initiated>{old}</Initiated></Upload>"
            ),
            total: 200 << 20,
        }
    })
    .await;
    let [(_, lean), _] = both_paths(&h);
    let r = sweep(&lean, &opts()).await;
    let e = r.error.as_deref().unwrap_or_default();
    assert!(e.contains("larger than 16 MiB"), "{e}");
    assert!(e.contains("protocol"), "{e}");
    assert_eq!((r.uploads_seen, r.aborted), (0, 0));
    let sent = h.bytes_sent();
    assert!(
        sent < 64 << 20,
        "stopped reading early: {sent} bytes sent of 200 MiB"
    );
    println!(
        "huge page: {} MiB sent before the janitor hung up",
        sent >> 20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_parts_that_never_ends_keeps_that_upload_and_the_others_are_swept() {
    // Upload `endless` answers ListParts with 1,000 parts a page, always truncated, the marker
    // always advancing; `honest` behaves.
    let old = two_days_ago();
    let body = listing(&[("a", "endless", &old), ("b", "honest", &old)], None);
    let h = Hostile::start(move |req, earlier| {
        if req.is_listing() {
            return ok(body.clone());
        }
        if upload_id(req) == "endless" {
            let page = earlier
                .iter()
                .rev()
                .take_while(|s| !s.is_listing())
                .filter(|s| upload_id(s) == "endless")
                .count() as u32;
            let first = page * 1000 + 1;
            return ok(parts(first..first + 1000, Some(first + 999)));
        }
        honest_upload(req, earlier)
    })
    .await;
    for (path, t) in both_paths(&h) {
        let before = h.seen().len();
        let r = sweep(&t, &opts()).await;
        assert_eq!((r.aborted, r.failed), (1, 1), "{path}");
        let endless = r.uploads.iter().find(|u| u.upload_id == "endless").unwrap();
        assert_eq!(endless.outcome, Outcome::Failed);
        assert!(
            endless
                .error
                .as_deref()
                .unwrap()
                .contains("part number 10001 is outside"),
            "{path}: {endless:?}"
        );
        assert_eq!(r.errors[0].kind, ErrorKind::Protocol);
        let sent = &h.seen()[before..];
        let endless_calls = sent
            .iter()
            .filter(|s| s.is_list_parts() && upload_id(s) == "endless")
            .count();
        assert_eq!(endless_calls, 11, "{path}: 11 pages of 1,000, then refused");
        assert!(
            !sent
                .iter()
                .any(|s| s.is_abort() && upload_id(s) == "endless"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_that_never_ends_stops_on_shutdown_as_interrupted() {
    // Every page is truncated with a marker past the last: a listing without end.
    let old = two_days_ago();
    let h = Hostile::start(move |req, earlier| {
        if req.is_abort() {
            return Answer::Body(204, vec![], String::new());
        }
        if !req.is_listing() {
            let gone = earlier
                .iter()
                .any(|s| s.is_abort() && upload_id(s) == upload_id(req));
            return match gone {
                true => Answer::Body(
                    404,
                    vec![],
                    "<Error><Code>NoSuchUpload</Code></Error>".into(),
                ),
                false => ok(parts([1], None)),
            };
        }
        let n = earlier.iter().filter(|s| s.is_listing()).count();
        let key = format!("k{n:08}");
        let next = format!("k{:08}", n + 1);
        ok(listing(&[(&key, &key, &old)], Some((&next, "x"))))
    })
    .await;
    let [(_, lean), _] = both_paths(&h);
    let opts = opts();
    let cancel = opts.cancel.clone();
    let sweeping = tokio::spawn(async move { sweep(&lean, &opts).await });
    // The janitor asks for page n + 1 only after counting page n: once 51 listings have
    // arrived, at least 50 pages are counted, whenever the cancellation lands (at 50 it could
    // drop the 50th answer in flight, and did in CI).
    while h.seen().iter().filter(|s| s.is_listing()).count() < 51 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    let r = sweeping.await.unwrap();
    assert!(
        r.stopped_by_shutdown,
        "the listing stopped before its last page"
    );
    assert_eq!(r.error, None);
    assert!(r.uploads_seen >= 50);
    let text = render_run_text(&RunReport {
        targets: vec![r],
        ..Default::default()
    });
    assert!(text.contains("[INTERRUPTED]"), "{text}");
    assert!(!text.contains("[ok]"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_listing_body_that_trickles_in_times_out_on_both_paths() {
    let old = two_days_ago();
    let body = listing(&[("k", "u", &old)], None).into_bytes();
    let h = Hostile::start(move |req, earlier| {
        if req.is_listing() {
            Answer::Trickle(body.clone(), Duration::from_millis(100))
        } else {
            honest_upload(req, earlier)
        }
    })
    .await;
    for (path, t) in both_paths(&h) {
        let started = std::time::Instant::now();
        let r = sweep(&t, &opts()).await;
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("(timeout)"), "{path}: {e}");
        assert_eq!(r.aborted, 0);
        println!(
            "{path}: trickling listing given up after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_the_server_said_never_a_bare_status() {
    let h = Hostile::start(|req, _| {
        if req.uri.contains("html") {
            return Answer::Body(
                502,
                vec![],
                "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
            );
        }
        if req.uri.contains("moved") {
            return Answer::Body(
                301,
                vec![("x-amz-bucket-region", "eu-west-3".into())],
                "<Error><Code>PermanentRedirect</Code><Message>Use the right endpoint.</Message></Error>".into(),
            );
        }
        ok("<html><body>Welcome to our captive portal</body></html>")
    })
    .await;
    for (path, t) in both_paths(&h) {
        let with_bucket = |b: &str| Target {
            bucket: b.to_string(),
            settings: Settings {
                retry_max_attempts: 1,
                ..t.settings.clone()
            },
            ..t.clone()
        };
        let portal = sweep(&with_bucket("portal"), &opts()).await.error.unwrap();
        assert!(
            portal.contains("the root element is <html>"),
            "{path}: {portal}"
        );
        let html = sweep(&with_bucket("html"), &opts()).await.error.unwrap();
        assert!(html.contains("502 Bad Gateway"), "{path}: {html}");
        assert!(!html.ends_with("HTTP 502"), "{path}: {html}");
        let moved = sweep(&with_bucket("moved"), &opts()).await.error.unwrap();
        assert!(moved.contains("PermanentRedirect"), "{path}: {moved}");
        assert!(moved.contains("region \"eu-west-3\""), "{path}: {moved}");
    }
}
