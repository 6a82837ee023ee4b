//! One real Garage 2.5.0 for the whole suite, started on first use on free loopback ports in a temp
//! dir, plus helpers to seed multipart uploads through the real aws-sdk-s3 client and to sweep it
//! through the library. Garage comes from `$GARAGE_BIN`, then `garage` on PATH, then
//! `~/.cargo/bin/garage` (scripts/test.sh installs it).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use futures::StreamExt;

use super::free_port;
use super::server::{Quirks, S3Server};

/// Access key imported into Garage for the tests.
pub const ACCESS_KEY: &str = "GK0123456789abcdef01234567";
/// Its secret.
pub const SECRET_KEY: &str = "5eb9e3f36ab9c84c5ef5a4ac8c2f7e3b4de41ba1b2e02c2e4c1b0ef3d3a8c0f1";
/// Garage's region.
pub const REGION: &str = "garage";

/// A running Garage.
struct Garage {
    server: S3Server,
    config: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
    _child: Child,
}

static GARAGE: OnceLock<Garage> = OnceLock::new();

/// The suite's Garage, started on first use.
pub fn garage() -> &'static S3Server {
    &GARAGE.get_or_init(Garage::start).server
}

fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GARAGE_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(out) = Command::new("garage").arg("--version").output()
        && out.status.success()
    {
        return PathBuf::from("garage");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_bin = home.join(".cargo/bin/garage");
    assert!(
        cargo_bin.exists(),
        "Garage not found: run the tests with scripts/test.sh (it installs Garage 2.5.0), or set GARAGE_BIN"
    );
    cargo_bin
}

impl Garage {
    fn start() -> Garage {
        let bin = garage_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..64)
            .map(|i| b"0123456789abcdef"[(i * 7 + 3) % 16] as char)
            .collect();
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                dir = dir.path().display()
            ),
        )
        .expect("write garage config");
        // Garage runs under a shell that kills it when our end of its stdin closes, i.e. when this
        // test process exits, however it exits.
        let log = dir.path().join("garage.log");
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(r#""$0" -c "$1" server >"$2" 2>&1 & g=$!; read -r _; kill $g; wait $g"#)
            .arg(&bin)
            .arg(&config)
            .arg(&log)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .spawn()
            .expect("start garage");
        // Keep the pipe open for the life of the process.
        let stdin = child.stdin.take().expect("stdin");
        std::mem::forget(stdin);

        let g = Garage {
            server: S3Server {
                name: "garage",
                endpoint: format!("http://127.0.0.1:{s3}"),
                region: REGION.into(),
                access_key: ACCESS_KEY.into(),
                secret_key: SECRET_KEY.into(),
                quirks: Quirks::default(),
            },
            config,
            bin,
            _dir: dir,
            _child: child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let node_id = loop {
            let out = g.cli_output(&["node", "id", "-q"]);
            if let Ok(id) = out {
                break id.trim().split('@').next().unwrap_or_default().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "Garage did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // A node that answers `node id` may still refuse admin commands for a moment: each setup
        // step is retried until the same deadline, and a failure says what Garage answered.
        let setup: [&[&str]; 4] = [
            &["layout", "assign", "-z", "dc1", "-c", "1G", &node_id],
            &["layout", "apply", "--version", "1"],
            &[
                "key", "import", "--yes", "-n", "tests", ACCESS_KEY, SECRET_KEY,
            ],
            &["key", "allow", "--create-bucket", "tests"],
        ];
        for args in setup {
            while let Err(e) = g.cli_output(args) {
                assert!(
                    Instant::now() < deadline,
                    "garage {args:?} failed: {e}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        g
    }

    fn cli_output(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// Waits until uploads seeded just now are older than the `older_than = "1s"` of a config.
pub fn wait_older_than_1s() {
    let seeded = Utc::now();
    super::wait_until("uploads older than 1s", Duration::from_secs(5), || {
        Utc::now() - seeded > chrono::Duration::milliseconds(1_200)
    });
}

/// Starts an upload on `key` and uploads one part per entry of `part_sizes`; returns the upload id.
pub async fn seed(client: &Client, bucket: &str, key: &str, part_sizes: &[usize]) -> String {
    let id = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create upload {key:?}: {e:?}"))
        .upload_id
        .expect("upload id");
    for (i, size) in part_sizes.iter().enumerate() {
        put_part(client, bucket, key, &id, i as i32 + 1, *size).await;
    }
    id
}

/// Uploads part `number` of `size` bytes (content derived from the number, so ETags differ).
pub async fn put_part(
    client: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    number: i32,
    size: usize,
) {
    let body: Vec<u8> = (0..size)
        .map(|i| (i as u32 ^ number as u32) as u8)
        .collect();
    client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(number)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {number} of {key:?}: {e:?}"));
}

/// Seeds many uploads, 32 at a time; `make(i)` gives the key and part sizes of upload i.
pub async fn seed_many<F>(client: &Client, bucket: &str, n: usize, make: F) -> Vec<(String, String)>
where
    F: Fn(usize) -> (String, Vec<usize>),
{
    futures::stream::iter((0..n).map(|i| {
        let (key, parts) = make(i);
        let client = client.clone();
        let bucket = bucket.to_string();
        async move {
            let id = seed(&client, &bucket, &key, &parts).await;
            (key, id)
        }
    }))
    .buffer_unordered(32)
    .collect()
    .await
}

/// Every incomplete upload in the bucket, as (key, upload id), following both markers.
pub async fn list_all(client: &Client, bucket: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let page = client
            .list_multipart_uploads()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .expect("list uploads");
        out.extend(page.uploads().iter().map(|u| {
            (
                u.key().unwrap_or_default().to_string(),
                u.upload_id().unwrap_or_default().to_string(),
            )
        }));
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
    }
    out.sort();
    out
}
