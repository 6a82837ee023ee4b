//! `mpu-janitor demo`: the product at work with no account and no server to install. It starts the
//! embedded S3 endpoint (the `s3-mem` crate) on a free loopback port, seeds a realistic scene, and runs the
//! real plan and sweep code against it over HTTP with the real aws-sdk-s3 client and SigV4 signing.
//! Every figure printed is computed by the sweep; the scene only says what it seeded, so the two can
//! be compared. Beside the two S3 buckets it starts the crate's directory-bucket endpoint (S3
//! Express One Zone: session authentication, conditional aborts) and its Glacier endpoint, so one
//! run shows a directory bucket and a vault swept by the same code.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{HumanDuration, Kind, Settings, Target, Vault};
use crate::discover::Scope;
use crate::exit::Exit;
use crate::metrics::Metrics;
use crate::report::{self, RunReport, human_bytes};
use crate::run::{Exporter, Runner, Show};
use crate::shutdown::Shutdown;
use crate::store::Connector;
use crate::sweep::SweepOptions;
use s3_mem::express::{DirFaults, DirectoryEndpoint};
use s3_mem::glacier::GlacierEndpoint;
use s3_mem::{Endpoint, Faults};

/// Keys the demo endpoint accepts (loopback only, in memory).
pub const ACCESS_KEY: &str = "DEMOACCESSKEY0000001";
/// Its secret.
pub const SECRET_KEY: &str = "demo-secret-key-not-a-real-credential";

const MIB: u64 = 1024 * 1024;

/// The demo's directory bucket (S3 Express One Zone, zone use1-az4).
const DIRECTORY_BUCKET: &str = "scratch--use1-az4--x-s3";
/// The upload of the directory bucket that is replaced under its id between listing and abort.
const REPLACED_KEY: &str = "spool/rewritten.parquet";
/// The demo's Glacier vault (of the caller's own account, `-`).
const VAULT: &str = "archive";

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
    /// S3 buckets created (general-purpose ones, then the directory bucket).
    pub buckets: Vec<String>,
    /// Glacier vaults created.
    pub vaults: Vec<String>,
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
    /// Uploads replaced by a newer one under the same id after they were judged (directory
    /// bucket: the abort's `If-Match-Initiated-Time` fails, 412, and they are kept).
    pub replaced: u64,
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
        self.count_stale(parts.iter().map(|p| p.1).sum());
    }

    /// Counts a seeded upload of `bytes` the sweep should abort and verify.
    fn count_stale(&mut self, bytes: u64) {
        self.stale += 1;
        self.stale_bytes += bytes;
    }
}

/// The demo's three endpoints: S3 (general-purpose buckets), directory buckets, Glacier.
struct Endpoints {
    s3: Endpoint,
    directory: DirectoryEndpoint,
    glacier: GlacierEndpoint,
}

impl Endpoints {
    async fn start() -> Result<Endpoints, String> {
        let fail = |what: &str, e: std::io::Error| format!("cannot start the embedded {what}: {e}");
        Ok(Endpoints {
            s3: Endpoint::start(ACCESS_KEY, SECRET_KEY)
                .await
                .map_err(|e| fail("S3 endpoint", e))?,
            directory: DirectoryEndpoint::start(ACCESS_KEY, SECRET_KEY)
                .await
                .map_err(|e| fail("directory-bucket endpoint", e))?,
            glacier: GlacierEndpoint::start(ACCESS_KEY, SECRET_KEY)
                .await
                .map_err(|e| fail("Glacier endpoint", e))?,
        })
    }

    /// Incomplete uploads left, as each endpoint counts them.
    fn uploads_left(&self, scene: &Scene) -> u64 {
        let mut left = 0;
        for b in &scene.buckets {
            left += if b == DIRECTORY_BUCKET {
                self.directory.upload_count(b)
            } else {
                self.s3.upload_count(b)
            };
        }
        for v in &scene.vaults {
            left += self.glacier.upload_count("-", v);
        }
        left as u64
    }

    async fn shutdown(self) {
        self.s3.shutdown().await;
        self.directory.shutdown().await;
        self.glacier.shutdown().await;
    }
}

/// What `demo --output json` prints.
#[derive(Serialize)]
pub struct DemoReport {
    /// The S3 endpoint's URL (gone once the demo exits, unless `--serve`).
    pub endpoint: String,
    /// The directory-bucket endpoint's URL.
    pub directory_endpoint: String,
    /// The Glacier endpoint's URL.
    pub glacier_endpoint: String,
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

/// The demo's targets, pointing at the endpoints.
fn targets(eps: &Endpoints) -> Vec<Target> {
    let at = |url: String| url.parse().expect("the endpoint's own URL");
    let vault = Vault {
        name: VAULT.into(),
        account_id: "-".into(),
    };
    let base = Settings {
        endpoint_url: at(eps.s3.url()),
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
            kind: Kind::Bucket,
        },
        Target {
            bucket: "db-backups".into(),
            prefix: "nightly/".into(),
            exclude_prefixes: vec![],
            settings: Settings {
                older_than: HumanDuration::secs(2 * 86_400),
                ..base.clone()
            },
            kind: Kind::Bucket,
        },
        // A directory bucket: virtual-hosted by its name, session-signed, listed by a prefix
        // ending in "/"; an IP endpoint makes the SDK address it in path style.
        Target {
            bucket: DIRECTORY_BUCKET.into(),
            prefix: "spool/".into(),
            exclude_prefixes: vec![],
            settings: Settings {
                endpoint_url: at(eps.directory.url()),
                force_path_style: false,
                older_than: HumanDuration::secs(86_400),
                ..base.clone()
            },
            kind: Kind::Bucket,
        },
        Target {
            bucket: vault.label(),
            prefix: String::new(),
            exclude_prefixes: vec![],
            settings: Settings {
                endpoint_url: at(eps.glacier.url()),
                force_path_style: false,
                older_than: HumanDuration::secs(30 * 86_400),
                ..base
            },
            kind: Kind::Vault(vault),
        },
    ]
}

/// Seeds the scene. Most uploads go straight into memory (declared part sizes, no bytes); the slow
/// live upload is written through the S3 protocol with the endpoint's clock moved back.
async fn seed(eps: &Endpoints, client: &aws_sdk_s3::Client, n: usize) -> Result<Scene, String> {
    let ep = &eps.s3;
    let now = Utc::now();
    let days = |d: i64| now - TimeDelta::days(d);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut scene = Scene {
        buckets: vec!["media-uploads".into(), "db-backups".into()],
        vaults: vec![VAULT.into()],
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

    // scratch--use1-az4--x-s3: a directory bucket of spooled query results, 1-3 parts of 5 MiB.
    let dir = &eps.directory;
    dir.create_bucket(DIRECTORY_BUCKET);
    scene.buckets.push(DIRECTORY_BUCKET.into());
    for i in 0..(n / 10).max(3) {
        let count = 1 + rng.next(3) as u32;
        let p = parts(&mut rng, count, 5 * MIB);
        dir.seed_upload(
            DIRECTORY_BUCKET,
            &format!("spool/query-{i:04}.parquet"),
            days(2 + rng.next(5) as i64),
            &p,
        );
        scene.count_stale(p.iter().map(|p| p.1).sum());
    }
    dir.seed_upload(
        DIRECTORY_BUCKET,
        "spool/running-query.parquet",
        now - TimeDelta::minutes(40),
        &[(1, 5 * MIB)],
    );
    scene.fresh += 1;
    dir.seed_upload(DIRECTORY_BUCKET, REPLACED_KEY, days(3), &[(1, 5 * MIB)]);
    scene.replaced += 1;
    dir.seed_upload(
        DIRECTORY_BUCKET,
        "pinned/model.bin",
        days(10),
        &[(1, 5 * MIB)],
    );
    scene.outside_prefix += 1;

    // archive: a Glacier vault with backups abandoned mid-upload, 4-16 parts of 64 MiB.
    let glacier = &eps.glacier;
    glacier.create_vault("-", VAULT);
    for i in 0..(n / 20).max(2) {
        let count = 4 + rng.next(13) as u32;
        glacier.seed_upload(
            "-",
            VAULT,
            &format!("monthly backup {i:03}"),
            days(35 + rng.next(300) as i64),
            64 * MIB,
            count,
        );
        scene.count_stale(u64::from(count) * 64 * MIB);
    }
    glacier.seed_upload("-", VAULT, "this month's backup", days(3), 64 * MIB, 2);
    scene.fresh += 1;

    scene.uploads = scene.stale
        + scene.replaced
        + scene.fresh
        + scene.excluded
        + scene.idle
        + scene.never_empty
        + scene.outside_prefix;
    Ok(scene)
}

/// Runs the demo; returns how it exits.
pub async fn run(opts: DemoOptions) -> Result<Exit, String> {
    let eps = Endpoints::start().await?;
    let ep = &eps.s3;
    let url = ep.url();
    let targets = targets(&eps);
    let runner = Arc::new(Runner::with_connector(
        Connector::with_static_credentials(ACCESS_KEY, SECRET_KEY),
        Shutdown::new(Duration::from_secs(10)),
        256,
        2,
        Exporter::in_memory(),
    ));
    let scope = Arc::new(Scope::default());
    let client = runner
        .connector
        .client(&targets[0].settings.client())
        .await
        .map_err(|e| e.to_string())?;
    let scene = seed(&eps, &client, opts.uploads).await?;
    let text = !opts.json;
    if text {
        println!(
            "mpu-janitor demo: embedded S3 endpoint at {url}, directory-bucket endpoint at {}, Glacier endpoint at {} (in memory, loopback only; nothing is written to disk)",
            eps.directory.url(),
            eps.glacier.url()
        );
        println!(
            "Seeded {} incomplete uploads in {} buckets (one of them the directory bucket {DIRECTORY_BUCKET}) and the Glacier vault {VAULT}: {} stale ({}), {} fresh, {} excluded, {} still receiving parts, {} outside the swept prefix.",
            scene.uploads,
            scene.buckets.len(),
            scene.stale + scene.never_empty + scene.replaced,
            human_bytes(scene.stale_bytes),
            scene.fresh,
            scene.excluded,
            scene.idle,
            scene.outside_prefix
        );
        println!(
            "Faults: {} straggler whose part lands after the first abort, {} upload that never empties, 3% of S3 requests answered 503 SlowDown, {} directory-bucket upload replaced under its id after the plan.\n",
            scene.stragglers, scene.never_empty, scene.replaced
        );
    }

    // The plan: a dry run of the same targets.
    let dry: Arc<[Target]> = targets
        .iter()
        .map(|t| Target {
            settings: Settings {
                dry_run: true,
                ..t.settings.clone()
            },
            ..t.clone()
        })
        .collect();
    // The plan's figures would count in the registry the sweep's are read from: none are kept.
    let planner = Arc::new(Runner::with_connector(
        Connector::with_static_credentials(ACCESS_KEY, SECRET_KEY),
        Shutdown::new(Duration::from_secs(10)),
        256,
        2,
        Exporter::in_memory(),
    ));
    let Some(plan) = planner
        .sweep_all(
            dry,
            scope.clone(),
            planner.options(if text { 8 } else { usize::MAX }),
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
    // Between the plan and the sweep a writer starts a new upload under the same id: the sweep's
    // abort carries the initiation time it judged, the endpoint answers 412 and the upload stays.
    eps.directory.set_faults(DirFaults {
        replace_on_list_parts: [REPLACED_KEY.to_string()].into(),
        ..DirFaults::default()
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
    let swept: Arc<[Target]> = targets.clone().into();
    let Some(run) = runner.sweep_all(swept, scope, sweep_opts, show).await else {
        return Err("interrupted".into());
    };
    ep.set_faults(Faults::default());
    let throttled = ep.stats().slowdown_faults;
    let metrics = runner.exporter.metrics.clone();
    let uploads_left = eps.uploads_left(&scene);
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
        (
            "uploads kept as replaced under their id (412)",
            total(|t| t.skipped_suspicious),
            scene.replaced,
        ),
        ("uploads left on the endpoints", uploads_left, expected_left),
    ];
    let matches_scene = checks.iter().all(|(_, got, want)| got == want);
    if text {
        print!("{}", report::render_run_text(&run));
        println!(
            "(abort calls: {} for {} uploads: the straggler took 2, the stuck upload {}, the replaced one 1 (412, kept); the S3 endpoint answered {throttled} requests with 503 SlowDown and the SDK retried them)\n",
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
            directory_endpoint: eps.directory.url(),
            glacier_endpoint: eps.glacier.url(),
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
        serve(&eps, metrics).await?;
    }
    eps.shutdown().await;
    Ok(if matches_scene {
        Exit::Clean
    } else {
        Exit::Failed
    })
}

/// Keeps the endpoint and a /metrics server up until Ctrl-C or SIGTERM.
async fn serve(eps: &Endpoints, metrics: Metrics) -> Result<(), String> {
    let ep = &eps.s3;
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
    eprintln!(
        "  directory    {}   (bucket {DIRECTORY_BUCKET}, path style)",
        eps.directory.url()
    );
    eprintln!("  Glacier      {}   (vault {VAULT})", eps.glacier.url());
    eprintln!("  metrics      http://{maddr}/metrics   (also /healthz, /readyz)");
    Shutdown::new(Duration::ZERO).signalled().await;
    cancel.cancel();
    let _ = server.await;
    Ok(())
}
