//! Metrics out of the binary, against the embedded endpoint: the node-exporter textfile (atomic,
//! counters continued across runs, one that can no longer be written counted on /metrics), a real
//! Pushgateway (and one that is down), and a real Prometheus scraping `run`.

use std::time::{Duration, Instant};

use crate::common;
use crate::common::endpoint::{config_toml, endpoint, seed_old};
use crate::common::free_addr;
use crate::common::http::{get, sample, start_server};
use crate::common::janitor::{sigterm, spawn_janitor, wait_exit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_writes_the_textfile_atomically_with_exact_figures() {
    let ep = endpoint().await;
    seed_old(&ep, "text-bucket", "k/", 7, &[(1, 1_234)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpu_janitor.prom");
    let cfg = config_toml(
        &ep,
        &format!("[metrics]\ntextfile = \"{}\"", path.display()),
        &["text-bucket"],
    );
    let (child, _cfg_dir) = spawn_janitor(&cfg, &["once", "--output", "json"], &[]);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let text = std::fs::read_to_string(&path).expect("textfile written");
    let reclaimed = sample(
        &text,
        "mpu_janitor_reclaimed_bytes_total{bucket=\"text-bucket\"}",
    );
    assert_eq!(reclaimed, report["targets"][0]["reclaimed_bytes"].as_f64());
    assert_eq!(reclaimed, Some(7.0 * 1234.0));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left"
    );
    // The next batch run continues the counters, so rate() and increase() work across runs.
    seed_old(&ep, "text-bucket", "k/", 3, &[(1, 1_000)]);
    let (child, _cfg_dir) = spawn_janitor(&cfg, &["once"], &[]);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&path).unwrap();
    let reclaimed = sample(
        &text,
        "mpu_janitor_reclaimed_bytes_total{bucket=\"text-bucket\"}",
    );
    assert_eq!(reclaimed, Some(7.0 * 1234.0 + 3.0 * 1000.0));
    assert_eq!(
        sample(&text, "mpu_janitor_stale_uploads{bucket=\"text-bucket\"}"),
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_pushes_to_a_real_pushgateway() {
    let ep = endpoint().await;
    seed_old(&ep, "push-bucket", "k/", 4, &[(1, 2_000)]);
    let pg = free_addr();
    let (mut gateway, _pg_dir) = start_server(
        "prometheus-pushgateway",
        &[format!("--web.listen-address={pg}")],
    )
    .expect("prometheus-pushgateway is installed (scripts/test.sh installs it)");
    common::wait_until("the Pushgateway", Duration::from_secs(20), || {
        get(&pg, "/-/ready").is_some()
    });
    let cfg = config_toml(
        &ep,
        &format!("[metrics]\npushgateway_url = \"http://{pg}\""),
        &["push-bucket"],
    );
    let (child, _dir) = spawn_janitor(&cfg, &["once"], &[]);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let (_, metrics) = get(&pg, "/metrics").unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("mpu_janitor_reclaimed_bytes_total{"))
        .unwrap_or_else(|| panic!("no pushed series in\n{metrics}"));
    assert!(
        line.contains("job=\"mpu_janitor\"") && line.contains("instance=\""),
        "{line}"
    );
    assert!(line.ends_with(" 8000"), "{line}");

    // A Pushgateway that is down: the sweep still counts, the exit code says the push failed.
    let _ = gateway.kill();
    let _ = gateway.wait();
    seed_old(&ep, "push-bucket", "k/", 2, &[(1, 10)]);
    let (child, _dir) = spawn_janitor(&cfg, &["once", "--output", "json"], &[]);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(30));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Pushing metrics failed"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["targets"][0]["aborted"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_reclaimed_bytes() {
    let ep = endpoint().await;
    seed_old(&ep, "scrape-bucket", "k/", 3, &[(1, 512)]);
    let listen = free_addr();
    let cfg = config_toml(
        &ep,
        &format!("[metrics]\nlisten = \"{listen}\""),
        &["scrape-bucket"],
    );
    let (janitor, _dir) = spawn_janitor(&cfg, &["run"], &[]);

    let prom = free_addr();
    let prom_dir = tempfile::tempdir().unwrap();
    let prom_cfg = prom_dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: janitor\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let (mut prometheus, _pdir) = start_server(
        "prometheus",
        &[
            format!("--config.file={}", prom_cfg.display()),
            format!("--web.listen-address={prom}"),
            format!(
                "--storage.tsdb.path={}",
                prom_dir.path().join("data").display()
            ),
        ],
    )
    .expect("prometheus is installed (scripts/test.sh installs it)");
    let query =
        "/api/v1/query?query=mpu_janitor_reclaimed_bytes_total%7Bbucket%3D%22scrape-bucket%22%7D";
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some((200, body)) = get(&prom, query) {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
                if value == "1536" {
                    break;
                }
                last = value.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw 1536 reclaimed bytes (last {last:?})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    sigterm(&janitor);
    let (code, _, stderr) = wait_exit(janitor, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_bytes_by_age_the_oldest_age_and_the_cost_estimate_are_reported() {
    // Uploads 2, 10, 40 and 100 days old of 1, 2, 3 and 4 MiB: one per band but the youngest.
    let ep = endpoint().await;
    ep.create_bucket("aged");
    const MIB: u64 = 1 << 20;
    for (days, mib) in [(2, 1), (10, 2), (40, 3), (100, 4)] {
        let initiated = chrono::Utc::now() - chrono::TimeDelta::days(days);
        ep.seed_upload("aged", &format!("d{days}"), initiated, &[(1, mib * MIB)]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpu_janitor.prom");
    let cfg = config_toml(
        &ep,
        &format!(
            "price_per_gib_month = 10.24\n[metrics]\ntextfile = \"{}\"",
            path.display()
        ),
        &["aged"],
    );
    let (child, _cfg_dir) = spawn_janitor(&cfg, &["once", "--dry-run", "--output", "json"], &[]);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let t = &report["targets"][0];
    assert_eq!(
        t["stale_bytes_by_age"],
        serde_json::json!({"under_1d": 0, "1d_to_7d": MIB, "7d_to_30d": 2 * MIB,
            "30d_to_90d": 3 * MIB, "90d_and_over": 4 * MIB})
    );
    let oldest = t["oldest_stale_age_seconds"].as_u64().unwrap();
    assert!(
        (100 * 86_400..100 * 86_400 + 60).contains(&oldest),
        "{oldest}"
    );
    // 10 MiB at $10.24 per GiB-month: $0.10.
    let cost = t["stale_monthly_cost_estimate"].as_f64().unwrap();
    assert!((cost - 0.1).abs() < 1e-9, "{cost}");
    let text = std::fs::read_to_string(&path).expect("textfile written");
    for (age, bytes) in [
        ("under_1d", 0),
        ("1d_to_7d", MIB),
        ("90d_and_over", 4 * MIB),
    ] {
        let v = sample(
            &text,
            &format!("mpu_janitor_stale_bytes_by_age{{age=\"{age}\",bucket=\"aged\"}}"),
        );
        assert_eq!(v, Some(bytes as f64), "{age}: {text}");
    }
    let v = sample(
        &text,
        "mpu_janitor_oldest_stale_upload_age_seconds{bucket=\"aged\"}",
    );
    assert_eq!(v, Some(oldest as f64), "{text}");
    let (child, _cfg_dir) = spawn_janitor(&cfg, &["plan"], &[]);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("cost: the stale uploads hold 10.0 MiB, about $0.10 a month")
            && stdout.contains("the oldest is 100d"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_textfile_that_can_no_longer_be_written_is_counted_and_its_staleness_shows() {
    // `run` writes the textfile each second; then its directory is replaced by a plain file (even
    // root cannot write under that). Each failed write is counted on /metrics, /readyz stays 200
    // (the process is fine), and the frozen textfile keeps its last-sweep timestamp, which an
    // alert on mpu_janitor_last_success_timestamp_seconds ages.
    let ep = endpoint().await;
    seed_old(&ep, "frozen-bucket", "k/", 2, &[(1, 100)]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("janitor.prom");
    let listen = free_addr();
    let cfg = config_toml(
        &ep,
        &format!(
            "[metrics]\nlisten = \"{listen}\"\ntextfile = \"{}\"",
            path.display()
        ),
        &["frozen-bucket"],
    );
    let (child, _cfg_dir) = spawn_janitor(&cfg, &["run"], &[]);
    common::wait_until("the first textfile", Duration::from_secs(20), || {
        path.exists()
    });
    let moved = root.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();
    let frozen = std::fs::read_to_string(moved.join("janitor.prom")).unwrap();
    let stamp = sample(
        &frozen,
        "mpu_janitor_last_sweep_timestamp_seconds{bucket=\"frozen-bucket\"}",
    )
    .expect("the textfile holds the last-sweep timestamp");
    let series = "mpu_janitor_export_errors_total{sink=\"textfile\"}";
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Some((200, m)) = get(&listen, "/metrics")
            && sample(&m, series) >= Some(2.0)
        {
            break m;
        }
        assert!(Instant::now() < deadline, "no failed export counted");
    };
    let swept = sample(
        &metrics,
        "mpu_janitor_last_sweep_timestamp_seconds{bucket=\"frozen-bucket\"}",
    )
    .unwrap();
    assert!(
        swept > stamp,
        "sweeps went on ({swept}) past the frozen file's {stamp}"
    );
    assert_eq!(get(&listen, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(
        std::fs::read_to_string(moved.join("janitor.prom")).unwrap(),
        frozen,
        "the old file is left as it was"
    );
    sigterm(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("textfile"),
        "the failure is logged: {stderr}"
    );
}
