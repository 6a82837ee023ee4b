//! Signals and the daemon's HTTP server, on the real binary against the embedded endpoint: SIGHUP
//! reloads `run` (a valid new config takes over at the next tick, an invalid one is refused and the
//! old one kept) and drains `once` like SIGTERM; a `once` cut short by a signal exits 3 and says
//! `interrupted`; `/healthz` keeps answering slowloris clients, floods of idle connections and a
//! process out of file descriptors.

use std::time::{Duration, Instant};

use s3_mem::Faults;

use crate::common::endpoint::{config_toml, endpoint, seed_old};
use crate::common::janitor::{send_signal, spawn_janitor, wait_exit};

/// Spawns `once` on 300 slow uploads, waits until 10 are aborted, sends `signal` and returns
/// (exit code, stdout, stderr, uploads really removed by the endpoint, uploads left on it).
async fn once_cut_short_by(signal: &str, output: &str) -> (i32, String, String, u64, usize) {
    let ep = endpoint().await;
    seed_old(&ep, "cut-bucket", "k/", 300, &[(1, 100)]);
    ep.set_faults(Faults {
        latency: Duration::from_millis(25),
        ..Faults::default()
    });
    let cfg = config_toml(
        &ep,
        "concurrency = 4\n[daemon]\nshutdown_grace = \"10s\"",
        &["cut-bucket"],
    );
    let (child, _dir) = spawn_janitor(&cfg, &["once", "--output", output], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ep.stats().aborts_removed < 10 {
        assert!(Instant::now() < deadline, "no abort happened");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    send_signal(&child, signal);
    let (code, stdout, stderr) = wait_exit(child, Duration::from_secs(15));
    println!(
        "once after SIG{signal}: exit {code} in {:?}",
        signalled.elapsed()
    );
    (
        code,
        stdout,
        stderr,
        ep.stats().aborts_removed,
        ep.upload_count("cut-bucket"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_once_drain_like_sigterm_every_abort_verified_and_exit_3() {
    // SIGHUP mid-sweep of `once`: no exit 129; the aborts in flight finish and are verified, the
    // JSON report adds up, says interrupted, and the exit code is 3.
    let (code, stdout, stderr, removed, left) = once_cut_short_by("HUP", "json").await;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("SIGHUP received"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["interrupted"], true, "{report}");
    let t = &report["targets"][0];
    assert_eq!(t["stopped_by_shutdown"], true, "{t}");
    let aborted = t["aborted"].as_u64().unwrap();
    let interrupted = t["interrupted"].as_u64().unwrap();
    assert_eq!(t["unverified"], 0, "no abort left unverified: {t}");
    assert_eq!(t["failed"], 0, "{t}");
    assert_eq!(aborted, removed, "reported = really removed");
    assert_eq!(t["stale"].as_u64().unwrap(), aborted + interrupted);
    assert_eq!(left as u64, 300 - aborted);
    println!("SIGHUP once: aborted {aborted}, interrupted {interrupted}, left {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_cut_short_by_sigterm_exits_3_and_its_text_report_is_not_ok() {
    // SIGTERM mid-sweep of `once --output text`: the target is shown INTERRUPTED, never [ok], the
    // report ends with the INTERRUPTED line, and the exit code is 3, not 0.
    let (code, stdout, stderr, _, left) = once_cut_short_by("TERM", "text").await;
    assert_eq!(code, 3, "{stderr}");
    assert!(left > 0, "the signal came before the end of the sweep");
    assert!(stdout.contains("s3://cut-bucket [INTERRUPTED]"), "{stdout}");
    assert!(!stdout.contains("[ok]"), "{stdout}");
    assert!(
        stdout.contains("INTERRUPTED: a shutdown signal stopped the run"),
        "{stdout}"
    );
    assert!(
        stderr.contains("Interrupted by a shutdown signal"),
        "{stderr}"
    );
}
