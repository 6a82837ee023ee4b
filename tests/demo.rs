//! `mpu-janitor demo` as a newcomer runs it: exit 0, and figures computed by the sweep that match
//! the scene the demo seeded, whatever its size.

use std::process::Command;

use serde_json::Value;

fn demo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mpu-janitor"))
        .arg("demo")
        .args(args)
        // The demo needs no account: make sure none leaks in from the host.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run demo");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
        // The straggler needs two aborts, the stuck upload max_abort_attempts (3).
        let stale = sum(report, "stale");
        assert_eq!(sum(report, "abort_attempts"), stale + 1 + 2);
        // The plan changed nothing and saw the same stale uploads.
        assert_eq!(sum(&d["plan"], "would_abort"), stale);
        assert_eq!(sum(&d["plan"], "aborted"), 0);
        assert_eq!(
            d["uploads_left"].as_u64().unwrap(),
            scene["uploads"].as_u64().unwrap() - scene["stale"].as_u64().unwrap()
        );
        assert!(d["metrics"].as_str().unwrap().contains(&format!(
            "mpu_janitor_reclaimed_bytes_total{{bucket=\"db-backups\"}} {}",
            report["targets"][1]["reclaimed_bytes"]
        )));
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
