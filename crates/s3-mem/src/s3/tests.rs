//! The S3 endpoint's tests: its pure helpers, then real HTTP through [`client`]'s signer.

mod client;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;

use self::client::*;
use super::addressing::{base_domain, credential_scope, host_bucket, to_origin_form};
use super::faults::partition_of;
use super::state::{Shared, hex, unhex};
use super::{Endpoint, Faults, RequestRecord, Throttle};

#[test]
fn a_partition_is_the_bucket_and_the_first_key_segment() {
    assert_eq!(partition_of("/b"), "b");
    assert_eq!(partition_of("/b/"), "b");
    assert_eq!(partition_of("/b/flat-key"), "b");
    assert_eq!(partition_of("/b/p001/x/y.bin"), "b/p001");
    assert_eq!(partition_of("/b//x"), "b/");
}

#[test]
fn a_partition_takes_its_burst_then_its_rate() {
    let shared = Shared::new();
    let t = Throttle {
        rate: 1.0,
        burst: 3.0,
    };
    let taken = (0..10).filter(|_| shared.take_token("b/p", &t)).count();
    assert_eq!(taken, 3, "the burst, then nothing within the same instant");
    assert!(
        shared.take_token("b/q", &t),
        "another partition has its own bucket"
    );
}

#[test]
fn a_continuation_token_decodes_only_from_hex() {
    assert_eq!(unhex(&hex(b"bucket-9")).as_deref(), Some("bucket-9"));
    assert_eq!(unhex("").as_deref(), Some(""));
    for bad in ["abc", "zz", "+f", "ff"] {
        assert_eq!(unhex(bad), None, "{bad:?}");
    }
}

#[tokio::test]
async fn list_buckets_pages_return_every_bucket_exactly_once() {
    // Seven buckets; pages of two asked, then pages capped at three by the fault plan.
    let ep = started().await;
    let names: Vec<String> = (0..7).map(|i| format!("bucket-{i}")).collect();
    for n in &names {
        ep.create_bucket(n);
    }

    let pages = list_all(&ep, Some("2")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 1]);
    assert_eq!(pages.concat(), names);

    ep.update_faults(|f| f.list_buckets_page = Some(3));
    let pages = list_all(&ep, Some("1000")).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), names);
    let pages = list_all(&ep, None).await;
    assert_eq!(
        pages.concat(),
        names,
        "no max-buckets: still every bucket, in pages"
    );
    assert_eq!(pages.len(), 3);

    ep.set_faults(Faults::default());
    let pages = list_all(&ep, None).await;
    assert_eq!(pages.len(), 1, "no max-buckets: all at once");
    assert_eq!(pages.concat(), names);
    assert_eq!(ep.stats().list_buckets, 4 + 3 + 3 + 1);
}

#[tokio::test]
async fn list_buckets_filters_by_prefix_and_shows_each_region() {
    // Buckets in two regions; a prefix listing, a region listing, a bad argument.
    let ep = started().await;
    ep.create_bucket("logs-a");
    ep.create_bucket_in("logs-b", "eu-west-1");
    ep.create_bucket("media");

    let reply = send(&ep, &START_KEY, "GET", "/", &[("prefix", "logs-")]).await;
    assert_eq!(reply.all("Name"), ["logs-a", "logs-b"]);
    assert_eq!(reply.all("BucketRegion"), ["us-east-1", "eu-west-1"]);
    assert_eq!(reply.all("Prefix"), ["logs-"]);
    assert!(reply.all("ContinuationToken").is_empty());

    let reply = send(
        &ep,
        &START_KEY,
        "GET",
        "/",
        &[("bucket-region", "us-east-1")],
    )
    .await;
    assert_eq!(reply.all("Name"), ["logs-a", "media"]);

    for bad in [("max-buckets", "0"), ("continuation-token", "not-hex")] {
        let reply = send(&ep, &START_KEY, "GET", "/", &[bad]).await;
        assert_eq!(reply.status, 400, "{bad:?}");
        assert_eq!(reply.all("Code"), ["InvalidArgument"], "{bad:?}");
    }
}

#[tokio::test]
async fn head_bucket_answers_its_region_and_signing_regions_are_recorded() {
    // A bucket in eu-west-1 reached with a us-east-1 signature, then its own region's.
    let ep = started().await;
    ep.create_bucket_in("eu-bucket", "eu-west-1");

    let reply = send(&ep, &START_KEY, "HEAD", "/eu-bucket", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-amz-bucket-region"), Some("eu-west-1"));
    assert_eq!(
        ep.signing_regions("eu-bucket"),
        BTreeSet::from(["us-east-1".to_owned()])
    );

    let eu = Signer {
        region: "eu-west-1",
        ..START_KEY
    };
    let reply = send(&ep, &eu, "GET", "/eu-bucket", &[("location", "")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body.contains(">eu-west-1</LocationConstraint>"),
        "{}",
        reply.body
    );
    assert_eq!(
        ep.signing_regions("eu-bucket"),
        BTreeSet::from(["eu-west-1".to_owned(), "us-east-1".to_owned()])
    );
    assert!(ep.signing_regions("other").is_empty());

    ep.reset_stats();
    assert!(ep.signing_regions("eu-bucket").is_empty());
}

#[tokio::test]
async fn bucket_tagging_answers_the_tags_none_denied_or_no_bucket() {
    // One tagged bucket, one untagged, one denied, one missing.
    let ep = started().await;
    for b in ["tagged", "plain", "secret"] {
        ep.create_bucket(b);
    }
    ep.set_bucket_tags("tagged", &[("team", "data"), ("janitor", "on")]);
    ep.set_bucket_tags("secret", &[("team", "x")]);
    ep.update_faults(|f| {
        f.deny_tagging.insert("secret".to_owned());
    });

    let reply = send(&ep, &START_KEY, "GET", "/tagged", &[("tagging", "")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.all("Key"), ["team", "janitor"]);
    assert_eq!(reply.all("Value"), ["data", "on"]);

    let cases = [
        ("/plain", 404, "NoSuchTagSet"),
        ("/secret", 403, "AccessDenied"),
        ("/missing", 404, "NoSuchBucket"),
    ];
    for (path, status, code) in cases {
        let reply = send(&ep, &START_KEY, "GET", path, &[("tagging", "")]).await;
        assert_eq!(
            (reply.status, reply.all("Code")),
            (status, vec![code.to_owned()])
        );
    }

    ep.set_bucket_tags("tagged", &[]);
    let reply = send(&ep, &START_KEY, "GET", "/tagged", &[("tagging", "")]).await;
    assert_eq!(
        reply.all("Code"),
        ["NoSuchTagSet"],
        "an empty set removes the tags"
    );
    assert_eq!(ep.stats().get_bucket_tagging, 5);
}

#[tokio::test]
async fn a_deleted_bucket_answers_no_such_bucket_with_its_uploads_gone() {
    // A bucket with uploads deleted from the test between two requests.
    let ep = started().await;
    ep.create_bucket("gone");
    ep.seed_upload("gone", "k", Utc::now(), &[(1, 10)]);
    assert_eq!(
        send(&ep, &START_KEY, "HEAD", "/gone", &[]).await.status,
        200
    );

    assert!(ep.delete_bucket("gone"));
    assert!(!ep.delete_bucket("gone"));
    assert_eq!(ep.upload_count("gone"), 0);
    assert!(ep.buckets().is_empty());
    assert_eq!(
        send(&ep, &START_KEY, "HEAD", "/gone", &[]).await.status,
        404
    );
    let reply = send(&ep, &START_KEY, "GET", "/gone", &[("uploads", "")]).await;
    assert_eq!(reply.all("Code"), ["NoSuchBucket"]);
}

#[tokio::test]
async fn added_and_looked_up_keys_are_accepted_and_counted_per_key() {
    // An unknown key, then the same key added; a temporary key (with a session token)
    // found by the lookup once, then from the cache; a wrong secret for a found key.
    let ep = started().await;
    let other = Signer {
        access_key: "AKIAOTHER",
        secret_key: "other-secret",
        ..START_KEY
    };
    let reply = send(&ep, &other, "GET", "/", &[]).await;
    assert_eq!(
        (reply.status, reply.all("Code")),
        (403, vec!["NotSignedUp".to_owned()])
    );
    ep.add_key("AKIAOTHER", "other-secret");
    assert_eq!(send(&ep, &other, "GET", "/", &[]).await.status, 200);

    let asked = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&asked);
    ep.set_key_lookup(move |key| {
        counter.fetch_add(1, Ordering::Relaxed);
        (key == "ASIATEMP").then(|| "temp-secret".to_owned())
    });
    let temp = Signer {
        access_key: "ASIATEMP",
        secret_key: "temp-secret",
        region: "eu-west-1",
        token: Some("FQoGZXIvYXdzEBYaD+some/session=token"),
    };
    for _ in 0..2 {
        let reply = send(&ep, &temp, "GET", "/", &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(asked.load(Ordering::Relaxed), 1, "a found secret is kept");

    let forged = Signer {
        secret_key: "guess",
        ..temp
    };
    let reply = send(&ep, &forged, "GET", "/", &[]).await;
    assert_eq!(reply.all("Code"), ["SignatureDoesNotMatch"]);
    let unknown = Signer {
        access_key: "ASIAUNKNOWN",
        ..temp
    };
    let reply = send(&ep, &unknown, "GET", "/", &[]).await;
    assert_eq!(reply.all("Code"), ["NotSignedUp"]);
    assert_eq!(asked.load(Ordering::Relaxed), 2, "a missing key is asked");

    assert_eq!(send(&ep, &START_KEY, "GET", "/", &[]).await.status, 200);
    let stats = ep.stats();
    assert_eq!(
        stats.requests_by_access_key,
        BTreeMap::from([
            (AK.to_owned(), 1),
            ("AKIAOTHER".to_owned(), 1),
            ("ASIATEMP".to_owned(), 2),
        ]),
        "only authenticated requests count"
    );
    assert_eq!(stats.requests_for_access_key("ASIATEMP"), 2);
    assert_eq!(stats.requests_for_access_key("ASIAUNKNOWN"), 0);
}

// -----------------------------------------------------------------------------------
// Virtual-hosted style, absolute-form targets, the request log

const REPORTS: &str = "reports-123456789012";

#[test]
fn a_virtual_host_is_a_bucket_under_the_base_domain_whatever_the_port() {
    let cases = [
        ("reports-123456789012.s3.test:40000", Some(REPORTS)),
        ("reports-123456789012.s3.test", Some(REPORTS)),
        ("a.b.S3.Test:1", Some("a.b")),
        ("s3.test:40000", None),
        ("S3.TEST", None),
        (".s3.test", None),
        ("xs3.test:80", None),
        ("s3.test.example:80", None),
        ("127.0.0.1:40000", None),
        ("[::1]:40000", None),
        ("localhost:40000", None),
        ("", None),
    ];
    for (host, bucket) in cases {
        assert_eq!(host_bucket(host, "s3.test"), bucket, "{host:?}");
    }
    assert_eq!(base_domain("S3.Test").expect("a domain"), "s3.test");
    for bad in ["s3.test:80", "s3..test", "", "s3 test"] {
        assert!(base_domain(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_credential_scope_is_read_from_the_authorization_header() {
    let cases = [
        (
            "AWS4-HMAC-SHA256 Credential=AK1/20250101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            ("AK1", "eu-west-1", "s3"),
        ),
        (
            "AWS4-HMAC-SHA256 SignedHeaders=host,Credential=AK2/20250101/us-east-1/s3-outposts/aws4_request,Signature=00",
            ("AK2", "us-east-1", "s3-outposts"),
        ),
        ("AWS AK3:c2lnbmF0dXJl", ("AK3", "", "")),
        ("AWS4-HMAC-SHA256 Credential=AK4", ("AK4", "", "")),
        ("Bearer token", ("", "", "")),
        ("", ("", "", "")),
    ];
    for (header, scope) in cases {
        assert_eq!(credential_scope(header), scope, "{header:?}");
    }
}

#[test]
fn an_absolute_form_target_becomes_origin_form_and_keeps_its_host() {
    let mut req = hyper::Request::get("http://b.s3.test:4000/k/x%20y?uploadId=1&a=%2F")
        .header("host", "b.s3.test:4000")
        .body(())
        .expect("a request");
    to_origin_form(&mut req);
    assert_eq!(req.uri().to_string(), "/k/x%20y?uploadId=1&a=%2F");
    assert_eq!(req.headers()["host"], "b.s3.test:4000");

    let mut req = hyper::Request::get("http://b.s3.test:4000")
        .body(())
        .expect("a request");
    to_origin_form(&mut req);
    assert_eq!(req.uri().to_string(), "/");
    assert_eq!(
        req.headers()["host"],
        "b.s3.test:4000",
        "taken from the target"
    );

    let mut req = hyper::Request::get("/b?uploads")
        .body(())
        .expect("a request");
    to_origin_form(&mut req);
    assert_eq!(req.uri().to_string(), "/b?uploads");
    assert!(!req.headers().contains_key("host"));
}

#[tokio::test]
async fn virtual_hosted_requests_through_a_proxy_target_are_served_and_logged() {
    // A bucket reached by its virtual host in absolute form (as through a proxy) and in
    // origin form, the same bucket path style under the domain and by IP, then a missing
    // bucket, a forged signature and a faulted bucket, all by virtual host.
    let ep = Endpoint::start_with_domain(AK, SK, "S3.Test")
        .await
        .expect("endpoint");
    let port = ep.addr().port();
    assert_eq!(ep.domain(), Some("s3.test"));
    assert_eq!(ep.domain_url(), Some(format!("http://s3.test:{port}")));
    let key = "daily/2024-01-01.csv";
    let upload_id = ep.seed_upload(REPORTS, key, Utc::now(), &[(1, 5)]);
    ep.create_bucket("denied-bucket");
    ep.record_requests(true);

    let vhost = format!("{REPORTS}.s3.test:{port}");
    let uploads = [("uploads", "")];
    let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", "/", &uploads).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.all("Bucket"), [REPORTS]);
    assert_eq!(reply.all("Key"), [key]);
    assert_eq!(reply.all("UploadId"), [upload_id.as_str()]);

    let reply = send_via(&ep, &START_KEY, &vhost, Form::Origin, "GET", "/", &uploads).await;
    assert_eq!(
        reply.all("UploadId"),
        [upload_id.as_str()],
        "{}",
        reply.body
    );
    let object = format!("/{key}");
    let by_id = [("uploadId", upload_id.as_str())];
    let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", &object, &by_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.all("PartNumber"), ["1"]);

    let bucket_path = format!("/{REPORTS}");
    let domain_host = format!("s3.test:{port}");
    let ip_host = ep.addr().to_string();
    for (host, form) in [(&domain_host, Form::Proxy), (&ip_host, Form::Origin)] {
        let reply = send_via(&ep, &START_KEY, host, form, "GET", &bucket_path, &uploads).await;
        assert_eq!(reply.all("UploadId"), [upload_id.as_str()], "{host}");
    }

    let eu = Signer {
        region: "eu-west-1",
        ..START_KEY
    };
    let reply = send_via(&ep, &eu, &vhost, Form::Proxy, "HEAD", "/", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        ep.signing_regions(REPORTS),
        BTreeSet::from(["eu-west-1".to_owned(), "us-east-1".to_owned()])
    );

    let missing = format!("missing-bucket.s3.test:{port}");
    let reply = send_via(&ep, &START_KEY, &missing, Form::Proxy, "GET", "/", &uploads).await;
    assert_eq!(reply.all("Code"), ["NoSuchBucket"]);
    let forged = Signer {
        secret_key: "guess",
        ..START_KEY
    };
    let reply = send_via(&ep, &forged, &vhost, Form::Proxy, "GET", "/", &uploads).await;
    assert_eq!(reply.all("Code"), ["SignatureDoesNotMatch"]);
    ep.update_faults(|f| {
        f.fail_buckets.insert("denied-bucket".to_owned());
    });
    let denied = format!("denied-bucket.s3.test:{port}");
    let reply = send_via(&ep, &START_KEY, &denied, Form::Proxy, "GET", "/", &uploads).await;
    assert_eq!(reply.all("Code"), ["AccessDenied"]);
    assert_eq!(
        ep.stats().access_denied_faults,
        1,
        "the plan sees the bucket"
    );

    let log = ep.requests();
    assert_eq!(
        log[0],
        RequestRecord {
            method: "GET".to_owned(),
            host: vhost.clone(),
            target: format!("http://{vhost}/?uploads="),
            path: "/".to_owned(),
            query: "uploads=".to_owned(),
            access_key: AK.to_owned(),
            region: "us-east-1".to_owned(),
            service: "s3".to_owned(),
            status: 200,
        }
    );
    let seen: Vec<(&str, &str, &str, u16)> = log
        .iter()
        .map(|r| {
            (
                r.host.as_str(),
                r.target.as_str(),
                r.region.as_str(),
                r.status,
            )
        })
        .collect();
    let origin_target = format!("{bucket_path}?uploads=");
    let expected: Vec<(String, String, &str, u16)> = vec![
        (
            vhost.clone(),
            format!("http://{vhost}/?uploads="),
            "us-east-1",
            200,
        ),
        (vhost.clone(), "/?uploads=".to_owned(), "us-east-1", 200),
        (
            vhost.clone(),
            format!("http://{vhost}{object}?uploadId={upload_id}"),
            "us-east-1",
            200,
        ),
        (
            domain_host.clone(),
            format!("http://{domain_host}{origin_target}"),
            "us-east-1",
            200,
        ),
        (ip_host.clone(), origin_target.clone(), "us-east-1", 200),
        (vhost.clone(), format!("http://{vhost}/"), "eu-west-1", 200),
        (
            missing.clone(),
            format!("http://{missing}/?uploads="),
            "us-east-1",
            404,
        ),
        (
            vhost.clone(),
            format!("http://{vhost}/?uploads="),
            "us-east-1",
            403,
        ),
        (
            denied.clone(),
            format!("http://{denied}/?uploads="),
            "us-east-1",
            403,
        ),
    ];
    let expected: Vec<(&str, &str, &str, u16)> = expected
        .iter()
        .map(|(h, t, r, s)| (h.as_str(), t.as_str(), *r, *s))
        .collect();
    assert_eq!(seen, expected);
    assert!(log.iter().all(|r| r.service == "s3" && r.access_key == AK));
    assert_eq!(log[5].method, "HEAD");
    assert_eq!(
        (log[2].path.as_str(), log[2].query.as_str()),
        (object.as_str(), format!("uploadId={upload_id}").as_str())
    );

    ep.reset_requests();
    assert!(ep.requests().is_empty());
    ep.record_requests(false);
    let reply = send_via(&ep, &START_KEY, &vhost, Form::Proxy, "GET", "/", &uploads).await;
    assert_eq!(reply.status, 200);
    assert!(ep.requests().is_empty(), "recording is off again");
}

#[tokio::test]
async fn a_path_style_endpoint_serves_proxy_targets_and_logs_only_when_asked() {
    // Without a domain: path style by IP as before, in origin then absolute form; the log
    // starts off; a faulted request is logged with its status.
    let ep = started().await;
    assert_eq!((ep.domain(), ep.domain_url()), (None, None));
    let upload_id = ep.seed_upload(REPORTS, "k", Utc::now(), &[]);
    let host = ep.addr().to_string();
    let path = format!("/{REPORTS}");
    let uploads = [("uploads", "")];
    let reply = send(&ep, &START_KEY, "GET", &path, &uploads).await;
    assert_eq!(
        reply.all("UploadId"),
        [upload_id.as_str()],
        "{}",
        reply.body
    );
    assert!(ep.requests().is_empty(), "recording starts off");

    ep.record_requests(true);
    let reply = send_via(&ep, &START_KEY, &host, Form::Proxy, "GET", &path, &uploads).await;
    assert_eq!(
        reply.all("UploadId"),
        [upload_id.as_str()],
        "{}",
        reply.body
    );
    ep.update_faults(|f| f.slowdown_fraction = 1.0);
    let reply = send(&ep, &START_KEY, "GET", &path, &uploads).await;
    assert_eq!(reply.status, 503);

    let log = ep.requests();
    let seen: Vec<(&str, u16)> = log.iter().map(|r| (r.target.as_str(), r.status)).collect();
    let absolute = format!("http://{host}{path}?uploads=");
    let origin = format!("{path}?uploads=");
    assert_eq!(seen, [(absolute.as_str(), 200), (origin.as_str(), 503)]);
    assert!(
        log.iter()
            .all(|r| r.host == host && r.region == "us-east-1")
    );
    assert_eq!(ep.stats().requests, 3);
}
