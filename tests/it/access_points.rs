//! Access points: an access point ARN and an alias as `bucket`, routed by aws-sdk-s3's endpoint
//! rules to the access point's host and signed for the ARN's region, on both request paths. The
//! embedded endpoint serves virtual-hosted names under a test domain and is given to the janitor
//! as its HTTP proxy, so those names need no DNS; it verifies every signature and logs the host
//! and credential scope of every request. check-config shows each target's addressing (Outposts
//! and multi-region access points included, which no endpoint here can serve: see the README's
//! "Where it works") and refuses an ARN the rules cannot parse.

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{HumanDuration, RequestPathSetting, Settings};
use s3_mem::Endpoint;

use crate::common::endpoint::{AK, SK, connector, opts, sweep};
use crate::common::janitor::janitor_as;
use crate::common::target;

const ARN: &str = "arn:aws:s3:us-west-2:123456789012:accesspoint/reports";
/// The name the rules give the ARN under a custom endpoint: `NAME-ACCOUNT`.
const ARN_HOST_LABEL: &str = "reports-123456789012";
const ALIAS: &str = "reports-abcdefghijklmnopqrstuvwxyz12-s3alias";

async fn endpoint() -> Endpoint {
    let ep = Endpoint::start_with_domain(AK, SK, "s3.test")
        .await
        .unwrap();
    ep.record_requests(true);
    ep
}

fn settings(ep: &Endpoint, path: RequestPathSetting) -> Settings {
    Settings {
        endpoint_url: format!("http://s3.test:{}", ep.addr().port())
            .parse()
            .unwrap(),
        proxy: ep.url().parse().unwrap(),
        region: "us-east-1".into(),
        older_than: HumanDuration::secs(86_400),
        request_path: path,
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_access_point_arn_and_an_alias_reach_the_access_points_host_on_both_paths() {
    for path in [RequestPathSetting::Auto, RequestPathSetting::Sdk] {
        let ep = endpoint().await;
        let old = Utc::now() - TimeDelta::days(2);
        for (bucket, n) in [(ARN_HOST_LABEL, 4), (ALIAS, 3)] {
            ep.create_bucket(bucket);
            for i in 0..n {
                ep.seed_upload(bucket, &format!("k{i}"), old, &[(1, 100)]);
            }
        }
        let port = ep.addr().port();
        for (bucket, stored, region, n) in [
            (ARN, ARN_HOST_LABEL, "us-west-2", 4),
            (ALIAS, ALIAS, "us-east-1", 3),
        ] {
            let host = format!("{stored}.s3.test:{port}");
            ep.reset_requests();
            let t = target(bucket, settings(&ep, path));
            let store = connector()
                .store(bucket, &t.settings.client())
                .await
                .unwrap();
            let expected = if path == RequestPathSetting::Sdk {
                "sdk"
            } else {
                "lean"
            };
            assert_eq!(store.request_path(), expected, "{bucket}");
            let r = sweep(&t, &opts()).await;
            assert!(r.error.is_none(), "{path:?} {bucket}: {:?}", r.error);
            assert_eq!((r.bucket.as_str(), r.aborted), (bucket, n), "{path:?}");
            let requests = ep.requests();
            // ListMultipartUploads and the lifecycle audit, then ListParts, abort, ListParts
            // (answered NoSuchUpload) for each upload: none refused.
            assert_eq!(requests.len(), 2 + 3 * n as usize, "{path:?} {requests:?}");
            for q in &requests {
                assert_eq!(q.host, host, "{path:?} {q:?}");
                assert!(!q.path.contains(stored), "virtual-hosted: {q:?}");
                assert_eq!(
                    (q.region.as_str(), q.service.as_str()),
                    (region, "s3"),
                    "{path:?} {q:?}"
                );
                assert!([200, 204, 404].contains(&q.status), "{q:?}");
            }
            let by = |m: &str| requests.iter().filter(|q| q.method == m).count();
            assert_eq!((by("DELETE"), by("GET")), (n as usize, 2 + 2 * n as usize));
            assert_eq!(ep.upload_count(stored), 0, "{path:?}");
        }
    }
}

#[test]
fn check_config_shows_how_each_kind_is_addressed_and_refuses_an_unparseable_arn() {
    let config = |buckets: &[&str]| {
        let mut c = "[defaults]\nregion = \"us-west-2\"\n".to_string();
        for b in buckets {
            c.push_str(&format!("[[targets]]\nbucket = \"{b}\"\n"));
        }
        c
    };
    let out = janitor_as(
        (AK, SK),
        &config(&[
            "logs",
            ARN,
            ALIAS,
            "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-01234567890123456/accesspoint/reports",
            "arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap",
        ]),
        &["check-config"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        "targets[0] \"logs\": general-purpose bucket at https://logs.s3.us-west-2.amazonaws.com (virtual-hosted), signed sigv4 as \"s3\" in us-west-2\n",
        "targets[1] \"arn:aws:s3:us-west-2:123456789012:accesspoint/reports\": access point ARN at https://reports-123456789012.s3-accesspoint.us-west-2.amazonaws.com (virtual-hosted), signed sigv4 as \"s3\" in us-west-2\n",
        "targets[2] \"reports-abcdefghijklmnopqrstuvwxyz12-s3alias\": access point alias at https://reports-abcdefghijklmnopqrstuvwxyz12-s3alias.s3.us-west-2.amazonaws.com (virtual-hosted), signed sigv4 as \"s3\" in us-west-2\n",
        "S3 on Outposts access point ARN at https://reports-123456789012.op-01234567890123456.s3-outposts.us-west-2.amazonaws.com (virtual-hosted), signed sigv4a as \"s3-outposts\" in *; through the SDK request path",
        "multi-region access point ARN at https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com (virtual-hosted), signed sigv4a as \"s3\" in *; through the SDK request path",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing {line:?} in\n{}",
            out.stdout
        );
    }
    for (bucket, message) in [
        (
            "arn:aws:s3:us-west-2:123456789012:bucket/foo",
            "Invalid ARN: Unrecognized format",
        ),
        ("arn:nope", "was not a valid ARN"),
    ] {
        let out = janitor_as((AK, SK), &config(&[bucket]), &["check-config"]);
        assert_eq!(out.code, 2, "{bucket}: {}", out.stdout);
        assert!(
            out.stderr.contains(&format!(
                "targets[0].bucket: {bucket:?} cannot be addressed: "
            )) && out.stderr.contains(message),
            "{}",
            out.stderr
        );
    }
    // Path style cannot address an ARN: refused before anything is sent.
    let out = janitor_as(
        (AK, SK),
        &format!("{}force_path_style = true\n", config(&[ARN])),
        &["check-config"],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("Path-style addressing cannot be used with ARN buckets"),
        "{}",
        out.stderr
    );
}
