//! The directory-bucket endpoint's tests: through the real S3 client (sessions, listings,
//! conditional aborts, virtual hosts), then raw requests for what the SDK never sends.

mod client;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::DateTime as SdkDateTime;
use chrono::{TimeDelta, Utc};
use tokio::net::TcpStream;

use self::client::*;
use super::STORAGE_CLASS;

#[tokio::test]
async fn the_sdk_creates_a_session_and_lists_2500_uploads_in_three_unsorted_pages() {
    // 2,500 uploads, listed by the SDK from key marker to key marker, path style.
    let ep = started().await;
    let base = at("2026-01-01T00:00:00Z");
    let seeded: Vec<(String, String)> = (0..2500)
        .map(|i| {
            let key = format!("logs/{i:04}.gz");
            let id = ep.seed_upload(BUCKET, &key, base + TimeDelta::seconds(i), &[(1, MIB)]);
            (key, id)
        })
        .collect();
    let s3 = client(&ep);
    let (mut pages, mut listed, mut marker) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let out = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .set_key_marker(marker.clone())
            .send()
            .await
            .expect("a page");
        pages.push(out.uploads().len());
        assert_eq!(out.max_uploads(), Some(1000));
        assert_eq!(out.next_upload_id_marker(), None);
        listed.extend(out.uploads().iter().map(|u| {
            assert_eq!(u.storage_class().map(|s| s.as_str()), Some(STORAGE_CLASS));
            (
                u.key().unwrap_or_default().to_owned(),
                u.upload_id().unwrap_or_default().to_owned(),
                to_chrono(u.initiated().expect("initiated")),
            )
        }));
        marker = out.next_key_marker().map(str::to_owned);
        assert_eq!(out.is_truncated(), Some(marker.is_some()));
        let Some(m) = &marker else { break };
        assert!(
            !seeded.iter().any(|(k, id)| k == m || id == m),
            "the marker is opaque"
        );
        assert!(pages.len() < 10, "the listing never ends");
    }
    assert_eq!(pages, [1000, 1000, 500]);
    let ids: Vec<&str> = listed.iter().map(|(_, id, _)| id.as_str()).collect();
    let snapshot: Vec<String> = ep
        .uploads(BUCKET)
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(ids, snapshot, "the endpoint's own order");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), 2500, "every upload exactly once");
    assert_ne!(ids, sorted, "not by upload id");
    assert!(
        !listed.windows(2).all(|w| w[0].0 <= w[1].0),
        "not by key (nor by initiation: keys follow it)"
    );
    let (key, id, initiated) = &listed[0];
    let i: i64 = key[5..9].parse().expect("a number");
    assert_eq!(*initiated, base + TimeDelta::seconds(i));
    assert!(seeded.contains(&(key.clone(), id.clone())));

    let requests = ep.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let session = &requests[0];
    assert_eq!(
        (session.operation, session.method.as_str(), session.status),
        ("CreateSession", "GET", 200)
    );
    assert!(
        session.target.starts_with(&format!("/{BUCKET}")),
        "{session:?}"
    );
    assert!(session.target.contains("session"), "{session:?}");
    assert_eq!(session.host, ep.addr().to_string());
    assert!(session.path_style);
    assert_eq!(session.bucket, BUCKET);
    assert_eq!(
        (session.access_key.as_str(), session.region.as_str()),
        (AK, "us-west-2")
    );
    assert_eq!(session.service, "s3express");
    assert_eq!(session.session_token, None);
    for r in &requests[1..] {
        assert_eq!((r.operation, r.status), ("ListMultipartUploads", 200));
        assert!(r.access_key.starts_with("ASIA"), "{r:?}");
        assert!(r.session_token.is_some(), "{r:?}");
    }
    let stats = ep.stats();
    assert_eq!(
        (stats.sessions_created, stats.list_multipart_uploads),
        (1, 3)
    );
    assert_eq!((stats.requests, stats.rejected), (4, 0));
}

#[tokio::test]
async fn prefixes_markers_page_sizes_and_lifecycle_answer_as_a_directory_bucket() {
    // Refused prefixes and markers, a capped page, and the lifecycle rule read both ways.
    let ep = started().await;
    for i in 0..10 {
        ep.seed_upload(BUCKET, &format!("logs/{i}"), Utc::now(), &[(1, MIB)]);
    }
    ep.seed_upload(BUCKET, "other/x", Utc::now(), &[]);
    let s3 = client(&ep);

    let err = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .prefix("logs")
        .send()
        .await
        .expect_err("no slash");
    assert_eq!(
        status_and_code(&err),
        (Some(400), Some("InvalidArgument".to_owned()))
    );
    assert!(
        err.message().is_some_and(|m| m.contains("delimiter '/'")),
        "{err:?}"
    );
    for (marker, id_marker) in [("logs/0", None), ("", Some("an-id"))] {
        let err = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .key_marker(marker)
            .set_upload_id_marker(id_marker.map(str::to_owned))
            .send()
            .await
            .expect_err("refused");
        assert_eq!(
            status_and_code(&err),
            (Some(400), Some("InvalidArgument".to_owned())),
            "{marker:?} {id_marker:?}"
        );
    }

    ep.update_faults(|f| f.page_size = Some(4));
    let (mut pages, mut marker) = (Vec::new(), None::<String>);
    loop {
        let out = s3
            .list_multipart_uploads()
            .bucket(BUCKET)
            .prefix("logs/")
            .max_uploads(10)
            .set_key_marker(marker.clone())
            .send()
            .await
            .expect("a page");
        assert_eq!((out.max_uploads(), out.prefix()), (Some(10), Some("logs/")));
        assert!(
            out.uploads()
                .iter()
                .all(|u| u.key().is_some_and(|k| k.starts_with("logs/")))
        );
        pages.push(out.uploads().len());
        marker = out.next_key_marker().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(pages, [4, 4, 2], "capped by the fault, the prefix filtered");

    let err = s3
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .expect_err("no rules");
    assert_eq!(
        status_and_code(&err),
        (Some(404), Some("NoSuchLifecycleConfiguration".to_owned()))
    );
    ep.set_lifecycle_abort_days(BUCKET, Some(7));
    let out = s3
        .get_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .send()
        .await
        .expect("rules");
    let [rule] = out.rules() else {
        panic!("one rule: {out:?}");
    };
    assert_eq!(rule.id(), Some("abort-mpu"));
    assert_eq!(rule.status().as_str(), "Enabled");
    assert_eq!(
        rule.abort_incomplete_multipart_upload()
            .and_then(|a| a.days_after_initiation()),
        Some(7)
    );
    let lifecycle = ep
        .requests()
        .into_iter()
        .filter(|r| r.operation == "GetBucketLifecycleConfiguration")
        .collect::<Vec<_>>();
    assert_eq!(lifecycle.len(), 2);
    assert_eq!(lifecycle[1].status, 200);
}

#[tokio::test]
async fn list_parts_and_conditional_aborts_follow_initiation_times_and_faults() {
    // Parts paged two at a time; aborts with a wrong and the listed time; a straggler, a
    // never-empty key, an upload replaced at its first ListParts.
    let ep = started().await;
    let t0 = at("2026-12-03T10:00:00.250Z");
    let key = "logs/a b+c.txt";
    let id = ep.seed_upload(BUCKET, key, t0, &[(1, 5 * MIB), (2, 5 * MIB), (3, MIB)]);
    let s3 = client(&ep);

    let first = s3
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .expect("parts");
    let numbers: Vec<i32> = first
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(first.is_truncated(), Some(true));
    assert_eq!(first.next_part_number_marker(), Some("2"));
    let part = &first.parts()[0];
    assert_eq!(part.size(), Some(5 * 1024 * 1024));
    assert_eq!(part.last_modified().map(to_chrono), Some(t0));
    assert!(
        part.e_tag()
            .is_some_and(|e| e.len() == 34 && e.starts_with('"') && e.ends_with('"')),
        "{part:?}"
    );
    let second = s3
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number_marker("2")
        .send()
        .await
        .expect("parts");
    let numbers: Vec<i32> = second
        .parts()
        .iter()
        .filter_map(|p| p.part_number())
        .collect();
    assert_eq!((numbers, second.is_truncated()), (vec![3], Some(false)));

    let listed = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("a page");
    let initiated = *listed.uploads()[0].initiated().expect("initiated");
    let abort = |key: &'static str, id: String, time: Option<SdkDateTime>| {
        s3.abort_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .set_if_match_initiated_time(time)
            .send()
    };
    let err = abort(
        key,
        id.clone(),
        Some(SdkDateTime::from_secs(t0.timestamp() + 1)),
    )
    .await
    .expect_err("another time");
    assert_eq!(
        status_and_code(&err),
        (Some(412), Some("PreconditionFailed".to_owned()))
    );
    assert_eq!(ep.upload_count(BUCKET), 1, "nothing removed");
    abort(key, id.clone(), Some(initiated)).await.expect("204");
    assert_eq!(ep.upload_count(BUCKET), 0);
    let err = abort(key, id.clone(), None).await.expect_err("gone");
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_no_such_upload()),
        "{err:?}"
    );
    let sent = ep.requests();
    let aborts: Vec<_> = sent
        .iter()
        .filter(|r| r.operation == "AbortMultipartUpload")
        .collect();
    assert_eq!(
        aborts[1].if_match_initiated_time.as_deref(),
        Some("Thu, 03 Dec 2026 10:00:00 GMT")
    );
    assert_eq!(
        aborts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [412, 204, 404]
    );
    assert!(
        aborts[0].target.contains("/logs/a%20b%2Bc.txt?"),
        "{:?}",
        aborts[0]
    );

    ep.update_faults(|f| {
        f.late_parts.insert("logs/late".to_owned(), 1);
        f.endless_late_parts.insert("logs/stuck".to_owned());
        f.replace_on_list_parts.insert("logs/moved".to_owned());
    });
    let late = ep.seed_upload(BUCKET, "logs/late", t0, &[(1, MIB)]);
    let stuck = ep.seed_upload(BUCKET, "logs/stuck", t0, &[(1, MIB)]);
    let moved = ep.seed_upload(BUCKET, "logs/moved", t0, &[(1, MIB)]);
    let parts_of = |key: &'static str, id: String| {
        let s3 = s3.clone();
        async move {
            s3.list_parts()
                .bucket(BUCKET)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map(|out| {
                    out.parts()
                        .iter()
                        .map(|p| (p.part_number(), p.e_tag().map(str::to_owned)))
                        .collect::<Vec<_>>()
                })
        }
    };
    abort("logs/late", late.clone(), None).await.expect("204");
    let parts = parts_of("logs/late", late.clone())
        .await
        .expect("still there");
    assert_eq!(parts.len(), 2, "a part landed after the abort");
    assert_ne!(parts[0].1, parts[1].1);
    abort("logs/late", late.clone(), None).await.expect("204");
    assert!(parts_of("logs/late", late).await.is_err(), "then removed");
    for _ in 0..3 {
        abort("logs/stuck", stuck.clone(), None).await.expect("204");
    }
    assert_eq!(
        parts_of("logs/stuck", stuck)
            .await
            .expect("never empty")
            .len(),
        4
    );

    let listed_time = SdkDateTime::from_secs(t0.timestamp());
    parts_of("logs/moved", moved.clone()).await.expect("parts");
    let err = abort("logs/moved", moved.clone(), Some(listed_time))
        .await
        .expect_err("replaced");
    assert_eq!(status_and_code(&err).0, Some(412));
    let now_initiated = ep
        .uploads(BUCKET)
        .into_iter()
        .find(|u| u.upload_id == moved)
        .expect("kept")
        .initiated;
    assert_eq!(now_initiated, t0 + TimeDelta::hours(1));
    parts_of("logs/moved", moved.clone()).await.expect("parts");
    assert!(
        ep.replace_upload(BUCKET, &moved, t0),
        "replaced back by hand"
    );
    abort("logs/moved", moved, Some(listed_time))
        .await
        .expect("204");

    let stats = ep.stats();
    assert_eq!(
        (
            stats.aborts_removed,
            stats.aborts_swallowed,
            stats.aborts_precondition_failed
        ),
        (3, 4, 2)
    );
    assert_eq!(stats.abort_multipart_upload, 10);
    assert_eq!(stats.rejected, 0);
}

#[tokio::test]
async fn the_sdk_renews_a_short_session_before_it_expires() {
    // A session TTL of 11 s: the SDK renews sessions 10 s before they expire.
    let ep = started().await;
    ep.create_bucket(BUCKET);
    ep.update_faults(|f| f.session_ttl = Duration::from_secs(11));
    let s3 = client(&ep);
    let started_at = Instant::now();
    while ep.stats().sessions_created < 2 {
        assert!(
            started_at.elapsed() < Duration::from_secs(5),
            "no new session: {:?}",
            ep.stats()
        );
        s3.list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .expect("a page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = ep.stats();
    assert_eq!(stats.rejected, 0, "renewed before the endpoint refused it");
    let keys: HashSet<String> = ep
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ListMultipartUploads")
        .map(|r| r.access_key)
        .collect();
    assert_eq!(keys.len(), 2, "the new session signs the later requests");
}

#[tokio::test]
async fn virtual_hosted_requests_through_the_endpoint_as_a_proxy() {
    // endpoint_url http://s3express.test:PORT, the endpoint as the client's HTTP proxy.
    let ep = started().await;
    let id = ep.seed_upload(BUCKET, "logs/v", Utc::now(), &[(1, MIB)]);
    ep.seed_upload(BUCKET, "logs/w", Utc::now(), &[(1, MIB)]);
    let s3 = virtual_client(&ep);
    let out = s3
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .expect("a page");
    assert_eq!(out.uploads().len(), 2);
    s3.abort_multipart_upload()
        .bucket(BUCKET)
        .key("logs/v")
        .upload_id(&id)
        .send()
        .await
        .expect("204");
    assert_eq!(ep.upload_count(BUCKET), 1);

    let host = format!("{BUCKET}.s3express.test:{}", ep.addr().port());
    let requests = ep.requests();
    let ops: Vec<&str> = requests.iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            "CreateSession",
            "ListMultipartUploads",
            "AbortMultipartUpload"
        ]
    );
    for r in &requests {
        assert_eq!(r.host, host, "{r:?}");
        assert!(!r.path_style, "{r:?}");
        assert_eq!(r.bucket, BUCKET);
        assert!(
            r.target.starts_with(&format!("http://{host}/")),
            "absolute form: {r:?}"
        );
    }
    assert!(requests[2].target.contains("/logs/v?"), "{:?}", requests[2]);
    assert_eq!(ep.stats().rejected, 0);

    let addr = ep.addr();
    ep.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the port is closed"
    );
}

#[tokio::test]
async fn forged_foreign_missing_and_expired_sessions_are_refused() {
    // A session used rightly, with a forged token, on another bucket, with no token at
    // all, unsigned, and after it expired.
    let ep = started().await;
    let other = "other--usw2-az1--x-s3";
    ep.create_bucket(BUCKET);
    ep.create_bucket(other);
    assert_eq!(ep.buckets(), [BUCKET, other]);
    let list = format!("/{BUCKET}?uploads");
    let (ak, sk, token) = session(&ep, BUCKET).await;
    let first_key = ak.clone();

    let ok = send_signed(&ep, "GET", &list, Some((&ak, &sk, Some(&token)))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.element("IsTruncated"), Some("false"));
    let cases = [
        (
            Some((ak.as_str(), sk.as_str(), Some("forged-token"))),
            403,
            "AccessDenied",
        ),
        (
            Some(("ASIAUNKNOWN", "x", Some(token.as_str()))),
            403,
            "AccessDenied",
        ),
        (Some((AK, SK, None)), 403, "AccessDenied"),
        (Some((AK, "guess", None)), 403, "SignatureDoesNotMatch"),
        (None, 403, "AccessDenied"),
    ];
    for (creds, status, code) in cases {
        let reply = send_signed(&ep, "GET", &list, creds).await;
        assert_eq!(
            (reply.status, reply.element("Code")),
            (status, Some(code)),
            "{creds:?}: {}",
            reply.body
        );
        assert!(reply.element("RequestId").is_some(), "{}", reply.body);
    }
    let foreign = send_signed(
        &ep,
        "GET",
        &format!("/{other}?uploads"),
        Some((&ak, &sk, Some(&token))),
    )
    .await;
    assert_eq!(
        (foreign.status, foreign.element("Code")),
        (403, Some("AccessDenied"))
    );
    let by_session = send_signed(
        &ep,
        "GET",
        &format!("/{BUCKET}?session"),
        Some((&ak, &sk, Some(&token))),
    )
    .await;
    assert_eq!(by_session.status, 403, "CreateSession takes a base key");
    let unknown = send_signed(
        &ep,
        "GET",
        "/nope--usw2-az1--x-s3?session",
        Some((AK, SK, None)),
    )
    .await;
    assert_eq!(
        (unknown.status, unknown.element("Code")),
        (404, Some("NoSuchBucket"))
    );

    ep.update_faults(|f| f.session_ttl = Duration::from_secs(1));
    let (ak, sk, token) = session(&ep, BUCKET).await;
    let started_at = Instant::now();
    let expired = loop {
        let reply = send_signed(&ep, "GET", &list, Some((&ak, &sk, Some(&token)))).await;
        if reply.status != 200 {
            break reply;
        }
        assert!(
            started_at.elapsed() < Duration::from_secs(3),
            "never expires"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (expired.status, expired.element("Code")),
        (400, Some("ExpiredToken"))
    );

    let stats = ep.stats();
    assert_eq!((stats.rejected, stats.expired_session_rejections), (8, 1));
    assert_eq!(stats.sessions_created, 2);
    let requests = ep.requests();
    let forged = &requests[2];
    assert_eq!(forged.session_token.as_deref(), Some("forged-token"));
    assert_eq!(
        (forged.access_key.as_str(), forged.status),
        (first_key.as_str(), 403)
    );
    assert_eq!(
        (forged.operation, forged.region.as_str()),
        ("ListMultipartUploads", "us-west-2")
    );
}
