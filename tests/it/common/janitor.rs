//! Running the janitor binary (`CARGO_BIN_EXE_mpu-janitor`) as a user or a service manager would:
//! to completion against the Garage of [`super::garage`], or spawned in the background against the
//! embedded endpoint of [`super::endpoint`] and stopped with SIGTERM. Its AWS environment is set on its own `Command` only, never in this process.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use s3_mem::Faults;

use super::endpoint::{self, config_toml, seed_old};
use super::garage::{ACCESS_KEY, SECRET_KEY};

/// The binary with a hermetic AWS environment: these credentials (or none at all), no instance
/// metadata, no shared config or credentials file, no proxy from this machine's environment.
pub fn command(credentials: Option<(&str, &str)>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mpu-janitor"));
    match credentials {
        Some((ak, sk)) => cmd
            .env("AWS_ACCESS_KEY_ID", ak)
            .env("AWS_SECRET_ACCESS_KEY", sk),
        None => cmd
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY"),
    };
    for proxy in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
        cmd.env_remove(proxy).env_remove(proxy.to_lowercase());
    }
    // The machine's region must not leak into a test's configuration (the janitor reads it
    // when the configuration sets none).
    cmd.env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION");
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    cmd
}

/// What the binary did.
pub struct Output {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(out: std::process::Output) -> Output {
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Output {
    /// (exit code, stdout, stderr)
    pub fn into_parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// Runs the binary with `args`, the given config text and the Garage test credentials.
pub fn janitor(config_text: &str, args: &[&str]) -> Output {
    janitor_with_env(config_text, args, &[])
}

/// Like [`janitor`] with extra environment variables.
pub fn janitor_with_env(config_text: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(config_text.as_bytes()))
        .expect("write config");
    run_janitor(&path, args, extra)
}

/// Runs the binary with a config path, the Garage test credentials, warnings only, and `extra`.
pub fn run_janitor(config: &Path, args: &[&str], extra: &[(&str, &str)]) -> Output {
    run_janitor_as((ACCESS_KEY, SECRET_KEY), config, args, extra)
}

/// Like [`janitor`], signing with `credentials`.
pub fn janitor_as(credentials: (&str, &str), config_text: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text).expect("write config");
    run_janitor_as(credentials, &path, args, &[])
}

/// Like [`run_janitor`], signing with `credentials`.
fn run_janitor_as(
    credentials: (&str, &str),
    config: &Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Output {
    let mut cmd = command(Some(credentials));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run mpu-janitor").into()
}

/// Spawns the binary in the background with the config text, `args`, the embedded endpoint's
/// credentials and `env`, its output piped; the temp dir holding the config must outlive it.
pub fn spawn_janitor(
    config_text: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text).unwrap();
    let mut cmd = command(Some((endpoint::AK, endpoint::SK)));
    cmd.arg("--config")
        .arg(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd.spawn().expect("spawn mpu-janitor"), dir)
}

/// Sends SIGTERM to the child.
pub fn sigterm(child: &Child) {
    send_signal(child, "TERM");
}

/// Sends the signal named `name` (`TERM`, `HUP`, ...) to the child with kill(1).
pub fn send_signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits for the child to exit within `timeout` (reading its output meanwhile, so a large report
/// cannot fill the pipe); returns its exit code, stdout and stderr.
pub fn wait_exit(child: Child, timeout: Duration) -> (i32, String, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => Output::from(out).into_parts(),
        Ok(Err(e)) => panic!("waiting for the process: {e}"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the process did not exit within {timeout:?}");
        }
    }
}

/// A spawned janitor, killed if the test fails before it exits.
pub struct Janitor(pub Option<Child>);

impl Janitor {
    pub fn child(&self) -> &Child {
        self.0.as_ref().expect("still running")
    }

    /// Waits for it to exit (see [`wait_exit`]).
    pub fn wait(mut self, timeout: Duration) -> (i32, String, String) {
        wait_exit(self.0.take().expect("still running"), timeout)
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What a `once` cut short by a signal did (see [`once_cut_short_by`]).
pub struct CutShort {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Uploads the endpoint really removed.
    pub removed: u64,
    /// Uploads left on it.
    pub left: usize,
    /// From the signal to the exit.
    pub took: Duration,
}

/// Spawns `once --output OUTPUT` on 300 slow uploads of bucket `cut-bucket` (4 at a time, 25 ms a
/// call, `shutdown_grace` 10 s), waits until 10 are aborted and sends `signal` (`TERM`, `HUP`).
pub async fn once_cut_short_by(signal: &str, output: &str) -> CutShort {
    let ep = endpoint::endpoint().await;
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
    let child = Janitor(Some(child));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ep.stats().aborts_removed < 10 {
        assert!(Instant::now() < deadline, "no abort happened");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    send_signal(child.child(), signal);
    let (code, stdout, stderr) = child.wait(Duration::from_secs(15));
    let took = signalled.elapsed();
    println!("once after SIG{signal}: exit {code} in {took:?}");
    CutShort {
        code,
        stdout,
        stderr,
        removed: ep.stats().aborts_removed,
        left: ep.upload_count("cut-bucket"),
        took,
    }
}
