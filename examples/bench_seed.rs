//! Helper of `scripts/bench.sh` for a real S3 server (Garage): seeds identical buckets of stale
//! multipart uploads through aws-sdk-s3, counts what is left, checks a janitor report, and picks
//! free loopback ports.
//!
//! ```sh
//! bench_seed ports 3
//! bench_seed seed  --endpoint http://127.0.0.1:3900 --bucket b1 --bucket b2 --uploads 10000
//! bench_seed count --endpoint http://127.0.0.1:3900 --bucket b1
//! bench_seed check-report report.json --uploads 10000 --part-size 1024
//! ```
//!
//! Credentials come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Every upload has one part
//! of `--part-size` bytes, and keys are spread over `--prefixes` prefixes (`p000/` ...), the same
//! shape for every tool the benchmark compares.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::primitives::ByteStream;
use clap::{Parser, Subcommand};
use futures::StreamExt;

#[derive(Parser)]
#[command(about = "Seeds and checks buckets of stale multipart uploads for scripts/bench.sh")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone)]
struct Conn {
    /// S3 endpoint URL (path-style addressing is used).
    #[arg(long)]
    endpoint: String,
    /// Signing region.
    #[arg(long, default_value = "garage")]
    region: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print N free loopback TCP ports, one a line (all held open until all are chosen).
    Ports { n: usize },
    /// Create the buckets (waiting for the server to accept requests) and seed each with the
    /// same uploads.
    Seed {
        #[command(flatten)]
        conn: Conn,
        /// Bucket to seed; repeat for several identical buckets (seeded at the same time).
        #[arg(long = "bucket", required = true)]
        buckets: Vec<String>,
        /// Uploads per bucket.
        #[arg(long, default_value_t = 10_000)]
        uploads: usize,
        /// Number of key prefixes the uploads are spread over.
        #[arg(long, default_value_t = 100)]
        prefixes: usize,
        /// Size of the single part of each upload, in bytes.
        #[arg(long, default_value_t = 1024)]
        part_size: usize,
        /// Uploads being created at once (over all buckets).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// How long to wait for the server to accept CreateBucket, in seconds.
        #[arg(long, default_value_t = 60)]
        ready_timeout: u64,
    },
    /// Print the number of incomplete uploads in a bucket (every page of ListMultipartUploads).
    Count {
        #[command(flatten)]
        conn: Conn,
        #[arg(long)]
        bucket: String,
    },
    /// Check a `mpu-janitor once --output json` report: every upload aborted and verified, the
    /// bytes counted, nothing failed. Prints `aborted=.. abort_attempts=.. reclaimed_bytes=..`.
    CheckReport {
        /// The JSON report file.
        file: String,
        /// Uploads the report must show aborted (over all targets).
        #[arg(long)]
        uploads: u64,
        /// Part size the uploads were seeded with (one part each).
        #[arg(long, default_value_t = 1024)]
        part_size: u64,
    },
}

fn client(conn: &Conn) -> Result<Client, String> {
    let ak = std::env::var("AWS_ACCESS_KEY_ID").map_err(|_| "AWS_ACCESS_KEY_ID is not set")?;
    let sk =
        std::env::var("AWS_SECRET_ACCESS_KEY").map_err(|_| "AWS_SECRET_ACCESS_KEY is not set")?;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(Region::new(conn.region.clone()))
        .endpoint_url(&conn.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ak, sk, None, None, "bench"))
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    Ok(Client::from_conf(conf))
}

fn key(i: usize, prefixes: usize) -> String {
    format!("p{:03}/upload-{i:07}.bin", i % prefixes.max(1))
}

/// Creates `bucket`, retrying while the server is not ready yet (a fresh Garage answers errors
/// until its layout is applied everywhere). An existing bucket of ours is fine.
async fn create_bucket(client: &Client, bucket: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match client.create_bucket().bucket(bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let code = e
                    .as_service_error()
                    .and_then(aws_sdk_s3::error::ProvideErrorMetadata::code)
                    .unwrap_or("");
                if code == "BucketAlreadyOwnedByYou" {
                    return Ok(());
                }
                // A 4xx is an answer (bad name, bad key), not a server that is still starting.
                let client_error = e
                    .raw_response()
                    .is_some_and(|r| r.status().is_client_error());
                if client_error || Instant::now() >= deadline {
                    return Err(format!(
                        "create bucket {bucket}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn seed_one(
    client: &Client,
    bucket: &str,
    key: &str,
    body: &bytes::Bytes,
) -> Result<(), String> {
    let id = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            format!(
                "CreateMultipartUpload {bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?
        .upload_id
        .ok_or_else(|| format!("CreateMultipartUpload {bucket}/{key}: no upload id"))?;
    client
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .map_err(|e| {
            format!(
                "UploadPart {bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn seed(
    conn: &Conn,
    buckets: &[String],
    uploads: usize,
    prefixes: usize,
    part_size: usize,
    concurrency: usize,
    ready_timeout: u64,
) -> Result<(), String> {
    let client = client(conn)?;
    for b in buckets {
        create_bucket(&client, b, Duration::from_secs(ready_timeout)).await?;
    }
    let body = bytes::Bytes::from(vec![b'x'; part_size]);
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    // Interleave the buckets so that identical buckets are seeded under identical load.
    let jobs = (0..uploads).flat_map(|i| buckets.iter().map(move |b| (b.clone(), i)));
    let mut results = futures::stream::iter(jobs)
        .map(|(bucket, i)| {
            let client = client.clone();
            let body = body.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let k = key(i, prefixes);
                let r = seed_one(&client, &bucket, &k, &body).await;
                done.fetch_add(1, Ordering::Relaxed);
                r
            })
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(joined) = results.next().await {
        joined.map_err(|e| format!("seeding task: {e}"))??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    eprintln!(
        "seeded {total} uploads ({uploads} in each of {}) in {secs:.1} s ({:.0} uploads/s)",
        buckets.join(", "),
        total as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn count(conn: &Conn, bucket: &str) -> Result<u64, String> {
    let client = client(conn)?;
    let mut n = 0u64;
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    loop {
        let out = client
            .list_multipart_uploads()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "ListMultipartUploads {bucket}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        n += out.uploads().len() as u64;
        if !out.is_truncated().unwrap_or(false) {
            return Ok(n);
        }
        let next_key = out.next_key_marker().map(str::to_string);
        let next_id = out.next_upload_id_marker().map(str::to_string);
        if next_key.is_none() || (next_key == key_marker && next_id == id_marker) {
            return Err(format!(
                "ListMultipartUploads {bucket}: truncated listing does not advance"
            ));
        }
        key_marker = next_key;
        id_marker = next_id.filter(|s| !s.is_empty());
    }
}

fn check_report(file: &str, uploads: u64, part_size: u64) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let targets = json["targets"]
        .as_array()
        .ok_or_else(|| format!("{file}: no targets"))?;
    let sum = |field: &str| -> u64 { targets.iter().filter_map(|t| t[field].as_u64()).sum() };
    let (aborted, unverified, failed) = (sum("aborted"), sum("unverified"), sum("failed"));
    let (attempts, reclaimed) = (sum("abort_attempts"), sum("reclaimed_bytes"));
    let errors: Vec<String> = targets
        .iter()
        .filter_map(|t| t["error"].as_str().map(str::to_string))
        .collect();
    println!(
        "aborted={aborted} unverified={unverified} failed={failed} abort_attempts={attempts} reclaimed_bytes={reclaimed}"
    );
    let want_bytes = uploads * part_size;
    if aborted != uploads || unverified != 0 || failed != 0 || !errors.is_empty() {
        return Err(format!(
            "{file}: expected {uploads} aborted and verified, got aborted={aborted} unverified={unverified} failed={failed} errors={errors:?}"
        ));
    }
    if reclaimed != want_bytes {
        return Err(format!(
            "{file}: expected reclaimed_bytes={want_bytes}, got {reclaimed}"
        ));
    }
    Ok(())
}

fn ports(n: usize) -> Result<(), String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bind a loopback port: {e}"))?;
    for l in &listeners {
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        println!("{port}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_seed: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Cmd::Ports { n } => ports(n),
            Cmd::Seed {
                conn,
                buckets,
                uploads,
                prefixes,
                part_size,
                concurrency,
                ready_timeout,
            } => {
                seed(
                    &conn,
                    &buckets,
                    uploads,
                    prefixes,
                    part_size,
                    concurrency,
                    ready_timeout,
                )
                .await
            }
            Cmd::Count { conn, bucket } => count(&conn, &bucket).await.map(|n| println!("{n}")),
            Cmd::CheckReport {
                file,
                uploads,
                part_size,
            } => check_report(&file, uploads, part_size),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_seed: {e}");
            ExitCode::FAILURE
        }
    }
}
