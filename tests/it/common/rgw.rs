//! The suite's Ceph RADOS Gateway (Debian's Ceph 16), the second real S3 server: started once for
//! the whole suite by `scripts/rgw.sh run DIR` (one monitor, one memstore OSD, radosgw on a free
//! loopback port; it installs the packages when missing), stopped when this process exits and the
//! script's standard input closes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::server::{Quirks, S3Server};

static RGW: OnceLock<S3Server> = OnceLock::new();

/// The suite's RGW, started on first use.
pub fn rgw() -> &'static S3Server {
    RGW.get_or_init(start)
}

fn start() -> S3Server {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rgw.sh");
    // Kept for the life of the process: the cluster lives in it.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
    let mut child = Command::new("bash")
        .arg(&script)
        .arg("run")
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start scripts/rgw.sh");
    // Our end of its stdin stays open until this process exits; then the script stops RGW.
    std::mem::forget(child.stdin.take().expect("stdin"));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut value = |name: &str| {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("scripts/rgw.sh did not start RGW (see its output above)"));
        line.strip_prefix(&format!("{name}="))
            .unwrap_or_else(|| panic!("scripts/rgw.sh printed {line:?}, expected {name}=..."))
            .to_string()
    };
    let endpoint = value("RGW_ENDPOINT");
    let access_key = value("RGW_ACCESS_KEY");
    let secret_key = value("RGW_SECRET_KEY");
    let region = value("RGW_REGION");
    std::mem::forget(child);
    S3Server {
        name: "rgw",
        endpoint,
        region,
        access_key,
        secret_key,
        quirks: Quirks::default(),
    }
}
