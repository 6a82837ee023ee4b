//! The suite's shared fixtures, each written once: [`server`] (a real S3 server: [`garage`], the real
//! Garage, [`rgw`], a real Ceph RGW, and [`juicefs`], the real JuiceFS S3 gateway, each started once
//! for the whole suite; seeding goes through the real aws-sdk-s3 client), [`endpoint`] (the embedded s3-mem
//! endpoint with its fault injection), [`janitor`] (running the binary with a hermetic AWS
//! environment), [`http`] (plain GETs, Prometheus samples, the Prometheus servers), [`proxy`] (a
//! real tinyproxy), [`tls`] (a private CA and a TLS proxy), [`sts`] (a real STS: moto's server
//! mode, whose temporary keys s3-mem verifies) and [`moto_s3`] (moto's S3, which enforces
//! conditional writes, optionally with its clock set back). Nothing here sets a process-wide environment variable: every test
//! shares this one process, so credentials go to the library explicitly and to the binary through
//! its own `Command` environment.

pub mod endpoint;
pub mod garage;
pub mod hostile;
pub mod http;
pub mod janitor;
pub mod juicefs;
pub mod moto_s3;
pub mod proxy;
pub mod rgw;
pub mod server;
pub mod sts;
pub mod tls;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use mpu_janitor::config::{Kind, Settings, Target};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `127.0.0.1:PORT` on a port that was free a moment ago.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A listener standing in for an S3 endpoint that must never be contacted (nonblocking: a test
/// checks with `accept` that nothing connected), and its URL.
pub fn tripwire() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    (l, url)
}

/// Waits until `cond` holds, polling, or panics after `timeout` naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Settings for a path-style endpoint at `url`, the rest default.
pub fn settings_at(url: &str) -> Settings {
    Settings {
        endpoint_url: url.parse().unwrap(),
        force_path_style: true,
        ..Settings::default()
    }
}

/// A target on the whole of `bucket` (no prefix, no exclusion).
pub fn target(bucket: &str, settings: Settings) -> Target {
    Target {
        bucket: bucket.to_string(),
        prefix: String::new(),
        exclude_prefixes: vec![],
        settings,
        kind: Kind::Bucket,
    }
}
