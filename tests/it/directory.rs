//! Directory buckets (S3 Express One Zone) on the embedded directory-bucket endpoint
//! (crates/s3-mem/src/express/: real HTTP, SigV4 as `s3express` verified, session tokens
//! checked), swept by the real aws-sdk-s3 client with its own session authentication: a
//! CreateSession before the first call and again when the session runs out mid-sweep, opaque and
//! unsorted listing pages, `If-Match-Initiated-Time` on every abort, an upload replaced under its
//! id kept, a straggler verified, path and virtual-hosted style, and the prefix rule.

use chrono::{DateTime, TimeDelta, Utc};
use mpu_janitor::config::{HumanDuration, Kind, Settings, Target};
use mpu_janitor::policy::KeepReason;
use mpu_janitor::report::Outcome;
use s3_mem::express::{DirFaults, DirectoryEndpoint};

use crate::common::endpoint::{AK, SK, opts, sweep};
use crate::common::janitor::janitor_as;

const BUCKET: &str = "logs--usw2-az1--x-s3";

fn target(endpoint_url: &str, prefix: &str) -> Target {
    Target {
        bucket: BUCKET.into(),
        prefix: prefix.into(),
        exclude_prefixes: vec![],
        settings: Settings {
            endpoint_url: endpoint_url.parse().unwrap(),
            region: "us-west-2".into(),
            older_than: HumanDuration::secs(86_400),
            ..Settings::default()
        },
        kind: Kind::Bucket,
    }
}

/// `If-Match-Initiated-Time` as the SDK writes it: an HTTP date.
fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_bucket_is_swept_with_sessions_opaque_pages_and_conditional_aborts() {
    let ep = DirectoryEndpoint::start(AK, SK).await.unwrap();
    ep.create_bucket(BUCKET);
    let old = Utc::now() - TimeDelta::days(3);
    for i in 0..2_497 {
        ep.seed_upload(BUCKET, &format!("tmp/part-{i:05}"), old, &[(1, 1_000)]);
    }
    ep.seed_upload(BUCKET, "tmp/straggler", old, &[(1, 1_000)]);
    ep.seed_upload(BUCKET, "tmp/stuck", old, &[(1, 1_000)]);
    let replaced = ep.seed_upload(BUCKET, "tmp/replaced", old, &[(1, 1_000)]);
    ep.seed_upload(BUCKET, "tmp/fresh", Utc::now(), &[(1, 1_000)]);
    ep.seed_upload(BUCKET, "keep/other-prefix", old, &[(1, 1_000)]);
    ep.set_faults(DirFaults {
        late_parts: [("tmp/straggler".to_string(), 1)].into(),
        endless_late_parts: ["tmp/stuck".to_string()].into(),
        replace_on_list_parts: ["tmp/replaced".to_string()].into(),
        // The SDK renews a session 10 s before it expires: this one is renewed after about 1 s.
        session_ttl: std::time::Duration::from_secs(11),
        ..DirFaults::default()
    });
    let t = target(&ep.url(), "tmp/");
    let r = sweep(&t, &opts()).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.uploads_seen, 2_501);
    assert_eq!(
        (r.aborted, r.unverified, r.failed, r.skipped_fresh),
        (2_498, 1, 0, 1)
    );
    assert_eq!(r.reclaimed_bytes, 2_497 * 1_000 + 2 * 1_000);
    let kept = r.uploads.iter().find(|u| u.key == "tmp/replaced").unwrap();
    assert_eq!(
        (kept.outcome, kept.reason, kept.abort_attempts),
        (Outcome::Kept, Some(KeepReason::InitiatedTimeChanged), 1)
    );
    assert!(
        kept.error.is_none(),
        "a replaced upload is kept, not failed"
    );
    let straggler = r.uploads.iter().find(|u| u.key == "tmp/straggler").unwrap();
    assert_eq!(
        (straggler.outcome, straggler.abort_attempts),
        (Outcome::Aborted, 2)
    );
    let mut left: Vec<String> = ep.uploads(BUCKET).into_iter().map(|u| u.key).collect();
    left.sort();
    assert_eq!(
        left,
        [
            "keep/other-prefix",
            "tmp/fresh",
            "tmp/replaced",
            "tmp/stuck"
        ]
    );
    assert!(ep.uploads(BUCKET).iter().any(|u| u.upload_id == replaced));

    let requests = ep.requests();
    // The first call is the SDK's CreateSession, and the session is renewed mid-sweep.
    assert_eq!(requests[0].operation, "CreateSession");
    let sessions = requests
        .iter()
        .filter(|q| q.operation == "CreateSession")
        .count();
    assert!(sessions >= 2, "one CreateSession, never renewed");
    assert_eq!(ep.stats().expired_session_rejections, 0);
    assert_eq!(ep.stats().rejected, 0);
    for q in &requests {
        assert!(
            q.path_style,
            "an IP endpoint is addressed path style: {q:?}"
        );
        assert_eq!(
            (q.service.as_str(), q.region.as_str()),
            ("s3express", "us-west-2")
        );
        if q.operation != "CreateSession" && q.operation != "GetBucketLifecycleConfiguration" {
            assert!(q.session_token.is_some(), "not session-signed: {q:?}");
        }
    }
    // Three pages, by the prefix, the later ones from the opaque marker the server gave.
    let listings: Vec<_> = requests
        .iter()
        .filter(|q| q.operation == "ListMultipartUploads")
        .collect();
    assert_eq!(listings.len(), 3, "{listings:?}");
    assert!(listings.iter().all(|q| q.target.contains("prefix=tmp%2F")));
    assert!(
        listings
            .iter()
            .all(|q| !q.target.contains("upload-id-marker"))
    );
    assert!(!listings[0].target.contains("key-marker"));
    assert!(
        listings[1..]
            .iter()
            .all(|q| q.target.contains("key-marker=") && !q.target.contains("key-marker=tmp")),
        "the marker is the server's token, not a key"
    );
    // Every abort carries the initiation time that was judged.
    let aborts: Vec<_> = requests
        .iter()
        .filter(|q| q.operation == "AbortMultipartUpload")
        .collect();
    assert_eq!(aborts.len(), 2_497 + 2 + 5 + 1);
    assert_eq!(
        r.abort_attempts,
        aborts.len() as u64,
        "the report counts every abort sent, the refused one included"
    );
    for q in &aborts {
        assert_eq!(
            q.if_match_initiated_time.as_deref(),
            Some(http_date(old).as_str()),
            "{q:?}"
        );
    }
    let s = ep.stats();
    assert_eq!(s.aborts_precondition_failed, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_bucket_by_name_is_addressed_virtual_hosted_through_a_proxy() {
    let ep = DirectoryEndpoint::start(AK, SK).await.unwrap();
    let old = Utc::now() - TimeDelta::days(3);
    for i in 0..3 {
        ep.seed_upload(BUCKET, &format!("a/{i}"), old, &[(1, 10)]);
    }
    // A host name is addressed virtual-hosted; the endpoint, given as the proxy, needs no DNS.
    let host = format!("s3express.test:{}", ep.addr().port());
    let mut t = target(&format!("http://{host}"), "");
    t.settings.proxy = ep.url().parse().unwrap();
    let r = sweep(&t, &opts()).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.aborted, 3);
    let requests = ep.requests();
    assert!(!requests.is_empty());
    for q in &requests {
        assert_eq!(q.host, format!("{BUCKET}.{host}"), "{q:?}");
        assert!(!q.path_style);
    }
}

#[test]
fn check_config_refuses_a_directory_prefix_without_a_slash_and_shows_the_addressing() {
    let config = |prefix: &str| {
        format!(
            "[defaults]\nregion = \"us-west-2\"\n[[targets]]\nbucket = \"{BUCKET}\"\nprefix = \"{prefix}\"\n"
        )
    };
    let out = janitor_as((AK, SK), &config("logs"), &["check-config"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "targets[0].prefix: \"logs\" on directory bucket \"logs--usw2-az1--x-s3\": directory buckets list uploads only by a prefix ending in the delimiter \"/\""
        ),
        "{}",
        out.stderr
    );
    let out = janitor_as((AK, SK), &config("logs/"), &["check-config"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "targets[0] \"logs--usw2-az1--x-s3\": directory bucket at https://logs--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com (virtual-hosted), signed sigv4-s3express as \"s3express\" in us-west-2; through the SDK request path"
        ),
        "{}",
        out.stdout
    );
}
