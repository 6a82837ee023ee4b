//! The binary as a service, against the embedded endpoint: `run` on a one-second schedule (with a
//! Unix datagram socket standing in for systemd's NOTIFY_SOCKET), what its log says of the next
//! sweep (local time in the target's zone and UTC) and of the scheduler (nothing by default),
//! `run --dry-run`, no overlapping sweeps of a slow store, and `once` draining on SIGTERM with a
//! consistent report. When the fires fall across daylight-saving changes is `next_fire`'s unit
//! tests (src/run/daemon.rs), on the real dates.

use std::os::unix::net::UnixDatagram;
use std::process::Child;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

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

/// Waits until `/metrics` on `listen` counts `sweeps` sweeps of `bucket`; returns the page.
fn wait_for_sweeps(listen: &str, bucket: &str, sweeps: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let series = format!("mpu_janitor_sweep_duration_seconds_count{{bucket=\"{bucket}\"}}");
    loop {
        if let Some((200, m)) = get(listen, "/metrics")
            && sample(&m, &series) >= Some(sweeps)
        {
            return m;
        }
        assert!(Instant::now() < deadline, "not {sweeps} sweeps of {bucket}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit code (asserted 0) and stderr.
fn stop(child: Child) -> String {
    sigterm(&child);
    let (code, _, stderr) = wait_exit(child, Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_says_when_each_target_sweeps_next_at_start_and_after_each_sweep_in_its_zone_and_utc() {
    let ep = endpoint().await;
    seed_old(&ep, "zoned", "k/", 3, &[(1, 1_024)]);
    let listen = free_addr();
    let cfg = config_toml(
        &ep,
        &format!("timezone = \"Europe/Berlin\"\n[metrics]\nlisten = \"{listen}\""),
        &["zoned"],
    );
    // RUST_LOG empty: the default filter, whatever this machine's environment says.
    let (child, _dir) = spawn_janitor(&cfg, &["run"], &[("RUST_LOG", "")]);
    wait_for_sweeps(&listen, "zoned", 2.0);
    let stderr = stop(child);

    let lines: Vec<&str> = stderr
        .lines()
        .take_while(|l| !l.contains("Shutting down"))
        .collect();
    let is_next = |l: &&str| l.contains("Next sweep of zoned at ");
    let is_sweep = |l: &&str| l.contains("Swept target");
    let first_sweep = lines.iter().position(is_sweep).expect("a sweep");
    assert!(
        lines[..first_sweep].iter().any(is_next),
        "no next sweep said at start:\n{stderr}"
    );
    // After each sweep, the next one is said before any other sweep ends.
    for (i, _) in lines.iter().enumerate().filter(|(_, l)| is_sweep(l)) {
        let rest = &lines[i + 1..];
        let next = rest.iter().position(is_next);
        let other = rest.iter().position(is_sweep);
        assert!(
            next.is_some_and(|n| other.is_none_or(|o| n < o)) || other.is_none(),
            "no next sweep said after line {i}:\n{stderr}"
        );
    }
    let said: Vec<&str> = lines.iter().copied().filter(|l| is_next(l)).collect();
    assert!(said.len() >= 3, "{stderr}");
    let mut previous = None;
    for line in said {
        // `Next sweep of zoned at 2026-12-06 23:40:05 CET (Europe/Berlin), 2026-12-06T22:40:05Z`
        let (_, rest) = line.split_once("Next sweep of zoned at ").unwrap();
        let (local, rest) = rest.split_once(" (Europe/Berlin), ").expect(line);
        let utc: DateTime<Utc> = rest[..20].parse().expect(line);
        assert_eq!(
            utc.with_timezone(&chrono_tz::Europe::Berlin)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            local,
            "{line}"
        );
        assert!(previous.is_none_or(|p| utc >= p), "{line}");
        previous = Some(utc);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedulers_info_lines_are_quiet_by_default_and_shown_when_asked_for() {
    let ep = endpoint().await;
    ep.create_bucket("chatter");
    let listen = free_addr();
    let cfg = config_toml(
        &ep,
        &format!("[metrics]\nlisten = \"{listen}\""),
        &["chatter"],
    );
    let mut logs = Vec::new();
    for args in [&["run"][..], &["--log-level", "info", "run"]] {
        let (child, _dir) = spawn_janitor(&cfg, args, &[("RUST_LOG", "")]);
        wait_for_sweeps(&listen, "chatter", 2.0);
        logs.push(stop(child));
    }
    let chatter = |log: &str| {
        log.lines()
            .filter(|l| l.contains("tokio_cron_scheduler"))
            .count()
    };
    assert!(logs[0].contains("Swept target"), "{}", logs[0]);
    assert_eq!(chatter(&logs[0]), 0, "{}", logs[0]);
    assert!(chatter(&logs[1]) > 0, "--log-level info: {}", logs[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_dry_run_aborts_nothing_and_says_what_it_would_abort() {
    let ep = endpoint().await;
    seed_old(&ep, "dry", "k/", 5, &[(1, 2_048)]);
    let listen = free_addr();
    let cfg = config_toml(&ep, &format!("[metrics]\nlisten = \"{listen}\""), &["dry"]);
    let (child, _dir) = spawn_janitor(&cfg, &["run", "--dry-run"], &[("RUST_LOG", "")]);
    let metrics = wait_for_sweeps(&listen, "dry", 2.0);
    let stderr = stop(child);
    assert_eq!(ep.upload_count("dry"), 5, "{stderr}");
    assert_eq!(ep.stats().abort_multipart_upload, 0);
    assert_eq!(
        sample(&metrics, "mpu_janitor_stale_uploads{bucket=\"dry\"}"),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "mpu_janitor_uploads_aborted_total{bucket=\"dry\"}"
        ),
        Some(0.0)
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("Daemon started: DRY RUN") && l.contains("dry_run=true")),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("Swept target")
            && l.contains("would_abort=5")
            && l.contains("aborted=0")
            && l.contains("dry_run=true")),
        "{stderr}"
    );
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
    // A store this slow makes every tick overdue: that is a metric and an alert, not readiness
    // (a sidecar's failed readiness would take its pod out of service).
    assert_eq!(get(&listen, "/readyz").map(|r| r.0), Some(200));
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
