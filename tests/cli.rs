//! The binary as a user runs it: exit codes, messages for bad configuration, check-config, and `once`
//! / `plan` against a real Garage with a missing bucket beside good ones.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use chrono::Utc;
use common::{garage, janitor, janitor_with_env, list_all, seed_many};
use serde_json::Value;

/// A listener standing in for an S3 endpoint that must never be contacted.
fn tripwire() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn bad_configs_exit_2_with_the_key_the_value_and_nothing_contacted() {
    let (listener, url) = tripwire();
    let table = [
        ("[defaults]\nolder_then = \"3d\"\n", "older_then"),
        (
            "[defaults]\nolder_than = \"3 parsecs\"\n",
            "defaults.older_than: invalid duration \"3 parsecs\"",
        ),
        (
            "[defaults]\nschedule = \"0 0 * * *\"\n",
            "defaults.schedule: \"0 0 * * *\" is not a 6-field cron",
        ),
        ("", "targets[1].bucket: missing bucket name"),
    ];
    for (extra, needle) in table {
        let text = format!(
            "{extra}\n[[targets]]\nbucket = \"b\"\nendpoint_url = \"{url}\"\n[[targets]]\nprefix = \"x/\"\nbucket = \"{}\"\n",
            if needle.contains("missing bucket") {
                ""
            } else {
                "c"
            }
        );
        let out = janitor(&text, &["once"]);
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{extra:?}: {:?} lacks {needle:?}",
            out.stderr
        );
        assert!(
            out.stderr.contains("config.toml"),
            "source named: {}",
            out.stderr
        );
    }
    assert!(
        listener.accept().is_err(),
        "a bad config must not contact the endpoint"
    );
}

#[test]
fn a_missing_config_file_says_where_it_looked() {
    let out = common::run_janitor("/nonexistent/janitor.toml".as_ref(), &["once"], &[]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("/nonexistent/janitor.toml"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = janitor("[[targets]]\nbucket=\"b\"\n", &["once", "--output", "yaml"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn check_config_prints_the_effective_config_with_env_layers_and_no_secrets() {
    let text = "[defaults]\nolder_than = \"7d\"\nendpoint_url = \"https://key:s3cr3t@s3.example\"\n\
                [metrics]\npushgateway_url = \"https://u:pushpass@pg.example\"\n\
                [[targets]]\nbucket = \"a\"\n[[targets]]\nbucket = \"b\"\nolder_than = \"1d\"\n";
    let out = janitor_with_env(
        text,
        &["check-config"],
        &[
            ("MPU_JANITOR_DEFAULTS__OLDER_THAN", "3d"),
            ("MPU_JANITOR_METRICS__LISTEN", "0.0.0.0:9464"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: toml::Value = toml::from_str(&out.stdout).expect("check-config prints TOML");
    assert_eq!(doc["defaults"]["older_than"].as_str(), Some("3days"));
    assert_eq!(doc["metrics"]["listen"].as_str(), Some("0.0.0.0:9464"));
    assert_eq!(doc["targets"][1]["older_than"].as_str(), Some("1day"));
    assert!(
        doc["targets"][0].get("older_than").is_none(),
        "inherited keys are not repeated"
    );
    assert!(
        out.stdout.contains("MPU_JANITOR_DEFAULTS__OLDER_THAN"),
        "layers listed"
    );
    for secret in ["s3cr3t", "pushpass", super_secret()] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

fn super_secret() -> &'static str {
    common::SECRET_KEY
}

#[test]
fn once_sweeps_good_buckets_beside_a_missing_one_and_exits_1() {
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let (b1, b2) = rt.block_on(async { (g.bucket("good1").await, g.bucket("good2").await) });
    rt.block_on(async {
        seed_many(&client, &b1, 5, |i| (format!("x/{i}"), vec![100, 28])).await;
        seed_many(&client, &b2, 3, |i| (format!("y/{i}"), vec![1000])).await;
    });
    let seeded = Utc::now();
    common::wait_until("uploads older than 1s", Duration::from_secs(5), || {
        Utc::now() - seeded > chrono::Duration::milliseconds(1_200)
    });
    let text = format!(
        "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{b1}\"\n[[targets]]\nbucket = \"missing-bucket\"\n[[targets]]\nbucket = \"{b2}\"\n",
        g.defaults_toml()
    );
    let out = janitor(&text, &["once", "--output", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    let t = report["targets"].as_array().unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[0]["bucket"], b1.as_str());
    assert_eq!(t[0]["aborted"], 5);
    assert_eq!(t[0]["reclaimed_bytes"], 5 * 128);
    assert_eq!(t[0]["error"], Value::Null);
    assert!(
        t[1]["error"].as_str().unwrap().contains("NoSuchBucket"),
        "{}",
        t[1]
    );
    assert_eq!(t[2]["aborted"], 3);
    assert_eq!(t[2]["reclaimed_bytes"], 3000);
    // The schema of spec.md.
    for key in [
        "bucket",
        "prefix",
        "uploads_seen",
        "stale",
        "aborted",
        "unverified",
        "failed",
        "skipped_idle",
        "skipped_excluded",
        "abort_attempts",
        "reclaimed_bytes",
        "error",
        "uploads",
    ] {
        assert!(t[0].get(key).is_some(), "target lacks {key}");
    }
    for key in [
        "key",
        "upload_id",
        "initiated",
        "age_seconds",
        "parts",
        "bytes",
        "outcome",
    ] {
        assert!(t[0]["uploads"][0].get(key).is_some(), "upload lacks {key}");
    }
    assert_eq!(t[0]["uploads"][0]["outcome"], "aborted");
    assert_eq!(report["dry_run"], false);
    assert!(report["started_at"].as_str().unwrap().ends_with('Z'));
    rt.block_on(async {
        assert!(list_all(&client, &b1).await.is_empty());
        assert!(list_all(&client, &b2).await.is_empty());
    });
    // The text report says the same in words.
    let out = janitor(&text, &["once"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("[FAILED]") && out.stdout.contains("NoSuchBucket"),
        "{}",
        out.stdout
    );
}

#[test]
fn plan_and_dry_run_list_uploads_and_change_nothing() {
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let b = rt.block_on(g.bucket("plan"));
    rt.block_on(seed_many(&client, &b, 4, |i| {
        (format!("p/{i}"), vec![10, 20, 30])
    }));
    let before = rt.block_on(list_all(&client, &b));
    let seeded = Utc::now();
    common::wait_until("uploads older than 1s", Duration::from_secs(5), || {
        Utc::now() - seeded > chrono::Duration::milliseconds(1_200)
    });
    let text = format!(
        "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{b}\"\n",
        g.defaults_toml()
    );
    let plan = janitor(&text, &["plan", "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let report: Value = serde_json::from_str(&plan.stdout).unwrap();
    let uploads = report["targets"][0]["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 4);
    assert!(
        uploads
            .iter()
            .all(|u| u["outcome"] == "would_abort" && u["bytes"] == 60 && u["parts"] == 3)
    );
    let table = janitor(&text, &["plan"]);
    assert!(
        table.stdout.contains("4 stale of 4") && table.stdout.contains("p/3"),
        "{}",
        table.stdout
    );
    let dry = janitor(&text, &["once", "--dry-run", "--output", "json"]);
    assert_eq!(dry.code, 0);
    let report: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["targets"][0]["would_abort"], 4);
    assert_eq!(rt.block_on(list_all(&client, &b)), before);
}

#[test]
fn an_unreachable_endpoint_and_bad_credentials_fail_their_target_with_one_clear_line() {
    let g = garage();
    let (listener, _) = tripwire();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener); // nothing listens there now
    let text = format!(
        "[defaults]\nregion = \"garage\"\nforce_path_style = true\nretry_max_attempts = 2\nconnect_timeout = \"1s\"\n\
         [[targets]]\nbucket = \"a\"\nendpoint_url = \"{dead}\"\n[[targets]]\nbucket = \"b\"\nendpoint_url = \"{}\"\n",
        g.endpoint
    );
    let out = janitor_with_env(
        &text,
        &["once", "--output", "json"],
        &[("AWS_SECRET_ACCESS_KEY", "wrong")],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let t = &report["targets"];
    assert_eq!(t[0]["errors"][0]["kind"], "network", "{t}");
    assert_eq!(t[1]["errors"][0]["kind"], "credentials", "{t}");
    assert!(!out.stdout.contains("panicked") && !out.stderr.contains("panicked"));
    assert!(
        !out.stdout.contains("wrong") || !out.stdout.contains("AWS_SECRET"),
        "no secret echoed"
    );
}

#[test]
fn three_shards_sweep_every_target_exactly_once() {
    // Twelve buckets, three processes with JOB_COMPLETION_INDEX 0..3 and a shard count from the
    // environment, as a Kubernetes Indexed Job runs them.
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let buckets: Vec<String> = (0..12)
        .map(|i| rt.block_on(g.bucket(&format!("shard{i}"))))
        .collect();
    for b in &buckets {
        rt.block_on(seed_many(&client, b, 2, |i| (format!("s/{i}"), vec![10])));
    }
    let seeded = Utc::now();
    common::wait_until("uploads older than 1s", Duration::from_secs(5), || {
        Utc::now() - seeded > chrono::Duration::milliseconds(1_200)
    });
    let mut text = format!("[defaults]\n{}older_than = \"1s\"\n", g.defaults_toml());
    for b in &buckets {
        text.push_str(&format!("[[targets]]\nbucket = \"{b}\"\n"));
    }
    let mut swept = Vec::new();
    for index in ["0", "1", "2"] {
        let out = janitor_with_env(
            &text,
            &["once", "--output", "json"],
            &[
                ("JOB_COMPLETION_INDEX", index),
                ("MPU_JANITOR_SHARDING__COUNT", "3"),
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        let targets = report["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "shard {index} got no target");
        for t in targets {
            assert_eq!(t["aborted"], 2);
            swept.push(t["bucket"].as_str().unwrap().to_string());
        }
    }
    swept.sort();
    let mut want = buckets.clone();
    want.sort();
    assert_eq!(swept, want, "every target exactly once");
    for b in &buckets {
        assert!(rt.block_on(list_all(&client, b)).is_empty());
    }
}

#[test]
fn a_ca_bundle_without_certificates_fails_its_target_with_a_clear_line() {
    // ca_bundle (and AWS_CA_BUNDLE) must hold PEM certificates; anything else is reported per target.
    let g = garage();
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bundle.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let text = format!(
        "[defaults]\n{}\n[[targets]]\nbucket = \"a\"\nca_bundle = \"{}\"\n",
        g.defaults_toml(),
        bogus.display()
    );
    let out = janitor(&text, &["once", "--output", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let e = report["targets"][0]["error"].as_str().unwrap();
    assert!(
        e.contains("holds no PEM certificate") && e.contains("bundle.pem"),
        "{e}"
    );
    // The same through the environment variable aws-config itself ignores.
    let text = format!(
        "[defaults]\n{}\n[[targets]]\nbucket = \"a\"\n",
        g.defaults_toml()
    );
    let out = janitor_with_env(
        &text,
        &["once", "--output", "json"],
        &[("AWS_CA_BUNDLE", bogus.to_str().unwrap())],
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        report["targets"][0]["error"]
            .as_str()
            .unwrap()
            .contains("holds no PEM certificate")
    );
}
