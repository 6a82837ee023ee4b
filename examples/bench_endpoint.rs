//! Helper of `scripts/bench.sh`: the embedded in-memory S3 endpoint of `demo`, in its own
//! process, so that the janitor's CPU time and peak RSS are measured alone.
//!
//! It seeds `--uploads` uploads directly in memory (one part of `--part-size` bytes each, keys
//! spread over `--prefixes` prefixes, initiated `--age-hours` ago), prints one line on stdout
//!
//! ```text
//! url=http://127.0.0.1:PORT region=us-east-1 bucket=bench access_key=.. secret_key=.. uploads=N
//! ```
//!
//! and serves real HTTP with SigV4 verification until its standard input closes. Then it prints
//! the final counters on one line (`uploads_left=.. requests=.. list_parts=.. ...`) and exits.

use std::io::Write as _;
use std::process::ExitCode;

use chrono::{TimeDelta, Utc};
use clap::Parser;
use s3_mem::Endpoint;
use tokio::io::AsyncReadExt as _;

/// The janitor's allocator: the endpoint plays a store on another host, so the less of this
/// host's CPU it takes (glibc's arena locks cost it a futex call a request), the more of the
/// measurement is the tool's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const ACCESS_KEY: &str = "BENCHACCESSKEY000001";
const SECRET_KEY: &str = "bench-secret-key-not-a-real-credential";

#[derive(Parser)]
#[command(about = "In-memory S3 endpoint with N stale uploads, served until stdin closes")]
struct Args {
    /// Uploads to seed.
    #[arg(long, default_value_t = 10_000)]
    uploads: usize,
    /// Number of key prefixes the uploads are spread over.
    #[arg(long, default_value_t = 100)]
    prefixes: usize,
    /// Size of the single part of each upload, in bytes.
    #[arg(long, default_value_t = 1024)]
    part_size: u64,
    /// Bucket name.
    #[arg(long, default_value = "bench")]
    bucket: String,
    /// Age of the seeded uploads, in hours.
    #[arg(long, default_value_t = 48)]
    age_hours: i64,
    /// Worker threads of the endpoint's runtime (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Delay before every answer, in milliseconds: a round trip to a store far away (the
    /// endpoint's latency mode; 20 plays a 10 ms path each way).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// S3-like rate limit: requests a second each prefix partition sustains, beyond which it
    /// answers 503 SlowDown (the endpoint's token-bucket throttle mode; 0 = off).
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
    /// Requests a partition takes at once after being idle [default: a tenth of a second's worth].
    #[arg(long)]
    throttle_burst: Option<f64>,
}

async fn serve(args: Args) -> Result<(), String> {
    let ep = Endpoint::start(ACCESS_KEY, SECRET_KEY)
        .await
        .map_err(|e| format!("start endpoint: {e}"))?;
    ep.create_bucket(&args.bucket);
    ep.set_faults(s3_mem::Faults {
        latency: std::time::Duration::from_millis(args.latency_ms),
        throttle: (args.throttle_rate > 0.0).then(|| s3_mem::Throttle {
            rate: args.throttle_rate,
            burst: args
                .throttle_burst
                .unwrap_or((args.throttle_rate / 10.0).max(1.0)),
        }),
        ..s3_mem::Faults::default()
    });
    let initiated = Utc::now() - TimeDelta::hours(args.age_hours);
    for i in 0..args.uploads {
        let key = format!("p{:03}/upload-{i:07}.bin", i % args.prefixes.max(1));
        ep.seed_upload(&args.bucket, &key, initiated, &[(1, args.part_size)]);
    }
    let seeded = ep.upload_count(&args.bucket);
    if seeded != args.uploads {
        return Err(format!("seeded {seeded} uploads, wanted {}", args.uploads));
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "url={} region=us-east-1 bucket={} access_key={ACCESS_KEY} secret_key={SECRET_KEY} uploads={seeded}",
            ep.url(),
            args.bucket
        )
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    }

    // Serve until the benchmark closes our stdin (or exits).
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;

    let s = ep.stats();
    println!(
        "uploads_left={} parts_left={} requests={} list_multipart_uploads={} list_parts={} abort_multipart_upload={} aborts_removed={} throttled={} throttle_admitted={}",
        ep.upload_count(&args.bucket),
        ep.part_count(&args.bucket),
        s.requests,
        s.list_multipart_uploads,
        s.list_parts,
        s.abort_multipart_upload,
        s.aborts_removed,
        s.throttled,
        s.throttle_admitted,
    );
    ep.shutdown().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench_endpoint: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_endpoint: {e}");
            ExitCode::FAILURE
        }
    }
}
