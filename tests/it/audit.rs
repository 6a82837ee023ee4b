//! The audit trail as an operator reads it, from the binary against a real Garage: one JSON line
//! per upload acted on, with the run's id, appended across runs; the same records as INFO events of
//! the log target `mpu_janitor::audit`, which `--log-level` keeps while the rest is quiet; no
//! secret anywhere.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::garage::{garage, list_all, seed_many, wait_older_than_1s};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn every_aborted_upload_leaves_one_record_with_the_run_id_and_dry_runs_append_theirs() {
    let g = garage();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = g.client();
    let b = rt.block_on(g.bucket("audit"));
    let stale = rt.block_on(seed_many(&client, &b, 12, |i| {
        (format!("stale/{i:02}"), vec![3, 4])
    }));
    wait_older_than_1s();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let text = format!(
        "[defaults]\n{}older_than = \"1s\"\n[audit]\npath = \"{}\"\n[[targets]]\nbucket = \"{b}\"\n",
        g.defaults_toml(),
        path.display()
    );

    // A dry run first: each stale upload recorded as would_abort, nothing changed.
    let out = g.janitor(&text, &["once", "--dry-run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dry = lines(&path);
    assert_eq!(dry.len(), 12, "{dry:?}");
    assert!(
        dry.iter()
            .all(|r| r["outcome"] == "would_abort" && r["dry_run"] == true)
    );

    // The sweep, with only the audit events on stderr.
    let out = g.janitor(
        &text,
        &[
            "--log-level",
            "warn,mpu_janitor::audit=info",
            "once",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let run_id = report["run_id"].as_str().unwrap().to_string();
    let all = lines(&path);
    assert_eq!(all.len(), 24, "appended to the dry run's records");
    let swept: Vec<&Value> = all[12..].iter().collect();
    let ids: BTreeSet<(String, String)> = swept
        .iter()
        .map(|r| {
            assert_eq!(r["outcome"], "aborted", "{r}");
            assert_eq!(r["run_id"], run_id.as_str(), "{r}");
            assert_eq!(
                (r["parts"].as_u64(), r["bytes"].as_u64()),
                (Some(2), Some(7))
            );
            assert_eq!(r["abort_attempts"], 1);
            assert_eq!(r["bucket"], b.as_str());
            assert_eq!(r["dry_run"], false);
            assert!(r["host"].as_str().is_some_and(|h| !h.is_empty()));
            assert!(r["initiated"].as_str().is_some() && r["age_seconds"].as_u64().is_some());
            (
                r["key"].as_str().unwrap().to_string(),
                r["upload_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let seeded: BTreeSet<(String, String)> = stale.into_iter().collect();
    assert_eq!(ids, seeded, "one record per seeded upload, no more");
    assert!(rt.block_on(list_all(&client, &b)).is_empty());

    // stderr: the twelve audit events and nothing else at INFO.
    let events: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("mpu_janitor::audit"))
        .collect();
    assert_eq!(events.len(), 12, "{}", out.stderr);
    assert!(
        events.iter().all(|l| l.contains("outcome=aborted")),
        "{events:?}"
    );
    assert!(!out.stderr.contains("Swept target"), "{}", out.stderr);
    let file = std::fs::read_to_string(&path).unwrap();
    let secret = g.secret_key.as_str();
    assert!(!file.contains(secret) && !out.stderr.contains(secret));
}
