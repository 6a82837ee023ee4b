//! `mpu-janitor demo`: the product at work with no account and no server to install. It starts the
//! embedded S3 endpoint (the `s3-mem` crate) on a free loopback port, seeds a realistic scene, and runs the
//! real plan and sweep code against it over HTTP with the real aws-sdk-s3 client and SigV4 signing.
//! Every figure printed is computed by the sweep; the scene only says what it seeded, so the two can
//! be compared.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{HumanDuration, Settings, Target};
use crate::discover::Scope;
use crate::metrics::Metrics;
use crate::report::{self, RunReport, human_bytes};
use crate::runner::{Exporter, Runner, Show};
use crate::shutdown::Shutdown;
use crate::store::Connector;
use crate::sweep::SweepOptions;
use s3_mem::{Endpoint, Faults};
use tokio::sync::Semaphore;

/// Keys the demo endpoint accepts (loopback only, in memory).
pub const ACCESS_KEY: &str = "DEMOACCESSKEY0000001";
/// Its secret.
pub const SECRET_KEY: &str = "demo-secret-key-not-a-real-credential";

const MIB: u64 = 1024 * 1024;

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Plain stale uploads to seed (spread over the two buckets).
    pub uploads: usize,
    /// Keep the endpoint and /metrics up after the sweep, until Ctrl-C.
    pub serve: bool,
    /// Print JSON instead of text.
    pub json: bool,
    /// Show the live progress line on stderr.
    pub progress: bool,
}

/// What the demo seeded, to compare with what the sweep reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scene {
    /// Buckets created.
    pub buckets: Vec<String>,
    /// Incomplete uploads seeded, in all.
    pub uploads: u64,
    /// Uploads the sweep should abort and verify (stragglers included).
    pub stale: u64,
    /// Their bytes.
    pub stale_bytes: u64,
    /// Uploads younger than `older_than`.
    pub fresh: u64,
    /// Uploads under an excluded prefix.
    pub excluded: u64,
    /// Old uploads that received a part within `idle_for`.
    pub idle: u64,
    /// Uploads whose part lands after the first abort (need a second one).
    pub stragglers: u64,
    /// Uploads that never empty (reported unverified).
    pub never_empty: u64,
    /// Uploads outside the swept prefix.
    pub outside_prefix: u64,
}

impl Scene {
    /// Seeds an upload the sweep should abort and verify, and counts it and its bytes.
    fn seed_stale(
        &mut self,
        ep: &Endpoint,
        bucket: &str,
        key: &str,
        initiated: chrono::DateTime<Utc>,
        parts: &[(u32, u64)],
    ) {
        ep.seed_upload(bucket, key, initiated, parts);
        self.stale += 1;
        self.stale_bytes += parts.iter().map(|p| p.1).sum::<u64>();
    }
}

/// What `demo --output json` prints.
#[derive(Serialize)]
pub struct DemoReport {
    /// The endpoint URL (gone once the demo exits, unless `--serve`).
    pub endpoint: String,
    /// What was seeded.
    pub scene: Scene,
    /// The plan, before anything changed.
    pub plan: RunReport,
    /// The sweep.
    pub report: RunReport,
    /// Incomplete uploads left on the endpoint after the sweep, counted by the endpoint itself.
    pub uploads_left: u64,
    /// The Prometheus exposition after the sweep.
    pub metrics: String,
    /// True when the sweep's figures match the scene.
    pub matches_scene: bool,
}

/// A small deterministic generator, so the same `--uploads` gives the same scene.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The demo's targets, pointing at the endpoint.
fn targets(url: &str) -> Vec<Target> {
    let base = Settings {
        endpoint_url: url.parse().expect("the endpoint's own URL"),
        force_path_style: true,
        region: "us-east-1".into(),
        max_abort_attempts: 3,
        retry_max_attempts: 6,
        ..Settings::default()
    };
    vec![
        Target {
            bucket: "media-uploads".into(),
            prefix: String::new(),
            exclude_prefixes: vec!["live/".into()],
            settings: Settings {
                older_than: HumanDuration::secs(7 * 86_400),
                idle_for: HumanDuration::secs(3_600),
                ..base.clone()
            },
            discovery: None,
            vault: None,
        },
        Target {
            bucket: "db-backups".into(),
            prefix: "nightly/".into(),
            exclude_prefixes: vec![],
            settings: Settings {
                older_than: HumanDuration::secs(2 * 86_400),
                ..base
            },
            discovery: None,
            vault: None,
        },
    ]
}

/// Seeds the scene. Most uploads go straight into memory (declared part sizes, no bytes); the slow
/// live upload is written through the S3 protocol with the endpoint's clock moved back.
async fn seed(ep: &Endpoint, client: &aws_sdk_s3::Client, n: usize) -> Result<Scene, String> {
    let now = Utc::now();
    let days = |d: i64| now - TimeDelta::days(d);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut scene = Scene {
        buckets: vec!["media-uploads".into(), "db-backups".into()],
        ..Scene::default()
    };
    for b in &scene.buckets {
        ep.create_bucket(b);
    }
    let parts = |rng: &mut Rng, count: u32, size: u64| -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = (1..=count).map(|i| (i, size)).collect();
        if let Some(last) = v.last_mut() {
            last.1 = 1 + rng.next(size); // the last part of an interrupted upload is short
        }
        v
    };

    // media-uploads: stale video uploads of 1-6 parts of 8 MiB.
    let media = n * 2 / 3;
    for i in 0..media {
        let count = 1 + rng.next(6) as u32;
        let p = parts(&mut rng, count, 8 * MIB);
        let age = 8 + rng.next(50) as i64;
        scene.seed_stale(
            ep,
            "media-uploads",
            &format!("videos/2026/clip-{i:05}.mp4"),
            days(age),
            &p,
        );
    }
    for i in 0..5 {
        let age = now - TimeDelta::minutes(10 + 20 * i);
        ep.seed_upload(
            "media-uploads",
            &format!("videos/incoming/clip-{i}.mp4"),
            age,
            &[(1, 8 * MIB)],
        );
        scene.fresh += 1;
    }
    for i in 0..3 {
        ep.seed_upload(
            "media-uploads",
            &format!("live/stream-{i}.ts"),
            days(20),
            &[(1, 4 * MIB), (2, 4 * MIB)],
        );
        scene.excluded += 1;
    }
    // A straggler: a part lands after the first abort, so it takes two.
    let p = parts(&mut rng, 3, 8 * MIB);
    scene.seed_stale(
        ep,
        "media-uploads",
        "videos/2026/retry-after-timeout.mp4",
        days(12),
        &p,
    );
    scene.stragglers += 1;
    // One that never empties: reported unverified, never counted as reclaimed.
    ep.seed_upload(
        "media-uploads",
        "videos/2026/stuck-on-a-broken-node.mp4",
        days(30),
        &[(1, 8 * MIB)],
    );
    scene.never_empty += 1;

    // A slow live upload: started 9 days ago, its last part arrived 3 minutes ago. Written through
    // the protocol with the endpoint's clock moved back, like a real client would have.
    let key = "videos/raw/4k-master.mov";
    ep.set_clock_offset(-TimeDelta::days(9));
    let created = client
        .create_multipart_upload()
        .bucket("media-uploads")
        .key(key)
        .send()
        .await
        .map_err(|e| format!("seeding {key}: {e}"))?;
    let id = created.upload_id().unwrap_or_default().to_string();
    for (number, offset) in [
        (1, TimeDelta::days(9)),
        (2, TimeDelta::days(4)),
        (3, TimeDelta::minutes(3)),
    ] {
        ep.set_clock_offset(-offset);
        client
            .upload_part()
            .bucket("media-uploads")
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(vec![number as u8; 256 * 1024]))
            .send()
            .await
            .map_err(|e| format!("seeding part {number} of {key}: {e}"))?;
    }
    ep.set_clock_offset(TimeDelta::zero());
    scene.idle += 1;

    // db-backups: nightly dumps of 20-100 parts of 64 MiB, one with 1,200 parts (two ListParts pages).
    let p = parts(&mut rng, 1_200, 16 * MIB);
    scene.seed_stale(ep, "db-backups", "nightly/warehouse-full.dump", days(4), &p);
    for i in 0..(n - media) {
        let count = 20 + rng.next(80) as u32;
        let p = parts(&mut rng, count, 64 * MIB);
        let age = 3 + rng.next(20) as i64;
        scene.seed_stale(
            ep,
            "db-backups",
            &format!("nightly/pg-{i:05}.dump"),
            days(age),
            &p,
        );
    }
    for i in 0..2 {
        ep.seed_upload(
            "db-backups",
            &format!("nightly/pg-today-{i}.dump"),
            now - TimeDelta::hours(6),
            &[(1, 64 * MIB)],
        );
        scene.fresh += 1;
        ep.seed_upload(
            "db-backups",
            &format!("manual/ad-hoc-{i}.dump"),
            days(40),
            &[(1, 64 * MIB)],
        );
        scene.outside_prefix += 1;
    }
    scene.uploads = scene.stale
        + scene.fresh
        + scene.excluded
        + scene.idle
        + scene.never_empty
        + scene.outside_prefix;
    Ok(scene)
}

/// Runs the demo; returns the exit code.
pub async fn run(opts: DemoOptions) -> Result<u8, String> {
    let ep = Endpoint::start(ACCESS_KEY, SECRET_KEY)
        .await
        .map_err(|e| format!("cannot start the embedded S3 endpoint: {e}"))?;
    let url = ep.url();
    let targets = targets(&url);
    let runner = Runner {
        connector: Connector::with_static_credentials(ACCESS_KEY, SECRET_KEY),
        shutdown: Shutdown::new(Duration::from_secs(10)),
        global_limit: Arc::new(Semaphore::new(256)),
        parallel_targets: 2,
        scope: Scope::default(),
    };
    let client = runner
        .connector
        .client(&targets[0].settings)
        .await
        .map_err(|e| e.to_string())?;
    let scene = seed(&ep, &client, opts.uploads).await?;
    let text = !opts.json;
    if text {
        println!(
            "mpu-janitor demo: embedded S3 endpoint at {url} (in memory, loopback only; nothing is written to disk)"
        );
        println!(
            "Seeded {} incomplete uploads in {} buckets: {} stale ({}), {} fresh, {} excluded, {} still receiving parts, {} outside the swept prefix.",
            scene.uploads,
            scene.buckets.len(),
            scene.stale + scene.never_empty,
            human_bytes(scene.stale_bytes),
            scene.fresh,
            scene.excluded,
            scene.idle,
            scene.outside_prefix
        );
        println!(
            "Faults: {} straggler whose part lands after the first abort, {} upload that never empties, 3% of requests answered 503 SlowDown.\n",
            scene.stragglers, scene.never_empty
        );
    }

    // The plan: a dry run of the same targets.
    let dry: Vec<Target> = targets
        .iter()
        .map(|t| Target {
            settings: Settings {
                dry_run: true,
                ..t.settings.clone()
            },
            ..t.clone()
        })
        .collect();
    let Some(plan) = runner
        .sweep_all(
            &dry,
            runner.options(if text { 8 } else { usize::MAX }),
            Show::Nothing,
        )
        .await
    else {
        return Err("interrupted".into());
    };
    if text {
        println!("== Plan (mpu-janitor plan): nothing changed yet ==");
        print!("{}", report::render_plan_text(&plan));
        println!();
    }

    ep.set_faults(Faults {
        stragglers: [("videos/2026/retry-after-timeout.mp4".to_string(), 1)].into(),
        never_empty: ["videos/2026/stuck-on-a-broken-node.mp4".to_string()].into(),
        slowdown_fraction: 0.03,
        ..Faults::default()
    });
    let sweep_opts = SweepOptions {
        reabort_backoff: Duration::from_millis(20),
        ..runner.options(if text { 0 } else { usize::MAX })
    };
    if text {
        println!("== Sweep (mpu-janitor once) ==");
    }
    let show = if opts.progress {
        Show::Line
    } else {
        Show::Nothing
    };
    let Some(run) = runner.sweep_all(&targets, sweep_opts, show).await else {
        return Err("interrupted".into());
    };
    ep.set_faults(Faults::default());
    let throttled = ep.stats().slowdown_faults;
    let exporter = Exporter::in_memory();
    exporter.record_run(&run);
    let metrics = exporter.metrics;
    let uploads_left: u64 = scene
        .buckets
        .iter()
        .map(|b| ep.upload_count(b) as u64)
        .sum();
    let total = |f: fn(&crate::report::TargetReport) -> u64| run.targets.iter().map(f).sum::<u64>();
    let expected_left = scene.uploads - scene.stale;
    let checks = [
        (
            "uploads aborted and verified",
            total(|t| t.aborted),
            scene.stale,
        ),
        (
            "bytes reclaimed",
            total(|t| t.reclaimed_bytes),
            scene.stale_bytes,
        ),
        (
            "uploads unverified",
            total(|t| t.unverified),
            scene.never_empty,
        ),
        (
            "uploads kept for a recent part",
            total(|t| t.skipped_idle),
            scene.idle,
        ),
        ("uploads left on the endpoint", uploads_left, expected_left),
    ];
    let matches_scene = checks.iter().all(|(_, got, want)| got == want);
    if text {
        print!("{}", report::render_run_text(&run));
        println!(
            "(abort calls: {} for {} uploads: the straggler took 2, the stuck upload {}; the endpoint answered {throttled} requests with 503 SlowDown and the SDK retried them)\n",
            total(|t| t.abort_attempts),
            total(|t| t.stale),
            targets[0].settings.max_abort_attempts
        );
        println!("== Metrics (what /metrics exports) ==");
        for line in metrics.render().lines().filter(|l| !l.starts_with('#')) {
            if !line.contains("_bucket{") {
                println!("{line}");
            }
        }
        println!("\n== Check: the sweep's figures against the seeded scene ==");
        for (what, got, want) in &checks {
            let mark = if got == want { "ok" } else { "MISMATCH" };
            println!("  {mark:<8} {what}: {got} (scene: {want})");
        }
        println!(
            "\nThe stuck upload is why a real `once` would exit 1: it still holds parts after {} aborts, and mpu-janitor says so instead of counting it.",
            targets[0].settings.max_abort_attempts
        );
    } else {
        let out = DemoReport {
            endpoint: url.clone(),
            scene: scene.clone(),
            plan,
            report: run,
            uploads_left,
            metrics: metrics.render(),
            matches_scene,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
    }

    if opts.serve {
        serve(&ep, metrics).await?;
    }
    ep.shutdown().await;
    Ok(if matches_scene { 0 } else { 1 })
}

/// Keeps the endpoint and a /metrics server up until Ctrl-C or SIGTERM.
async fn serve(ep: &Endpoint, metrics: Metrics) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the metrics port: {e}"))?;
    let maddr = listener.local_addr().map_err(|e| e.to_string())?;
    let cancel = CancellationToken::new();
    let ready: crate::http::ReadyCheck = Arc::new(|| Ok("demo".to_string()));
    let server = tokio::spawn(crate::http::serve(listener, metrics, ready, cancel.clone()));
    eprintln!("\nServing until Ctrl-C:");
    eprintln!("  S3 endpoint  {}", ep.url());
    eprintln!(
        "    AWS_ACCESS_KEY_ID={ACCESS_KEY} AWS_SECRET_ACCESS_KEY={SECRET_KEY} aws --region us-east-1 --endpoint-url {} s3api list-multipart-uploads --bucket media-uploads",
        ep.url()
    );
    eprintln!("  metrics      http://{maddr}/metrics   (also /healthz, /readyz)");
    Shutdown::new(Duration::ZERO).signalled().await;
    cancel.cancel();
    let _ = server.await;
    Ok(())
}
