//! The binary as a user runs it: exit codes and messages for bad configuration, check-config,
//! `once` on every real server (Garage, Ceph RGW, the JuiceFS gateway) verifying every abort and exiting 0, `once`
//! against Garage with a missing bucket beside good ones, failing targets with one clear line,
//! sharding, CA bundle errors, `demo` (its figures match the scene it seeded), and TLS with a
//! private CA in front of the embedded endpoint.

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{Settings, shard_of};
use mpu_janitor::report::TargetReport;
use mpu_janitor::sweep::SweepOptions;
use serde_json::Value;

use crate::common::endpoint::{AK, SK, endpoint, sweep};
use crate::common::garage::{SECRET_KEY, garage, list_all, seed_many, wait_older_than_1s};
use crate::common::janitor::{Output, command, janitor, janitor_with_env, run_janitor};
use crate::common::server::servers;
use crate::common::tls::tls_proxy;
use crate::common::{settings_at, target, tripwire};

#[test]
fn a_wrong_region_on_a_real_server_says_which_setting_to_fix() {
    // The first-hour mistake: the default us-east-1 against a store with its own region. Garage
    // and Ceph RGW refuse the signature's scope; the error says the region is the thing to set.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for g in servers().into_iter().filter(|g| g.name == "garage") {
        let b = rt.block_on(g.bucket("region"));
        let text = format!(
            "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\nregion = \"eu-west-1\"\n[[targets]]\nbucket = \"{b}\"\n",
            g.endpoint
        );
        let out = g.janitor(&text, &["once"]);
        println!("{}: {}", g.name, out.stdout);
        assert_eq!(out.code, 1, "{}: {}\n{}", g.name, out.stdout, out.stderr);
        let error = out
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("error:"))
            .unwrap_or_default();
        assert!(
            error.contains(&format!("set region = \"{}\"", g.region)),
            "{}: {error}",
            g.name
        );
    }
}

#[test]
fn once_on_every_real_server_verifies_every_abort_reclaims_the_exact_bytes_and_exits_0() {
    // On Garage, on Ceph RGW (whose ListParts answers 404 NoSuchKey once an upload is gone) and on
    // the JuiceFS gateway:
    // 30 stale uploads of two parts (5 + 7 bytes) and 2 under an excluded prefix. `once` aborts and
    // verifies the 30, reclaims exactly 360 bytes, keeps the 2 and exits 0.
    let rt = tokio::runtime::Runtime::new().unwrap();
    for g in servers() {
        let client = g.client();
        let b = rt.block_on(g.bucket("once"));
        rt.block_on(seed_many(&client, &b, 30, |i| {
            (format!("stale/{i:02}"), vec![5, 7])
        }));
        let kept = rt.block_on(seed_many(&client, &b, 2, |i| {
            (format!("keep/{i}"), vec![1])
        }));
        wait_older_than_1s();
        let text = format!(
            "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{b}\"\nexclude_prefixes = [\"keep/\"]\n",
            g.defaults_toml()
        );
        let out = g.janitor(&text, &["once", "--output", "json"]);
        assert_eq!(out.code, 0, "{}: {}\n{}", g.name, out.stdout, out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        let t = &report["targets"][0];
        let figures = [
            "uploads_seen",
            "aborted",
            "failed",
            "unverified",
            "skipped_excluded",
        ]
        .map(|f| t[f].as_u64().unwrap());
        assert_eq!(figures, [32, 30, 0, 0, 2], "{}: {t}", g.name);
        assert_eq!(t["reclaimed_bytes"], 360, "{}", g.name);
        assert_eq!(t["abort_attempts"], 30, "{}", g.name);
        let mut left = rt.block_on(list_all(&client, &b));
        left.sort();
        let mut kept = kept;
        kept.sort();
        assert_eq!(left, kept, "{}: only the excluded uploads are left", g.name);
        eprintln!("{}: once aborted 30, reclaimed 360 bytes, exit 0", g.name);
    }
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
    let out = run_janitor("/nonexistent/janitor.toml".as_ref(), &["once"], &[]);
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
    let text = "[defaults]\nolder_than = \"7d\"\nendpoint_url = \"https://s3.example/?token=s3cr3t\"\n\
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
    SECRET_KEY
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
    wait_older_than_1s();
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
    // Buckets in every shard, three processes with JOB_COMPLETION_INDEX 0..3 and a shard count from the
    // environment, as a Kubernetes Indexed Job runs them.
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    // Bucket names carry the process id, so which shard each lands in varies by run: create buckets
    // until every shard holds at least two, so no shard is empty by chance.
    let mut buckets: Vec<String> = Vec::new();
    let mut per_shard = [0; 3];
    while per_shard.iter().any(|&n| n < 2) {
        assert!(
            buckets.len() < 100,
            "FNV-1a spreads bucket names over the shards"
        );
        let b = rt.block_on(g.bucket(&format!("shard{}", buckets.len())));
        per_shard[shard_of(&b, "", 3) as usize] += 1;
        buckets.push(b);
    }
    for b in &buckets {
        rt.block_on(seed_many(&client, b, 2, |i| (format!("s/{i}"), vec![10])));
    }
    wait_older_than_1s();
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
            let bucket = t["bucket"].as_str().unwrap();
            assert_eq!(
                shard_of(bucket, "", 3).to_string(),
                index,
                "{bucket} in its own shard"
            );
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

/// Runs `mpu-janitor demo`; (exit code, stdout, stderr).
fn demo(args: &[&str]) -> (i32, String, String) {
    // The demo needs no account: make sure none leaks in from the host.
    let out = command(None)
        .arg("demo")
        .args(args)
        .output()
        .expect("run demo");
    Output::from(out).into_parts()
}

fn sum(report: &Value, field: &str) -> u64 {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t[field].as_u64().unwrap())
        .sum()
}

#[test]
fn demo_json_figures_match_the_seeded_scene_at_any_size() {
    let mut stale_counts = Vec::new();
    for uploads in ["60", "300"] {
        let (code, stdout, stderr) = demo(&["--output", "json", "--uploads", uploads]);
        assert_eq!(code, 0, "{stderr}");
        let d: Value = serde_json::from_str(&stdout).expect("JSON");
        let scene = &d["scene"];
        let report = &d["report"];
        assert_eq!(d["matches_scene"], true);
        assert_eq!(sum(report, "aborted"), scene["stale"].as_u64().unwrap());
        assert_eq!(
            sum(report, "reclaimed_bytes"),
            scene["stale_bytes"].as_u64().unwrap()
        );
        assert_eq!(
            sum(report, "unverified"),
            scene["never_empty"].as_u64().unwrap()
        );
        assert_eq!(sum(report, "skipped_idle"), scene["idle"].as_u64().unwrap());
        assert_eq!(
            sum(report, "skipped_excluded"),
            scene["excluded"].as_u64().unwrap()
        );
        assert_eq!(
            sum(report, "skipped_fresh"),
            scene["fresh"].as_u64().unwrap()
        );
        // The straggler needs two aborts, the stuck upload max_abort_attempts (3); the
        // directory-bucket upload replaced under its id after the plan takes one refused abort
        // (412) and is kept, not stale.
        let stale = sum(report, "stale");
        let replaced = scene["replaced"].as_u64().unwrap();
        assert_eq!(replaced, 1);
        assert_eq!(sum(report, "skipped_suspicious"), replaced);
        assert_eq!(sum(report, "abort_attempts"), stale + 1 + 2 + replaced);
        // The plan changed nothing and saw the same stale uploads, the replaced one among them.
        assert_eq!(sum(&d["plan"], "would_abort"), stale + replaced);
        assert_eq!(sum(&d["plan"], "aborted"), 0);
        assert_eq!(
            d["uploads_left"].as_u64().unwrap(),
            scene["uploads"].as_u64().unwrap() - scene["stale"].as_u64().unwrap()
        );
        assert!(d["metrics"].as_str().unwrap().contains(&format!(
            "mpu_janitor_reclaimed_bytes_total{{bucket=\"db-backups\"}} {}",
            report["targets"][1]["reclaimed_bytes"]
        )));
        // Beside the S3 buckets: a directory bucket and a Glacier vault, labelled by name.
        let buckets: Vec<&str> = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["bucket"].as_str().unwrap())
            .collect();
        assert_eq!(
            buckets,
            [
                "media-uploads",
                "db-backups",
                "scratch--use1-az4--x-s3",
                "vault:archive"
            ]
        );
        for t in &report["targets"].as_array().unwrap()[2..] {
            assert!(t["aborted"].as_u64().unwrap() > 0, "{t}");
            let series = format!(
                "mpu_janitor_reclaimed_bytes_total{{bucket={}}} {}",
                t["bucket"], t["reclaimed_bytes"]
            );
            assert!(d["metrics"].as_str().unwrap().contains(&series), "{series}");
        }
        stale_counts.push(stale);
    }
    assert!(
        stale_counts[1] > stale_counts[0],
        "a bigger scene gives bigger numbers: {stale_counts:?}"
    );
}

#[test]
fn demo_text_shows_plan_sweep_metrics_and_check() {
    let (code, stdout, stderr) = demo(&[]);
    assert_eq!(code, 0, "{stderr}");
    for section in [
        "== Plan",
        "== Sweep",
        "== Metrics",
        "== Check",
        "UNVERIFIED",
        "mpu_janitor_reclaimed_bytes_total",
    ] {
        assert!(stdout.contains(section), "missing {section:?} in\n{stdout}");
    }
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
}

/// Sweeps the TLS test's bucket with these settings.
async fn sweep_with(settings: Settings) -> TargetReport {
    sweep(&target("tls-bucket", settings), &SweepOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_through_ca_bundle_or_aws_ca_bundle_and_refused_without() {
    let ep = endpoint().await;
    ep.create_bucket("tls-bucket");
    for i in 0..5 {
        ep.seed_upload(
            "tls-bucket",
            &format!("k{i}"),
            Utc::now() - TimeDelta::days(9),
            &[(1, 10)],
        );
    }
    let (url, ca_pem) = tls_proxy(ep.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    let base = Settings {
        retry_max_attempts: 1,
        ..settings_at(&url)
    };

    // Without the CA: the certificate is refused, nothing is touched.
    let r = sweep_with(base.clone()).await;
    let e = r.error.expect("TLS refused");
    assert_eq!(r.errors[0].kind.as_str(), "network", "{e}");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert_eq!(ep.upload_count("tls-bucket"), 5);

    // With ca_bundle: trusted, swept.
    let r = sweep_with(Settings {
        ca_bundle: ca_path.clone(),
        ..base.clone()
    })
    .await;
    assert_eq!((r.error, r.aborted), (None, 5));

    // With AWS_CA_BUNDLE, through the binary (the variable is read from its environment).
    for i in 0..3 {
        ep.seed_upload(
            "tls-bucket",
            &format!("e{i}"),
            Utc::now() - TimeDelta::days(9),
            &[(1, 10)],
        );
    }
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[defaults]\nendpoint_url = \"{url}\"\nforce_path_style = true\n[[targets]]\nbucket = \"tls-bucket\"\n"),
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        command(Some((AK, SK)))
            .arg("--config")
            .arg(&cfg)
            .args(["once", "--output", "json"])
            .env("AWS_CA_BUNDLE", &ca_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["targets"][0]["aborted"], 3);
    assert_eq!(ep.upload_count("tls-bucket"), 0);
}

#[test]
fn a_report_piped_into_head_ends_quietly_without_a_panic() {
    // `demo | head -n 1` closed the pipe under the demo's next line: it panicked (exit 101).
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' demo | head -n 1",
            env!("CARGO_BIN_EXE_mpu-janitor")
        ))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.starts_with("mpu-janitor demo: "), "{stdout}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn demo_refuses_a_config_it_would_ignore() {
    let (code, stdout, stderr) = demo(&["--config", "/etc/janitor.toml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--config /etc/janitor.toml would be ignored"),
        "{stderr}"
    );
}
