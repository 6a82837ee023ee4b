//! Plain HTTP/1.0 GETs (the janitor's `/metrics`, `/healthz`, Prometheus's API), reading a sample
//! from the Prometheus text format, and starting the Debian-packaged Prometheus and Pushgateway.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A GET over plain HTTP/1.0: (status, body), or None if nothing listens yet.
pub fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of the first sample line starting with `series`.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Starts a Debian-packaged Prometheus component on a free port; None when it is not installed.
pub fn start_server(bin: &str, args: &[String]) -> Option<(Child, tempfile::TempDir)> {
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
