//! The binary as a service, against the embedded endpoint: `run` on a one-second schedule (with a
//! Unix datagram socket standing in for systemd's NOTIFY_SOCKET), no overlapping sweeps of a slow
//! store, and `once` draining on SIGTERM with a consistent report.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use s3_mem::Faults;

use crate::common::endpoint::{config_toml, endpoint, seed_old};
use crate::common::free_addr;
use crate::common::http::{get, sample};
use crate::common::janitor::{CutShort, once_cut_short_by, sigterm, spawn_janitor, wait_exit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_sweeps_on_schedule_serves_http_notifies_systemd_and_stops_cleanly() {
    // One-second schedule: two sweeps, metrics equal the seeded bytes, READY/WATCHDOG/STATUS/STOPPING
    // reach the notify socket, bad paths 404, SIGTERM exits 0.
    let ep = endpoint().await;
    seed_old(&ep, "daemon-bucket", "k/", 25, &[(1, 4_096)]);
    let sock_dir = tempfile::tempdir().unwrap();
    let sock_path = sock_dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&sock_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let listen = free_addr();
    let cfg = config_toml(
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
    let ep = endpoint().await;
    ep.create_bucket("slow-bucket");
    ep.set_faults(Faults {
        latency: Duration::from_millis(1_500),
        ..Faults::default()
    });
    let listen = free_addr();
    let cfg = config_toml(
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
    // report adds up and says interrupted, and the process exits 3 well within the grace period.
    let CutShort {
        code,
        stdout,
        stderr,
        removed,
        left,
        took,
    } = once_cut_short_by("TERM", "json").await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(code, 3, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["interrupted"], true, "{report}");
    let t = &report["targets"][0];
    let aborted = t["aborted"].as_u64().unwrap();
    let interrupted = t["interrupted"].as_u64().unwrap();
    assert!(aborted >= 10 && interrupted > 0, "{t}");
    assert_eq!(aborted, removed, "reported = really removed");
    assert_eq!(t["stale"].as_u64().unwrap(), aborted + interrupted);
    assert_eq!(t["unverified"], 0);
    assert_eq!(left as u64, 300 - aborted);
}
