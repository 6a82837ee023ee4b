//! The binary as a service: `run` on a one-second schedule against the embedded S3 endpoint, with a
//! Unix datagram socket standing in for systemd's NOTIFY_SOCKET, a real Prometheus scraping it, and
//! `once` writing a textfile, pushing to a real Pushgateway and draining on SIGTERM.

mod common;

use std::io::Read as _;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use s3_mem::{Endpoint, Faults};

const AK: &str = "DAEMONTESTACCESSKEY1";
const SK: &str = "daemon-test-secret";

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// A GET over plain HTTP/1.0: (status, body), or None if nothing listens yet.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    use std::io::Write as _;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of the first sample line starting with `series`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn spawn_janitor(config: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpu-janitor"));
    cmd.arg("--config")
        .arg(&path)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().expect("spawn mpu-janitor"), dir)
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM");
}

/// Waits for the child to exit within `timeout` (reading its output meanwhile, so a large report
/// cannot fill the pipe); returns its exit code, stdout and stderr.
fn wait_exit(child: Child, timeout: Duration) -> (i32, String, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Ok(Err(e)) => panic!("waiting for the process: {e}"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the process did not exit within {timeout:?}");
        }
    }
}

fn seed_old(ep: &Endpoint, bucket: &str, n: usize, part: u64) {
    ep.create_bucket(bucket);
    for i in 0..n {
        ep.seed_upload(
            bucket,
            &format!("k/{i}"),
            Utc::now() - TimeDelta::days(3),
            &[(1, part)],
        );
    }
}

fn config(ep: &Endpoint, extra: &str, buckets: &[&str]) -> String {
    let mut c = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\nolder_than = \"1d\"\nschedule = \"* * * * * *\"\n{extra}\n",
        ep.url()
    );
    for b in buckets {
        c.push_str(&format!("[[targets]]\nbucket = \"{b}\"\n"));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sweeps_on_schedule_serves_http_notifies_systemd_and_stops_cleanly() {
    // One-second schedule: two sweeps, metrics equal the seeded bytes, READY/WATCHDOG/STATUS/STOPPING
    // reach the notify socket, bad paths 404, SIGTERM exits 0.
    let ep = Endpoint::start(AK, SK).await.unwrap();
    seed_old(&ep, "daemon-bucket", 25, 4_096);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&sock_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let listen = free_addr();
    let cfg = config(
        &ep,
        &format!("[metrics]\nlisten = \"{listen}\""),
        &["daemon-bucket"],
    );
    let (child, _dir) = spawn_janitor(
        &cfg,
        &["run"],
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );

    let mut messages = Vec::<String>::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        if let Ok(n) = notify.recv(&mut buf) {
            messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if let Some((200, m)) = get(&listen, "/metrics")
            && sample(
                &m,
                "mpu_janitor_sweep_duration_seconds_count{bucket=\"daemon-bucket\"}",
            ) >= Some(2.0)
            && messages.iter().any(|m| m.contains("WATCHDOG=1"))
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no two sweeps; notifications: {messages:?}"
        );
    };
    assert_eq!(
        sample(
            &metrics,
            "mpu_janitor_reclaimed_bytes_total{bucket=\"daemon-bucket\"}"
        ),
        Some(25.0 * 4096.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "mpu_janitor_uploads_aborted_total{bucket=\"daemon-bucket\"}"
        ),
        Some(25.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "mpu_janitor_incomplete_uploads{bucket=\"daemon-bucket\"}"
        ),
        Some(0.0)
    );
    assert!(!metrics.contains("k/0"), "no key becomes a label");
    assert_eq!(get(&listen, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(get(&listen, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(get(&listen, "/nope").map(|r| r.0), Some(404));
    assert!(
        messages.first().is_some_and(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("STATUS=Last sweep of daemon-bucket")),
        "{messages:?}"
    );

    sigterm(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    while let Ok(n) = notify.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(messages.iter().any(|m| m == "STOPPING=1"), "{messages:?}");
    assert!(stderr.contains("Shut down cleanly"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_never_gets_two_sweeps_of_one_target_at_once() {
    // Each request takes 1.5 s, the schedule ticks every second: ticks are skipped and counted,
    // and listings never overlap.
    let ep = Endpoint::start(AK, SK).await.unwrap();
    ep.create_bucket("slow-bucket");
    ep.set_faults(Faults {
        latency: Duration::from_millis(1_500),
        ..Faults::default()
    });
    let listen = free_addr();
    let cfg = config(
        &ep,
        &format!("[metrics]\nlisten = \"{listen}\""),
        &["slow-bucket"],
    );
    let (child, _dir) = spawn_janitor(&cfg, &["run"], &[]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    loop {
        if let Some((200, m)) = get(&listen, "/metrics")
            && sample(
                &m,
                "mpu_janitor_sweeps_skipped_total{bucket=\"slow-bucket\"}",
            ) >= Some(2.0)
            && sample(
                &m,
                "mpu_janitor_sweep_duration_seconds_count{bucket=\"slow-bucket\"}",
            ) >= Some(1.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "no skipped tick seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let listings = ep.stats().list_multipart_uploads as f64;
    let possible = started.elapsed().as_secs_f64() / 1.5 + 1.0;
    assert!(
        listings <= possible,
        "{listings} listings in {:?}: sweeps overlapped",
        started.elapsed()
    );
    sigterm(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(25));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_drains_on_sigterm_with_a_consistent_report() {
    // SIGTERM mid-sweep: no new abort starts, those in flight finish and are verified, the JSON
    // report adds up and the process exits 0 well within the grace period.
    let ep = Endpoint::start(AK, SK).await.unwrap();
    seed_old(&ep, "drain-bucket", 300, 100);
    ep.set_faults(Faults {
        latency: Duration::from_millis(25),
        ..Faults::default()
    });
    let cfg = config(
        &ep,
        "concurrency = 4\n[daemon]\nshutdown_grace = \"10s\"",
        &["drain-bucket"],
    );
    let (child, _dir) = spawn_janitor(&cfg, &["once", "--output", "json"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ep.stats().aborts_removed < 10 {
        assert!(Instant::now() < deadline, "no abort happened");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    sigterm(&child);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(12));
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    let t = &report["targets"][0];
    let aborted = t["aborted"].as_u64().unwrap();
    let interrupted = t["interrupted"].as_u64().unwrap();
    assert!(aborted >= 10 && interrupted > 0, "{t}");
    assert_eq!(
        aborted,
        ep.stats().aborts_removed,
        "reported = really removed"
    );
    assert_eq!(t["stale"].as_u64().unwrap(), aborted + interrupted);
    assert_eq!(t["unverified"], 0);
    assert_eq!(ep.upload_count("drain-bucket") as u64, 300 - aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_writes_the_textfile_atomically_with_exact_figures() {
    let ep = Endpoint::start(AK, SK).await.unwrap();
    seed_old(&ep, "text-bucket", 7, 1_234);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mpu_janitor.prom");
    let cfg = config(
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
    seed_old(&ep, "text-bucket", 3, 1_000);
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

/// Starts a Debian-packaged Prometheus component on a free port; None when it is not installed.
fn start_server(bin: &str, args: &[String]) -> Option<(Child, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(bin)
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some((child, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_pushes_to_a_real_pushgateway() {
    let ep = Endpoint::start(AK, SK).await.unwrap();
    seed_old(&ep, "push-bucket", 4, 2_000);
    let pg = free_addr();
    let (mut gateway, _pg_dir) = start_server(
        "prometheus-pushgateway",
        &[format!("--web.listen-address={pg}")],
    )
    .expect("prometheus-pushgateway is installed (scripts/test.sh installs it)");
    common::wait_until("the Pushgateway", Duration::from_secs(20), || {
        get(&pg, "/-/ready").is_some()
    });
    let cfg = config(
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
    seed_old(&ep, "push-bucket", 2, 10);
    let (child, _dir) = spawn_janitor(&cfg, &["once", "--output", "json"], &[]);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(30));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Pushing metrics failed"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["targets"][0]["aborted"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_reclaimed_bytes() {
    let ep = Endpoint::start(AK, SK).await.unwrap();
    seed_old(&ep, "scrape-bucket", 3, 512);
    let listen = free_addr();
    let cfg = config(
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
