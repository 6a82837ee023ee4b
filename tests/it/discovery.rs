//! Discovery (`bucket = "*"`) through the real binary. On the embedded endpoint: ListBuckets over
//! several pages, include and exclude globs, tags (a bucket whose tags cannot be read is skipped
//! and reported), each bucket signed for its own region, an explicit target winning over the rule,
//! a bucket deleted mid-run reported and not failed, with the exact calls counted. On Garage: 30
//! buckets, globs, explicit and discovered overlapping swept once, and a bucket created between
//! two `run` sweeps picked up by the second.

use std::collections::BTreeSet;
use std::time::Duration;

use s3_mem::Faults;
use serde_json::Value;

use crate::common::endpoint::{AK, SK};
use crate::common::endpoint::{TWO_PARTS, config_toml, endpoint, seed_old};
use crate::common::garage::{garage, list_all, seed, wait_older_than_1s};
use crate::common::janitor::{Janitor, janitor_as, spawn_janitor};
use crate::common::wait_until;

/// The JSON report's targets by bucket.
fn by_bucket(report: &Value) -> std::collections::BTreeMap<String, Value> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["bucket"].as_str().unwrap().to_string(), t.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_lists_every_page_filters_by_globs_and_tags_and_signs_each_bucket_for_its_region()
{
    let ep = endpoint().await;
    // Nine buckets: three ListBuckets pages of at most 4.
    for b in [
        "logs-a", "logs-b", "logs-tmp", "media-a", "media-b", "media-c", "other", "zz-last",
    ] {
        seed_old(&ep, b, "k", 2, TWO_PARTS);
    }
    ep.create_bucket_in("logs-eu", "eu-west-1");
    seed_old(&ep, "logs-eu", "k", 2, TWO_PARTS);
    ep.set_bucket_tags("media-a", &[("team", "media"), ("env", "prod")]);
    ep.set_bucket_tags("media-b", &[("team", "ads")]);
    ep.set_faults(Faults {
        list_buckets_page: Some(4),
        deny_tagging: ["media-c".to_string()].into(),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("m.prom");
    let text = format!(
        "{}[[targets]]\nbucket = \"*\"\ninclude_buckets = [\"logs-*\"]\nexclude_buckets = [\"*-tmp\"]\n\
         [[targets]]\nbucket = \"*\"\ninclude_buckets = [\"media-*\"]\nbucket_tags = {{ team = \"media\" }}\n",
        config_toml(
            &ep,
            &format!(
                "[metrics]\ntextfile = {:?}\n",
                textfile.display().to_string()
            ),
            &["logs-a"]
        )
    );
    let out = tokio::task::spawn_blocking({
        let text = text.clone();
        move || janitor_as((AK, SK), &text, &["once", "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(
        out.code, 0,
        "a skipped bucket is not a failure: {}",
        out.stderr
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let targets = by_bucket(&report);
    assert_eq!(
        targets.keys().cloned().collect::<Vec<_>>(),
        ["logs-a", "logs-b", "logs-eu", "media-a"],
        "{}",
        out.stdout
    );
    assert!(
        targets["logs-a"].get("discovered_by").is_none(),
        "its own target swept it"
    );
    assert_eq!(targets["logs-b"]["discovered_by"], "targets[1]");
    assert_eq!(targets["logs-eu"]["discovered_by"], "targets[1]");
    assert_eq!(targets["media-a"]["discovered_by"], "targets[2]");
    for (b, t) in &targets {
        assert_eq!(t["aborted"], 2, "{b}");
        assert_eq!(ep.upload_count(b), 0, "{b}");
    }
    for b in ["logs-tmp", "media-b", "media-c", "other", "zz-last"] {
        assert_eq!(
            ep.upload_count(b),
            2,
            "{b} is not matched and keeps its uploads"
        );
    }
    // Each rule: one listing over three pages; tags read for the three media buckets only.
    let stats = ep.stats();
    // 2 rules x 3 pages; and one for the named bucket logs-a's creation date (found on the first
    // page), which discovered buckets take from the rules' listing instead of asking again.
    assert_eq!(stats.list_buckets, 7, "2 rules x 3 pages + 1");
    assert_eq!(stats.get_bucket_tagging, 3);
    // logs-eu is signed for its own region (from ListBuckets' BucketRegion), the rest for the
    // rule's.
    assert_eq!(
        ep.signing_regions("logs-eu"),
        BTreeSet::from(["eu-west-1".to_string()])
    );
    assert_eq!(
        ep.signing_regions("logs-b"),
        BTreeSet::from(["us-east-1".to_string()])
    );
    let d = report["discovery"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["rule"], "targets[1]");
    assert_eq!(d[0]["buckets_listed"], 9);
    assert_eq!(d[0]["buckets_matched"], 2);
    assert_eq!(
        d[0]["buckets_not_matched"], 6,
        "logs-tmp, media-*, other, zz-last"
    );
    assert_eq!(d[0]["skipped"][0]["bucket"], "logs-a");
    assert_eq!(d[0]["skipped"][0]["reason"], "swept by its own target");
    assert_eq!(d[1]["buckets_matched"], 1);
    assert_eq!(
        d[1]["buckets_not_matched"], 7,
        "6 by name, media-b by its tags"
    );
    assert_eq!(d[1]["skipped"][0]["bucket"], "media-c");
    let reason = d[1]["skipped"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("its tags cannot be read") && reason.contains("AccessDenied"),
        "{reason}"
    );
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    for line in [
        "mpu_janitor_discovered_buckets{rule=\"targets[1]\",state=\"matched\"} 2",
        "mpu_janitor_discovered_buckets{rule=\"targets[2]\",state=\"skipped\"} 1",
        "mpu_janitor_discovered_buckets{rule=\"targets[1]\",state=\"listed\"} 9",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    // plan says which rule matched each bucket, and why one was skipped.
    seed_old(&ep, "logs-b", "k", 1, TWO_PARTS);
    let plan = tokio::task::spawn_blocking(move || janitor_as((AK, SK), &text, &["plan"]))
        .await
        .unwrap();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    for needle in [
        "discovery targets[1] (include_buckets [\"logs-*\"], exclude_buckets [\"*-tmp\"]): 9 buckets listed, 2 matched",
        "discovery targets[2] (include_buckets [\"media-*\"], bucket_tags {team = \"media\"})",
        "skipped media-c: its tags cannot be read",
        "skipped logs-a: swept by its own target",
        "discovered by targets[1]",
    ] {
        assert!(
            plan.stdout.contains(needle),
            "{needle:?} not in\n{}",
            plan.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_deleted_mid_run_is_reported_not_failed() {
    let ep = endpoint().await;
    seed_old(&ep, "a-slow", "k", 2_000, TWO_PARTS);
    seed_old(&ep, "b-doomed", "k", 2, TWO_PARTS);
    ep.set_faults(Faults {
        latency: Duration::from_millis(5),
        ..Faults::default()
    });
    // One target at a time, in listing order: b-doomed is discovered, then deleted while a-slow
    // is swept.
    let text = format!(
        "{}[[targets]]\nbucket = \"*\"\n",
        config_toml(&ep, "[daemon]\nparallel_targets = 1\n", &[])
    );
    let (child, _dir) = spawn_janitor(&text, &["once", "--output", "json"], &[]);
    let child = Janitor(Some(child));
    wait_until("a-slow's first abort", Duration::from_secs(30), || {
        ep.stats().abort_multipart_upload > 0
    });
    assert!(ep.delete_bucket("b-doomed"));
    let (code, stdout, stderr) = child.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "a deleted bucket is not a failure: {stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let targets = by_bucket(&report);
    assert_eq!(targets["a-slow"]["aborted"], 2_000);
    let doomed = &targets["b-doomed"];
    assert_eq!(doomed["bucket_deleted"], true, "{doomed}");
    assert!(doomed["error"].is_null(), "{doomed}");
    assert_eq!(doomed["discovered_by"], "targets[0]");
    assert!(
        stderr.contains("deleted since it was discovered"),
        "{stderr}"
    );
}

#[test]
fn discovery_on_garage_sweeps_30_buckets_by_glob_each_once_and_picks_up_a_new_one() {
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let run = std::process::id();
    // 20 buckets the rule matches, 10 it excludes; every one with a stale upload.
    let mut matched = Vec::new();
    let mut excluded = Vec::new();
    for i in 0..30 {
        let hint = if i < 20 {
            format!("dl{run}")
        } else {
            format!("dx{run}")
        };
        let b = rt.block_on(g.bucket(&hint));
        rt.block_on(seed(&client, &b, "k", &[5]));
        if i < 20 {
            matched.push(b)
        } else {
            excluded.push(b)
        }
    }
    wait_older_than_1s();
    // The first bucket also has its own target: it is swept by that one, once.
    let text = format!(
        "[defaults]\n{}older_than = \"1s\"\n[[targets]]\nbucket = \"{}\"\n\
         [[targets]]\nbucket = \"*\"\ninclude_buckets = [\"d[lx]{run}-*\"]\nexclude_buckets = [\"dx{run}-*\"]\n",
        g.defaults_toml(),
        matched[0]
    );
    let out = g.janitor(&text, &["once", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let targets = by_bucket(&report);
    assert_eq!(
        targets.keys().cloned().collect::<BTreeSet<_>>(),
        matched.iter().cloned().collect::<BTreeSet<_>>(),
        "every matched bucket, each once"
    );
    assert_eq!(report["targets"].as_array().unwrap().len(), 20);
    assert!(targets[&matched[0]].get("discovered_by").is_none());
    let d = &report["discovery"][0];
    assert_eq!(d["buckets_matched"], 19, "{d}");
    assert_eq!(d["skipped"][0]["bucket"], matched[0].as_str());
    assert!(d["buckets_listed"].as_u64().unwrap() >= 30, "{d}");
    for b in &matched {
        assert_eq!(targets[b]["aborted"], 1, "{b}");
        assert!(rt.block_on(list_all(&client, b)).is_empty(), "{b}");
    }
    for b in &excluded {
        assert_eq!(
            rt.block_on(list_all(&client, b)).len(),
            1,
            "{b} is excluded"
        );
    }

    // `run`: a bucket created after the first sweep is swept by a later one.
    let first = rt.block_on(g.bucket(&format!("dn{run}")));
    rt.block_on(seed(&client, &first, "k", &[5]));
    wait_older_than_1s();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[defaults]\n{}older_than = \"1s\"\nschedule = \"* * * * * *\"\n[metrics]\nlisten = \"\"\n\
         [[targets]]\nbucket = \"*\"\ninclude_buckets = [\"dn{run}-*\"]\n",
        g.defaults_toml()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();
    let mut cmd = crate::common::janitor::command(Some((&g.access_key, &g.secret_key)));
    cmd.arg("--config")
        .arg(&path)
        .arg("run")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let daemon = Janitor(Some(cmd.spawn().unwrap()));
    wait_until("the first bucket swept", Duration::from_secs(30), || {
        rt.block_on(list_all(&client, &first)).is_empty()
    });
    let second = rt.block_on(g.bucket(&format!("dn{run}")));
    rt.block_on(seed(&client, &second, "k", &[5]));
    wait_until(
        "the bucket created since swept",
        Duration::from_secs(30),
        || rt.block_on(list_all(&client, &second)).is_empty(),
    );
    crate::common::janitor::sigterm(daemon.child());
    let (code, _, stderr) = daemon.wait(Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Discovered buckets"), "{stderr}");
}
