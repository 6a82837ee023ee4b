//! The lifecycle audit, on Garage and Ceph RGW: a bucket whose lifecycle rule aborts incomplete
//! uploads after 3 days is reported so (JSON, `plan`, the `mpu_janitor_lifecycle_abort_rule_days`
//! gauge), a rule on another prefix does not cover the target, a bucket without rules says "no
//! lifecycle abort rule" and has no gauge; the sweep itself is the same either way. The JuiceFS
//! gateway has no lifecycle API (501 NotImplemented): there the audit says the rules are unknown
//! and the sweep exits 0. On the embedded endpoint, a denied read is reported and never fails the
//! sweep.

use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter,
};
use mpu_janitor::lifecycle::Audit;
use s3_mem::Faults;
use serde_json::Value;

use crate::common::endpoint::{TWO_PARTS, endpoint, opts, seed_old, settings, sweep};
use crate::common::garage::seed_many;
use crate::common::server::servers;
use crate::common::target;

/// Puts one enabled rule aborting uploads under `prefix` after `days` days.
async fn put_abort_rule(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str, days: i32) {
    let rule = LifecycleRule::builder()
        .id(format!("abort-{days}"))
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        )
        .build()
        .unwrap();
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put lifecycle on {bucket}: {e:?}"));
}

#[test]
fn the_lifecycle_audit_says_whether_a_rule_aborts_the_targets_uploads() {
    for g in servers() {
        eprintln!("== on {}", g.name);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = g.client();
        if g.quirks.no_lifecycle {
            no_lifecycle_api_is_unknown_and_the_sweep_goes_on(g, &rt);
            continue;
        }
        let (ruled, other, bare) = (
            rt.block_on(g.bucket("lc-ruled")),
            rt.block_on(g.bucket("lc-other")),
            rt.block_on(g.bucket("lc-bare")),
        );
        rt.block_on(put_abort_rule(&client, &ruled, "", 3));
        rt.block_on(put_abort_rule(&client, &other, "tmp/", 1));
        for b in [&ruled, &other, &bare] {
            rt.block_on(seed_many(&client, b, 2, |i| (format!("k/{i}"), vec![10])));
        }
        let dir = tempfile::tempdir().unwrap();
        let textfile = dir.path().join("janitor.prom");
        let text = format!(
            "[defaults]\n{}older_than = \"1d\"\n[metrics]\ntextfile = \"{}\"\n[[targets]]\nbucket = \"{ruled}\"\n[[targets]]\nbucket = \"{other}\"\nprefix = \"k/\"\n[[targets]]\nbucket = \"{bare}\"\n",
            g.defaults_toml(),
            textfile.display()
        );
        let once = g.janitor(&text, &["once", "--output", "json"]);
        assert_eq!(once.code, 0, "{}", once.stderr);
        let report: Value = serde_json::from_str(&once.stdout).unwrap();
        let t = &report["targets"];
        assert_eq!(
            t[0]["lifecycle"],
            serde_json::json!({"status": "rule", "days": 3, "rule_id": "abort-3"}),
            "{}",
            g.name
        );
        assert_eq!(t[1]["lifecycle"]["status"], "none", "tmp/ leaves k/ out");
        assert_eq!(t[2]["lifecycle"]["status"], "none", "{}", g.name);
        // The uploads are fresh: the sweep kept them, whatever the rules.
        assert_eq!(t[0]["skipped_fresh"], 2);
        let metrics = std::fs::read_to_string(&textfile).unwrap();
        assert!(
            metrics.contains(&format!(
                "mpu_janitor_lifecycle_abort_rule_days{{bucket=\"{ruled}\"}} 3"
            )),
            "{metrics}"
        );
        for b in [&other, &bare] {
            assert!(
                !metrics.contains(&format!("lifecycle_abort_rule_days{{bucket=\"{b}\"}}")),
                "absent when none: {metrics}"
            );
        }
        let plan = g.janitor(&text, &["plan"]);
        assert_eq!(plan.code, 0, "{}", plan.stderr);
        assert!(
            plan.stdout.contains(
                "lifecycle: lifecycle rule \"abort-3\" aborts incomplete uploads after 3 days"
            ),
            "{}",
            plan.stdout
        );
        assert!(
            plan.stdout
                .contains("lifecycle: no lifecycle abort rule: only this janitor cleans up"),
            "{}",
            plan.stdout
        );
    }
}

/// On a server without the lifecycle API (JuiceFS): putting a rule is refused 501 NotImplemented,
/// the audit reports the rules as unknown with the store's answer, and `once` sweeps and exits 0.
fn no_lifecycle_api_is_unknown_and_the_sweep_goes_on(
    g: &crate::common::server::S3Server,
    rt: &tokio::runtime::Runtime,
) {
    let client = g.client();
    let b = rt.block_on(g.bucket("lc-none"));
    let rule = LifecycleRule::builder()
        .id("abort-3")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(3)
                .build(),
        )
        .build()
        .unwrap();
    let put = rt.block_on(
        client
            .put_bucket_lifecycle_configuration()
            .bucket(&b)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .unwrap(),
            )
            .send(),
    );
    let e = put.expect_err("no lifecycle API");
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("NotImplemented"),
        "{}",
        g.name
    );
    rt.block_on(seed_many(&client, &b, 2, |i| (format!("k/{i}"), vec![10])));
    let text = format!(
        "[defaults]\n{}older_than = \"1d\"\n[[targets]]\nbucket = \"{b}\"\n",
        g.defaults_toml()
    );
    let once = g.janitor(&text, &["once", "--output", "json"]);
    assert_eq!(once.code, 0, "{}: {}", g.name, once.stderr);
    let report: Value = serde_json::from_str(&once.stdout).unwrap();
    let t = &report["targets"][0];
    assert_eq!(t["lifecycle"]["status"], "unknown", "{}: {t}", g.name);
    assert!(
        t["lifecycle"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("NotImplemented")),
        "{}: {t}",
        g.name
    );
    assert_eq!(
        (t["skipped_fresh"].as_u64(), t["error"].is_null()),
        (Some(2), true)
    );
    eprintln!("{}: no lifecycle API; audit unknown, once exits 0", g.name);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_lifecycle_read_is_reported_and_never_fails_the_sweep() {
    let ep = endpoint().await;
    seed_old(&ep, "denied-lc", "k/", 5, TWO_PARTS);
    ep.set_faults(Faults {
        deny_lifecycle: true,
        ..Faults::default()
    });
    let r = sweep(&target("denied-lc", settings(&ep)), &opts()).await;
    assert_eq!((r.aborted, r.failed), (5, 0), "{:?}", r.errors);
    assert_eq!(r.error, None);
    assert!(!r.is_failure());
    match &r.lifecycle {
        Some(Audit::Unknown { detail }) => {
            assert!(detail.contains("AccessDenied"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    // Without the fault the endpoint has no lifecycle configuration: "none".
    ep.set_faults(Faults::default());
    seed_old(&ep, "denied-lc", "k/", 1, TWO_PARTS);
    let r = sweep(&target("denied-lc", settings(&ep)), &opts()).await;
    assert_eq!(r.lifecycle, Some(Audit::None));
}
