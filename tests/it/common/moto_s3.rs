//! moto's S3 in server mode (moto 5.2.1, `pip install "moto[server]"`, installed by
//! scripts/test.sh), a real S3 endpoint that enforces conditional writes (`If-None-Match: *`,
//! `If-Match`): the lease's test server. One process per test, on a free loopback port, killed when
//! dropped. [`MotoS3::with_clock_behind`] runs the same server with its clock set back (Python's
//! `time.time` shifted before moto starts; the `Date` header of every answer comes from it), so a
//! test can tell the store's clock from this host's.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::Client;
use mpu_janitor::config::Settings;
use mpu_janitor::store::Connector;

use super::{free_port, settings_at, wait_until};

/// How long moto gets to answer HTTP after being spawned (it takes 1 to 3 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto S3, killed when dropped.
pub struct MotoS3 {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl MotoS3 {
    /// moto on this host's clock.
    pub fn start() -> MotoS3 {
        Self::spawn(0)
    }

    /// moto whose clock (the `Date` of its answers) runs `secs` seconds behind this host's.
    pub fn with_clock_behind(secs: u64) -> MotoS3 {
        Self::spawn(secs)
    }

    fn spawn(behind: u64) -> MotoS3 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port().to_string();
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut command = if behind == 0 {
            Command::new("moto_server")
        } else {
            // moto_server's own entry point, after shifting the clock every part of it reads.
            let mut c = Command::new("python3");
            c.arg("-c").arg(format!(
                "import sys, time\n_t = time.time\ntime.time = lambda: _t() - {behind}\nfrom moto.server import main\nmain(sys.argv[1:])\n"
            ));
            c
        };
        let mut child = command
            .args(["-H", "127.0.0.1", "-p", &port])
            .current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("moto_server (pip install \"moto[server]\"; scripts/test.sh installs it)");
        let addr = format!("127.0.0.1:{port}");
        wait_until("moto_server to answer HTTP", START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("moto_server exited ({status}) before answering:\n{log}");
            }
            super::http::get(&addr, "/moto-api/data.json").is_some_and(|(s, _)| s == 200)
        });
        MotoS3 {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Settings pointing at it (path style, us-east-1).
    pub fn settings(&self) -> Settings {
        settings_at(&self.url())
    }

    /// The product's own SDK client for it (moto takes any key).
    pub async fn client(&self) -> Client {
        Connector::with_static_credentials("AKIAMOTOLEASE", "secret")
            .client(&self.settings().client())
            .await
            .expect("an SDK client for moto")
    }

    /// Creates `bucket`.
    pub async fn bucket(&self, bucket: &str) {
        self.client()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto: create bucket {bucket}: {e:?}"));
    }

    /// Stops it now (a store that stops answering).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoS3 {
    fn drop(&mut self) {
        self.kill();
    }
}
