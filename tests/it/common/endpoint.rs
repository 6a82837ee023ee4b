//! The embedded S3 endpoint of `demo` (crates/s3-mem): real HTTP and real SigV4, seeded directly in
//! memory, with fault injection (stragglers, never-empty uploads, SlowDown, resets, latency, skew).
//! One key pair for every test that uses it, given to the library explicitly.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use mpu_janitor::config::{HumanDuration, Settings, Target};
use mpu_janitor::report::TargetReport;
use mpu_janitor::run::connect_and_sweep;
use mpu_janitor::store::Connector;
use mpu_janitor::sweep::SweepOptions;
use s3_mem::Endpoint;

/// The endpoint's access key.
pub const AK: &str = "S3MEMTESTACCESSKEY01";
/// Its secret.
pub const SK: &str = "s3-mem-test-secret";

/// Two parts of 1,000 bytes.
pub const TWO_PARTS: &[(u32, u64)] = &[(1, 1000), (2, 1000)];

/// A fresh endpoint on a free loopback port.
pub async fn endpoint() -> Endpoint {
    Endpoint::start(AK, SK).await.expect("endpoint")
}

/// Creates `bucket` (if need be) and seeds `n` two-day-old uploads of `parts` (number, size) on
/// keys `{prefix}{i}`.
pub fn seed_old(ep: &Endpoint, bucket: &str, prefix: &str, n: usize, parts: &[(u32, u64)]) {
    ep.create_bucket(bucket);
    let initiated = Utc::now() - TimeDelta::days(2);
    for i in 0..n {
        ep.seed_upload(bucket, &format!("{prefix}{i}"), initiated, parts);
    }
}

/// Settings pointing at `ep`, with `older_than` one day.
pub fn settings(ep: &Endpoint) -> Settings {
    Settings {
        older_than: HumanDuration::secs(86_400),
        ..super::settings_at(&ep.url())
    }
}

/// Sweep options with a short pause between re-aborts.
pub fn opts() -> SweepOptions {
    SweepOptions {
        reabort_backoff: Duration::from_millis(5),
        ..Default::default()
    }
}

/// A connector signing with the endpoint's key.
pub fn connector() -> Connector {
    Connector::with_static_credentials(AK, SK)
}

/// Sweeps `t` through a new [`connector`].
pub async fn sweep(t: &Target, opts: &SweepOptions) -> TargetReport {
    connect_and_sweep(t, &connector(), opts).await
}

/// A config file for the binary: `ep`, `older_than = "1d"`, a one-second schedule, the `extra`
/// lines, and one target per bucket.
pub fn config_toml(ep: &Endpoint, extra: &str, buckets: &[&str]) -> String {
    let mut c = format!(
        "[defaults]\nendpoint_url = \"{}\"\nforce_path_style = true\nolder_than = \"1d\"\nschedule = \"* * * * * *\"\n{extra}\n",
        ep.url()
    );
    for b in buckets {
        c.push_str(&format!("[[targets]]\nbucket = \"{b}\"\n"));
    }
    c
}
