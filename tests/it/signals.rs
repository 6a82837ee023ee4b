//! Signals and the daemon's HTTP server, on the real binary against the embedded endpoint: SIGHUP
//! reloads `run` (a valid new config takes over at the next tick, an invalid one is refused and the
//! old one kept) and drains `once` like SIGTERM; a `once` cut short by a signal exits 3 and says
//! `interrupted`; `/healthz` keeps answering slowloris clients, floods of idle connections and a
//! process out of file descriptors.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use s3_mem::Faults;

use crate::common::endpoint::{AK, SK, config_toml, endpoint, seed_old};
use crate::common::http::{get, sample};
use crate::common::janitor::{
    CutShort, Janitor, command, once_cut_short_by, send_signal, sigterm, spawn_janitor,
};
use crate::common::{free_addr, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_makes_once_drain_like_sigterm_every_abort_verified_and_exit_3() {
    // SIGHUP mid-sweep of `once`: no exit 129; the aborts in flight finish and are verified, the
    // JSON report adds up, says interrupted, and the exit code is 3.
    let CutShort {
        code,
        stdout,
        stderr,
        removed,
        left,
        ..
    } = once_cut_short_by("HUP", "json").await;
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
    let CutShort {
        code,
        stdout,
        stderr,
        left,
        ..
    } = once_cut_short_by("TERM", "text").await;
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

/// Starts `run` on a one-second schedule against a fresh endpoint holding `bucket`, serving on a
/// free port; returns once `/healthz` answers. `rlimit_nofile` caps the process's descriptors.
async fn start_run(
    bucket: &str,
    rlimit_nofile: Option<u64>,
) -> (s3_mem::Endpoint, Janitor, tempfile::TempDir, String) {
    let ep = endpoint().await;
    seed_old(&ep, bucket, "k/", 5, &[(1, 100)]);
    let listen = free_addr();
    let cfg = config_toml(
        &ep,
        &format!("concurrency = 4\n[metrics]\nlisten = \"{listen}\""),
        &[bucket],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut cmd = command(Some((AK, SK)));
    cmd.arg("--config")
        .arg(&path)
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = rlimit_nofile {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let child = Janitor(Some(cmd.spawn().expect("spawn mpu-janitor")));
    wait_until("/healthz to answer", Duration::from_secs(15), || {
        get(&listen, "/healthz").map(|r| r.0) == Some(200)
    });
    (ep, child, dir, listen)
}

/// The resident memory of process `pid`, in KiB (VmRSS of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Opens `n` connections to `addr` that never send a byte.
fn idle_connections(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let s = TcpStream::connect(addr).expect("connect");
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// How many of `conns` the server has not closed.
fn still_open(conns: &[TcpStream]) -> usize {
    let mut byte = [0u8; 1];
    conns
        .iter()
        .filter(
            |s| matches!(s.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        )
        .count()
}

/// Times a GET of `/healthz`: (status, seconds).
fn timed_healthz(addr: &str) -> (Option<u16>, f64) {
    let t = Instant::now();
    let status = get(addr, "/healthz").map(|r| r.0);
    (status, t.elapsed().as_secs_f64())
}

/// Reads from `s` until the server closes it (or 30 s pass); the seconds waited from `since`.
fn seconds_until_closed(mut s: TcpStream, since: Instant) -> f64 {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return since.elapsed().as_secs_f64(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return since.elapsed().as_secs_f64();
            }
            Err(_) => return f64::INFINITY,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_request_and_an_idle_keep_alive_are_closed_after_the_header_timeout() {
    // One client sends half a request header and stops; another completes a keep-alive request and
    // stays: the server closes both about 10 s later (HEADER_READ_TIMEOUT), and keeps serving.
    let (_ep, child, _dir, listen) = start_run("slowloris-bucket", None).await;
    let mut slow = TcpStream::connect(&listen).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: janitor\r\nUser-Agent: slo")
        .unwrap();
    let slow_since = Instant::now();
    let mut idle = TcpStream::connect(&listen).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: janitor\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.ends_with(b"ok\n") {
        let n = idle.read(&mut buf).unwrap();
        assert!(n > 0, "the keep-alive request was answered");
        answer.extend_from_slice(&buf[..n]);
    }
    let idle_since = Instant::now();
    let slow_closed = std::thread::spawn(move || seconds_until_closed(slow, slow_since));
    let idle_closed = std::thread::spawn(move || seconds_until_closed(idle, idle_since));
    let (slow_s, idle_s) = (slow_closed.join().unwrap(), idle_closed.join().unwrap());
    println!("slowloris closed after {slow_s:.2} s, idle keep-alive after {idle_s:.2} s");
    assert!((9.0..15.0).contains(&slow_s), "slowloris held {slow_s} s");
    assert!(
        (9.0..15.0).contains(&idle_s),
        "idle keep-alive held {idle_s} s"
    );
    assert_eq!(get(&listen, "/healthz").map(|r| r.0), Some(200));
    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_leave_at_most_256_open_and_healthz_answering() {
    // 2,000 connections that never send a byte: the server keeps at most MAX_CONNECTIONS (256) of
    // them, closing the oldest, well before the header timeout; /healthz and /metrics answer at
    // once, memory stays flat, and the sweeps go on.
    let (_ep, child, _dir, listen) = start_run("flood-bucket", None).await;
    let pid = child.child().id();
    let before = rss_kib(pid);
    let flooded = Instant::now();
    let conns = idle_connections(&listen, 2_000);
    println!("opened 2,000 connections in {:?}", flooded.elapsed());
    let mut open = still_open(&conns);
    while open > 256 {
        assert!(
            flooded.elapsed() < Duration::from_secs(8),
            "{open} idle connections still open after {:?}",
            flooded.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
        open = still_open(&conns);
    }
    let settled = flooded.elapsed();
    let (status, secs) = timed_healthz(&listen);
    let after = rss_kib(pid);
    println!(
        "2,000 idle connections: {open} left open after {settled:?}; /healthz {status:?} in {secs:.3} s; RSS {before} -> {after} KiB"
    );
    assert_eq!(status, Some(200));
    assert!(secs < 2.0, "/healthz took {secs} s");
    assert!(get(&listen, "/metrics").is_some(), "/metrics answers");
    wait_until("sweeps to go on", Duration::from_secs(10), || {
        sweeps_of(&listen, "flood-bucket") >= 1.0
    });
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    drop(conns);
    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_at_its_descriptor_limit_still_answers_healthz() {
    // `run` started with RLIMIT_NOFILE 64 (soft = hard, so it cannot raise it), then 300 idle
    // connections, far more than it has descriptors: /healthz and /metrics still answer, and the
    // sweeps go on.
    let (_ep, child, _dir, listen) = start_run("nofile-bucket", Some(64)).await;
    let pid = child.child().id();
    let before = rss_kib(pid);
    let conns = idle_connections(&listen, 300);
    let (status, secs) = timed_healthz(&listen);
    println!(
        "RLIMIT_NOFILE 64, 300 idle connections: /healthz {status:?} in {secs:.3} s, {} of them still open; RSS {before} -> {} KiB",
        still_open(&conns),
        rss_kib(pid)
    );
    assert_eq!(status, Some(200));
    assert!(secs < 2.0, "/healthz took {secs} s");
    let swept = |m: &str| {
        sample(
            m,
            "mpu_janitor_sweep_duration_seconds_count{bucket=\"nofile-bucket\"}",
        )
        .unwrap_or(0.0)
    };
    let first = swept(&get(&listen, "/metrics").expect("/metrics answers").1);
    wait_until("another sweep", Duration::from_secs(10), || {
        get(&listen, "/metrics").is_some_and(|(_, m)| swept(&m) > first)
    });
    drop(conns);
    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
}

/// systemd's side of sd_notify: a datagram socket to give the daemon as NOTIFY_SOCKET.
struct NotifySocket {
    sock: UnixDatagram,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    messages: Vec<String>,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        NotifySocket {
            sock,
            path,
            _dir: dir,
            messages: Vec::new(),
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Reads notifications until one satisfies `want`, or panics after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while !self.messages.iter().any(|m| want(m)) {
            assert!(
                Instant::now() < deadline,
                "no {what}; notifications: {:?}",
                self.messages
            );
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.messages
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }
}

/// The sweeps of `bucket` /metrics counted so far.
fn sweeps_of(listen: &str, bucket: &str) -> f64 {
    get(listen, "/metrics")
        .and_then(|(_, m)| {
            sample(
                &m,
                &format!("mpu_janitor_sweep_duration_seconds_count{{bucket=\"{bucket}\"}}"),
            )
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_in_run_reloads_a_valid_config_and_sweeps_the_added_target_at_the_next_tick() {
    // `run` sweeps one bucket; its file gains a second target and SIGHUP arrives: systemd hears
    // RELOADING=1 (with MONOTONIC_USEC) then READY=1, the log says "2 targets", the new bucket is
    // swept on the next one-second tick, and SIGTERM still exits 0.
    let ep = endpoint().await;
    seed_old(&ep, "first-bucket", "k/", 5, &[(1, 100)]);
    seed_old(&ep, "added-bucket", "k/", 7, &[(1, 100)]);
    let listen = free_addr();
    let extra = format!("[metrics]\nlisten = \"{listen}\"");
    let mut notify = NotifySocket::new();
    let (child, dir) = spawn_janitor(
        &config_toml(&ep, &extra, &["first-bucket"]),
        &["run"],
        &[("NOTIFY_SOCKET", notify.path())],
    );
    let child = Janitor(Some(child));
    wait_until("a sweep of first-bucket", Duration::from_secs(15), || {
        sweeps_of(&listen, "first-bucket") >= 1.0
    });
    assert_eq!(ep.upload_count("added-bucket"), 7, "not a target yet");

    std::fs::write(
        dir.path().join("config.toml"),
        config_toml(&ep, &extra, &["first-bucket", "added-bucket"]),
    )
    .unwrap();
    let reloaded = Instant::now();
    send_signal(child.child(), "HUP");
    notify.wait_for("RELOADING=1", Duration::from_secs(10), |m| {
        m.starts_with("RELOADING=1\nMONOTONIC_USEC=")
    });
    notify.wait_for("READY=1 after the reload", Duration::from_secs(10), |m| {
        m.starts_with("READY=1\nSTATUS=Configuration reloaded: 2 targets")
    });
    wait_until("a sweep of added-bucket", Duration::from_secs(10), || {
        sweeps_of(&listen, "added-bucket") >= 1.0
    });
    println!("added-bucket swept {:?} after SIGHUP", reloaded.elapsed());
    assert_eq!(
        ep.upload_count("added-bucket"),
        0,
        "the added target was swept"
    );
    assert_eq!(get(&listen, "/healthz").map(|r| r.0), Some(200));
    let before = sweeps_of(&listen, "first-bucket");
    wait_until("first-bucket still swept", Duration::from_secs(10), || {
        sweeps_of(&listen, "first-bucket") > before
    });

    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("Configuration reloaded: 2 targets"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_in_run_with_an_invalid_config_keeps_the_old_one_logs_the_error_and_serves_on() {
    // The file is broken (a bad duration, and a new target) before SIGHUP: the reload is refused
    // with an ERROR naming the key, systemd hears READY=1 again, the new target is never swept,
    // the old one goes on being swept, and /healthz answers.
    let ep = endpoint().await;
    seed_old(&ep, "kept-bucket", "k/", 5, &[(1, 100)]);
    seed_old(&ep, "never-bucket", "k/", 3, &[(1, 100)]);
    let listen = free_addr();
    let extra = format!("[metrics]\nlisten = \"{listen}\"");
    let mut notify = NotifySocket::new();
    let (child, dir) = spawn_janitor(
        &config_toml(&ep, &extra, &["kept-bucket"]),
        &["run"],
        &[("NOTIFY_SOCKET", notify.path())],
    );
    let child = Janitor(Some(child));
    wait_until("a sweep of kept-bucket", Duration::from_secs(15), || {
        sweeps_of(&listen, "kept-bucket") >= 1.0
    });
    let broken = config_toml(&ep, &extra, &["kept-bucket", "never-bucket"])
        .replace("older_than = \"1d\"", "older_than = \"3 parsecs\"");
    std::fs::write(dir.path().join("config.toml"), broken).unwrap();
    send_signal(child.child(), "HUP");
    notify.wait_for("READY=1 after the refusal", Duration::from_secs(10), |m| {
        m.starts_with("READY=1\nSTATUS=Reload refused")
    });
    let before = sweeps_of(&listen, "kept-bucket");
    wait_until(
        "kept-bucket swept after the refusal",
        Duration::from_secs(10),
        || sweeps_of(&listen, "kept-bucket") >= before + 2.0,
    );
    assert_eq!(get(&listen, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(ep.upload_count("never-bucket"), 3, "never a target");
    assert_eq!(sweeps_of(&listen, "never-bucket"), 0.0);

    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    let refusal = stderr
        .lines()
        .find(|l| l.contains("Reload refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {stderr}"));
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(refusal.contains("defaults.older_than"), "{refusal}");
    assert!(refusal.contains("3 parsecs"), "{refusal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_sweep_lets_the_sweep_finish_on_the_old_config_and_never_overlaps_it() {
    // Every request takes 400 ms, so a sweep of 3 uploads (concurrency 1) lasts about 5 s. SIGHUP
    // during it, with the target switched to dry_run: that sweep still aborts all 3, the new job's
    // ticks are skipped while it runs (one listing at a time), and the next sweep is a dry run that
    // leaves 2 newly seeded uploads alone.
    let ep = endpoint().await;
    seed_old(&ep, "busy-bucket", "k/", 3, &[(1, 100)]);
    ep.set_faults(Faults {
        latency: Duration::from_millis(400),
        ..Faults::default()
    });
    let listen = free_addr();
    let extra = format!("concurrency = 1\n[metrics]\nlisten = \"{listen}\"");
    let mut notify = NotifySocket::new();
    let (child, dir) = spawn_janitor(
        &config_toml(&ep, &extra, &["busy-bucket"]),
        &["run"],
        &[("NOTIFY_SOCKET", notify.path())],
    );
    let child = Janitor(Some(child));
    wait_until("the first abort", Duration::from_secs(15), || {
        ep.stats().aborts_removed >= 1
    });
    assert_eq!(sweeps_of(&listen, "busy-bucket"), 0.0, "still sweeping");
    let dry = format!("dry_run = true\n{extra}");
    std::fs::write(
        dir.path().join("config.toml"),
        config_toml(&ep, &dry, &["busy-bucket"]),
    )
    .unwrap();
    send_signal(child.child(), "HUP");
    notify.wait_for("READY=1 after the reload", Duration::from_secs(10), |m| {
        m.starts_with("READY=1\nSTATUS=Configuration reloaded: 1 target")
    });
    wait_until("the first sweep to end", Duration::from_secs(20), || {
        sweeps_of(&listen, "busy-bucket") >= 1.0
    });
    let metrics = get(&listen, "/metrics").unwrap().1;
    let skipped = sample(
        &metrics,
        "mpu_janitor_sweeps_skipped_total{bucket=\"busy-bucket\"}",
    );
    println!(
        "sweep across the reload: {} aborted, {skipped:?} ticks skipped, {} listings",
        ep.stats().aborts_removed,
        ep.stats().list_multipart_uploads
    );
    assert_eq!(
        ep.upload_count("busy-bucket"),
        0,
        "finished on the old config"
    );
    assert_eq!(
        sample(
            &metrics,
            "mpu_janitor_uploads_aborted_total{bucket=\"busy-bucket\"}"
        ),
        Some(3.0)
    );
    assert!(
        skipped >= Some(1.0),
        "the new job's ticks waited: {skipped:?}"
    );
    // One listing for the sweep across the reload; a second may have begun since it ended
    // (overlapping sweeps would have listed on every tick, about 4 more).
    assert!(
        ep.stats().list_multipart_uploads <= 2,
        "one sweep at a time: {} listings",
        ep.stats().list_multipart_uploads
    );

    seed_old(&ep, "busy-bucket", "later/", 2, &[(1, 100)]);
    let seeded = sweeps_of(&listen, "busy-bucket");
    // Two more sweeps: at least one started after the seeding.
    wait_until("a dry-run sweep", Duration::from_secs(20), || {
        sweeps_of(&listen, "busy-bucket") >= seeded + 2.0
    });
    assert_eq!(
        ep.upload_count("busy-bucket"),
        2,
        "the new config is a dry run"
    );

    sigterm(child.child());
    let (code, _, stderr) = child.wait(Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
}
